// Package sqlite is the embedded registry backend: one SQLite database file through
// modernc.org/sqlite (pure Go, no cgo), in WAL mode with a busy timeout, so that several
// goroutines and processes can share it.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	msqlite "modernc.org/sqlite"

	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// SQLite result codes (the low byte of an extended code).
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)

// dialect: every transaction begins IMMEDIATE (_txlock=immediate), taking the database's one
// write lock up front, so read-then-write transactions (apply, watermark compare) are
// serialized and never fail half way with SQLITE_BUSY on lock upgrade; the busy timeout makes
// waiting writers queue instead of failing.
var dialect = sqlstore.Dialect{
	Name:      "sqlite",
	TextTimes: true,
	Retryable: func(err error) bool {
		var e *msqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		code := e.Code() & 0xff
		return code == sqliteBusy || code == sqliteLocked
	},
}

// Open opens (creating it and its parent directory when needed) the SQLite database file at
// path, applies the registry's migrations, and returns the store. A file that cannot be
// opened gives an error naming it that matches registry.ErrUnavailable.
func Open(ctx context.Context, path string) (registry.Store, error) {
	unavailable := func(err error) error {
		return fmt.Errorf("open registry sqlite://%s: %w: %w", path, registry.ErrUnavailable, err)
	}
	if path == "" || strings.ContainsAny(path, "?#") || path == ":memory:" {
		return nil, fmt.Errorf("open registry sqlite://%s: path must be a file name without '?' or '#': %w", path, registry.ErrInvalid)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, unavailable(err)
		}
	}
	dsn := path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, unavailable(err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, unavailable(err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := sqlstore.Migrate(ctx, db, dialect, sub); err != nil {
		db.Close()
		return nil, unavailable(err)
	}
	return sqlstore.New(db, dialect, nil), nil
}
