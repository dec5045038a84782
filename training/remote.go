package training

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
)

// Remote is the copy of a project's dataset snapshots on object storage, when the warehouse is
// there (s3://bucket/prefix): a snapshot is built in the local files directory (the layout of
// layout.go under it), then pushed to the same relative path under the warehouse URL, and
// pulled back into the local directory by a host that reads it and lacks it. Snapshot folders
// are content-addressed and immutable, so a copy is never updated, only made.
type Remote struct {
	// URL is the warehouse, e.g. "s3://bucket/warehouse".
	URL string
	// Props are the file IO's properties (endpoint, region: iceberg.S3Props).
	Props map[string]string
}

// url is the object-store URL of the local path dir under localRoot.
func (r Remote) url(localRoot, dir string) (string, error) {
	rel, err := filepath.Rel(localRoot, dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("dataset folder %s is not under %s", dir, localRoot)
	}
	return strings.TrimSuffix(r.URL, "/") + "/" + path.Clean(filepath.ToSlash(rel)), nil
}

// Push copies the files under the folder dir (under localRoot: a dataset snapshot, a run's
// artifact) to the warehouse. Files already there with the same size are left alone.
func (r Remote) Push(ctx context.Context, localRoot, dir string) error {
	dest, err := r.url(localRoot, dir)
	if err != nil {
		return err
	}
	fsys, err := icebergio.LoadFS(ctx, r.Props, dest)
	if err != nil {
		return fmt.Errorf("push dataset to %s: %w", dest, err)
	}
	w, ok := fsys.(icebergio.WriteFileIO)
	if !ok {
		return fmt.Errorf("push dataset to %s: the file system cannot write", dest)
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("push %s: %w", dir, err)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := dest + "/" + filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("push %s: %w", dir, err)
		}
		if st, ok := fsys.(icebergio.StatIO); ok {
			if have, err := st.Stat(name); err == nil && have.Size() == fi.Size() {
				return nil
			}
		}
		if err := pushFile(w, p, name); err != nil {
			return fmt.Errorf("push %s to %s: %w", rel, dest, err)
		}
		return nil
	})
}

func pushFile(w icebergio.WriteFileIO, src, dest string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	out, err := w.Create(dest)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, f); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// Pull makes the dataset folder dir (under localRoot) from its copy on the warehouse when it
// has no manifest.json locally: the files are fetched into a sibling folder, which is then
// renamed into place, so a pull cut short leaves no half folder behind. It does not verify
// the files; callers that read them do (VerifyDataset, the reuse check).
func (r Remote) Pull(ctx context.Context, localRoot, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
		return nil
	}
	src, err := r.url(localRoot, dir)
	if err != nil {
		return err
	}
	fsys, err := icebergio.LoadFS(ctx, r.Props, src)
	if err != nil {
		return fmt.Errorf("pull dataset from %s: %w", src, err)
	}
	lister, ok := fsys.(icebergio.ListableIO)
	if !ok {
		return fmt.Errorf("pull dataset from %s: the file system cannot list files", src)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".pull-")
	if err != nil {
		return fmt.Errorf("pull dataset from %s: %w", src, err)
	}
	defer os.RemoveAll(tmp)
	n := 0
	err = lister.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, src), "/")
		if rel == "" || strings.Contains("/"+rel+"/", "/../") {
			return fmt.Errorf("unexpected object %s under %s", p, src)
		}
		n++
		local := filepath.Join(tmp, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			return err
		}
		return pullFile(fsys, p, local)
	})
	if err != nil {
		return fmt.Errorf("pull dataset from %s: %w", src, err)
	}
	if n == 0 {
		return fmt.Errorf("pull dataset from %s: %w: no files there (and none at %s)", src, fs.ErrNotExist, dir)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, ManifestFile)); serr == nil {
			return nil // pulled meanwhile by another process
		}
		return fmt.Errorf("pull dataset from %s: %w", src, err)
	}
	return nil
}

func pullFile(fsys icebergio.IO, src, dest string) error {
	in, err := fsys.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dest)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return errors.Join(out.Sync(), out.Close())
}

// CollectDatasets finds, and unless opts.DryRun removes, the copies in the warehouse of
// project's dataset content folders that no live registered dataset version references and
// whose files are older than opts.Grace (what CollectDatasetGarbage removes locally).
// localRoot is the local files directory the layout is relative to.
func (r Remote) CollectDatasets(ctx context.Context, reg GCRegistry, localRoot, project string, opts GCOptions) (GCResult, error) {
	var res GCResult
	if opts.Grace <= 0 {
		opts.Grace = DefaultGCGrace
	}
	live, err := reg.ListDatasets(ctx, project, "")
	if err != nil {
		return res, fmt.Errorf("list datasets of project %q: %w", project, err)
	}
	referenced := map[string]bool{}
	for _, d := range live {
		if u, err := r.url(localRoot, DatasetDir(localRoot, d)); err == nil {
			referenced[u] = true
		}
	}
	root, err := r.url(localRoot, DatasetsDir(localRoot, project))
	if err != nil {
		return res, err
	}
	fsys, err := icebergio.LoadFS(ctx, r.Props, root)
	if err != nil {
		return res, fmt.Errorf("collect dataset copies under %s: %w", root, err)
	}
	lister, ok := fsys.(icebergio.ListableIO)
	if !ok {
		return res, fmt.Errorf("collect dataset copies under %s: the file system cannot list files", root)
	}
	type folder struct {
		files []string
		bytes int64
		young bool
	}
	folders := map[string]*folder{}
	var order []string
	err = lister.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(p, root), "/"), "/")
		dir := root + "/" + first
		if !strings.HasPrefix(first, "sha256-") || referenced[dir] {
			return nil
		}
		f := folders[dir]
		if f == nil {
			f = &folder{}
			folders[dir] = f
			order = append(order, dir)
		}
		fi, err := d.Info()
		if err != nil {
			return nil //nolint:nilerr // removed meanwhile
		}
		f.files = append(f.files, p)
		f.bytes += fi.Size()
		f.young = f.young || time.Since(fi.ModTime()) <= opts.Grace
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("collect dataset copies under %s: %w", root, err)
	}
	for _, dir := range order {
		f := folders[dir]
		if f.young {
			continue
		}
		res.Items = append(res.Items, GCItem{Path: dir, Bytes: f.bytes, Reason: "copy of content of no live dataset version"})
		res.Bytes += f.bytes
		if opts.DryRun {
			continue
		}
		for _, p := range f.files {
			if err := fsys.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return res, fmt.Errorf("remove dataset copy %s: %w", p, err)
			}
		}
	}
	return res, nil
}
