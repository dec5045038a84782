package training

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/quiverfs/quiver/internal/errkind"
)

// Export formats.
const (
	FormatParquet = "parquet"
	FormatCSV     = "csv"
)

// ErrExportTarget is wrapped by the errors about an export's destination (not empty, not a
// directory), which are the user's to fix.
var ErrExportTarget = errkind.New(errkind.Invalid, "export target")

// ExportOptions say how to export a snapshot.
type ExportOptions struct {
	// Format is FormatParquet (the default) or FormatCSV.
	Format string
	// Force allows a target directory that already has files in it; the exported files
	// replace same-named entries (a symlink is replaced, never written through) and other
	// entries are left alone.
	Force bool
}

// exportStagingPrefix names the staging directory an export writes in, inside the target.
const exportStagingPrefix = ".quiver-export-"

// Export is ExportTo with a format and no --force.
func Export(ctx context.Context, src string, m *Manifest, dir, format string) ([]string, error) {
	return ExportTo(ctx, src, m, dir, ExportOptions{Format: format})
}

// ExportTo copies a snapshot to dir: as its Parquet files and manifest (verified against the
// manifest on the way), or as one CSV file (data.csv) with a header row. Nulls are empty CSV
// fields; arrays are written as JSON arrays. It returns the files written.
//
// dir must be empty or missing unless opts.Force is set. Every file is first written into a
// staging directory inside dir and then renamed into place, so a failure or a kill leaves no
// half-written file under its final name, and an existing symlink in dir is replaced rather
// than followed out of dir.
func ExportTo(ctx context.Context, src string, m *Manifest, dir string, opts ExportOptions) ([]string, error) {
	format := opts.Format
	if format == "" {
		format = FormatParquet
	}
	var names []string
	switch format {
	case FormatParquet:
		names = append([]string{ManifestFile}, filePaths(m)...)
	case FormatCSV:
		names = []string{"data.csv"}
	default:
		return nil, fmt.Errorf("export: unknown format %q; valid formats: parquet, csv", format)
	}
	for _, n := range names {
		if n != filepath.Base(n) || !filepath.IsLocal(n) {
			return nil, fmt.Errorf("export: manifest file name %q is not a plain file name", n)
		}
	}
	if err := prepareTarget(dir, names, opts.Force); err != nil {
		return nil, err
	}
	// The staging folder names this process, so that the next export can tell a killed
	// export's leftover (removed) from one still running (kept).
	stage, err := os.MkdirTemp(dir, exportStagingPrefix+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(stage)
	switch format {
	case FormatParquet:
		if _, err := Verify(src, ""); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		for _, name := range names {
			if err := copyFile(filepath.Join(src, name), filepath.Join(stage, name)); err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
		}
	case FormatCSV:
		if err := exportCSV(ctx, src, m, filepath.Join(stage, names[0])); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	}
	out := make([]string, len(names))
	for i, name := range names {
		out[i] = filepath.Join(dir, name)
		// rename replaces a symlink at the target name; it never writes through it.
		if err := os.Rename(filepath.Join(stage, name), out[i]); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	}
	return out, nil
}

// prepareTarget creates dir if missing and refuses it when it is not a directory, or holds
// anything while force is off, or holds a directory where a file is to go.
func prepareTarget(dir string, names []string, force bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: %w", ErrExportTarget, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrExportTarget, err)
	}
	entries = slices.DeleteFunc(entries, func(e fs.DirEntry) bool { return removeDeadStaging(dir, e) })
	if len(entries) > 0 && !force {
		return fmt.Errorf("%w: %s is not empty (it has %s%s); export into an empty directory, or pass --force to replace the exported files in it",
			ErrExportTarget, dir, entries[0].Name(), map[bool]string{true: fmt.Sprintf(" and %d more", len(entries)-1)}[len(entries) > 1])
	}
	for _, n := range names {
		if fi, err := os.Lstat(filepath.Join(dir, n)); err == nil && fi.IsDir() {
			return fmt.Errorf("%w: %s is a directory; the export writes a file there", ErrExportTarget, filepath.Join(dir, n))
		}
	}
	return nil
}

// removeDeadStaging removes e when it is the staging folder of an export whose process is
// gone (killed mid-export), and reports whether it did.
func removeDeadStaging(dir string, e fs.DirEntry) bool {
	rest, ok := strings.CutPrefix(e.Name(), exportStagingPrefix)
	if !ok || !e.IsDir() {
		return false
	}
	pidText, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidText)
	if err == nil && processAlive(pid) {
		return false
	}
	return os.RemoveAll(filepath.Join(dir, e.Name())) == nil
}

func filePaths(m *Manifest) []string {
	out := make([]string, len(m.Files))
	for i, f := range m.Files {
		out[i] = f.Path
	}
	return out
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func exportCSV(ctx context.Context, src string, m *Manifest, path string) error {
	rr, err := OpenFiles(ctx, src, m)
	if err != nil {
		return err
	}
	defer rr.Release()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	header := make([]string, rr.Schema().NumFields())
	for i, fl := range rr.Schema().Fields() {
		header[i] = fl.Name
	}
	if err := w.Write(header); err != nil {
		f.Close()
		return err
	}
	row := make([]string, len(header))
	for rr.Next() {
		if err := ctx.Err(); err != nil {
			f.Close()
			return err
		}
		rec := rr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			for c, col := range rec.Columns() {
				if col.IsNull(i) {
					row[c] = ""
				} else {
					row[c] = col.ValueStr(i)
				}
			}
			if err := w.Write(row); err != nil {
				f.Close()
				return err
			}
		}
	}
	if err := rr.Err(); err != nil {
		f.Close()
		return err
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
