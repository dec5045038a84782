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
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	// A read-only transaction begins DEFERRED (not IMMEDIATE, as _txlock asks of writes): in
	// WAL mode its reads see one snapshot, and it waits for no writer.
	Snapshot: sql.TxOptions{ReadOnly: true},
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
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		db.Close()
		return nil, err
	}
	// Processes opening a new file at once race to switch it to WAL and to migrate it. SQLite
	// answers some of those steps SQLITE_BUSY at once, without waiting out the busy timeout
	// (a connection holding a read lock that needs the write lock another one holds would
	// deadlock, so it is not made to wait), so the open is retried for as long as the busy
	// timeout would have waited.
	deadline := time.Now().Add(openRetryFor)
	for attempt := 0; ; attempt++ {
		err = db.PingContext(ctx)
		if err == nil {
			err = sqlstore.Migrate(ctx, db, dialect, sub)
		}
		if err == nil || !dialect.Retryable(err) || time.Now().After(deadline) {
			break
		}
		wait := min(time.Duration(attempt+1)*5*time.Millisecond, 100*time.Millisecond)
		select {
		case <-ctx.Done():
			db.Close()
			return nil, unavailable(ctx.Err())
		case <-time.After(wait + time.Duration(rand.Int64N(int64(wait)))):
		}
	}
	if err != nil {
		db.Close()
		return nil, unavailable(err)
	}
	return sqlstore.New(db, dialect, nil), nil
}

// openRetryFor bounds how long Open retries a new file's WAL switch and migration while
// other processes hold it: the busy timeout of every other statement.
const openRetryFor = 10 * time.Second
