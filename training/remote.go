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

// Push copies the files of the dataset folder dir (under localRoot) to the warehouse. Files
// already there with the same size are left alone.
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
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("push dataset %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := dest + "/" + e.Name()
		fi, err := e.Info()
		if err != nil {
			return fmt.Errorf("push dataset %s: %w", dir, err)
		}
		if st, ok := fsys.(icebergio.StatIO); ok {
			if have, err := st.Stat(name); err == nil && have.Size() == fi.Size() {
				continue
			}
		}
		if err := pushFile(w, filepath.Join(dir, e.Name()), name); err != nil {
			return fmt.Errorf("push dataset file %s to %s: %w", e.Name(), dest, err)
		}
	}
	return nil
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
		n++
		return pullFile(fsys, p, filepath.Join(tmp, path.Base(p)))
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
