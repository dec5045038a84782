package training

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Export formats.
const (
	FormatParquet = "parquet"
	FormatCSV     = "csv"
)

// Export copies a snapshot to dir: as its Parquet files and manifest (verified against the
// manifest on the way), or as one CSV file (data.csv) with a header row. Nulls are empty CSV
// fields; arrays are written as JSON arrays. It returns the files written.
func Export(ctx context.Context, src string, m *Manifest, dir, format string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	switch format {
	case FormatParquet:
		if _, err := Verify(src, ""); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		var out []string
		for _, name := range append([]string{ManifestFile}, filePaths(m)...) {
			if err := copyFile(filepath.Join(src, name), filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
			out = append(out, filepath.Join(dir, name))
		}
		return out, nil
	case FormatCSV:
		path := filepath.Join(dir, "data.csv")
		if err := exportCSV(ctx, src, m, path); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("export: %w", err)
		}
		return []string{path}, nil
	}
	return nil, fmt.Errorf("export: unknown format %q; valid formats: parquet, csv", format)
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
	out, err := os.Create(to)
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
	f, err := os.Create(path)
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
