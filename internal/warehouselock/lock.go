// Package warehouselock is the lock that keeps quiver gc away from files a writer has not
// committed yet. Writers (materialize, dataset create, train building a dataset) hold it
// shared for as long as they write; gc holds it exclusively while it expires snapshots and
// removes files. It is an flock(2) on WAREHOUSE/.quiver.lock, so it works across processes
// on one host and on file systems that honour flock; a warehouse that is a URL (s3://...) is
// not locked (gc removes no files there).
package warehouselock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// FileName is the lock file inside the warehouse.
const FileName = ".quiver.lock"

// Shared takes the lock for a writer, waiting while gc holds it. release frees it.
func Shared(ctx context.Context, warehouse string) (release func(), err error) {
	return take(ctx, warehouse, syscall.LOCK_SH, nil)
}

// Exclusive takes the lock for gc, waiting while writers hold it; waiting, when not nil, is
// called once if it has to wait.
func Exclusive(ctx context.Context, warehouse string, waiting func()) (release func(), err error) {
	return take(ctx, warehouse, syscall.LOCK_EX, waiting)
}

// TryExclusive takes the lock exclusively only if nobody holds it; ok is false otherwise.
func TryExclusive(warehouse string) (release func(), ok bool, err error) {
	if isURL(warehouse) {
		return func() {}, true, nil
	}
	f, err := open(warehouse)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock warehouse %s: %w", warehouse, err)
	}
	return func() { f.Close() }, true, nil
}

func isURL(warehouse string) bool {
	return strings.Contains(warehouse, "://") && !strings.HasPrefix(warehouse, "file://")
}

func open(warehouse string) (*os.File, error) {
	dir := strings.TrimPrefix(warehouse, "file://")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock warehouse %s: %w", warehouse, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock warehouse %s: %w", warehouse, err)
	}
	return f, nil
}

func take(ctx context.Context, warehouse string, how int, waiting func()) (func(), error) {
	if isURL(warehouse) {
		return func() {}, nil
	}
	f, err := open(warehouse)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock warehouse %s: %w", warehouse, err)
		}
		if waiting != nil {
			waiting()
			waiting = nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock warehouse %s: %w", warehouse, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
