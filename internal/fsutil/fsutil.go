// Package fsutil holds the few file-system steps that durable writers share.
package fsutil

import "os"

// WriteFileSync writes data to a new file at path (truncating one that exists) and fsyncs it
// before closing, so the bytes are on disk when it returns nil. The caller syncs the directory
// (SyncDir) when the file's name must survive a crash too.
func WriteFileSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SyncDir fsyncs a directory, making the creation, rename or removal of its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
