package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quiverfs/quiver/registry"
)

// Store implements registry.Store over database/sql.
type Store struct {
	db      *sql.DB
	d       *Dialect
	closeFn func() error
}

var _ registry.Store = (*Store)(nil)

// New returns a Store over db. closeFn, when not nil, runs after db is closed (to close a
// pool underneath it).
func New(db *sql.DB, d Dialect, closeFn func() error) *Store {
	d.closed = new(atomic.Bool)
	return &Store{db: db, d: &d, closeFn: closeFn}
}

// Close closes the database handle; calls after it fail with registry.ErrClosed. Closing
// twice is not an error.
func (s *Store) Close() error {
	if s.d.closed.Swap(true) {
		return nil
	}
	err := s.db.Close()
	if s.closeFn != nil {
		err = errors.Join(err, s.closeFn())
	}
	return err
}

// DB is the underlying handle, for tests.
func (s *Store) DB() *sql.DB { return s.db }

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// q wraps a querier so that every query is rebound for the dialect.
type q struct {
	x querier
	d *Dialect
}

func (s *Store) q() q { return q{s.db, s.d} }

func (c q) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := c.x.ExecContext(ctx, c.d.rebind(query), args...)
	return res, c.d.classify(err)
}

func (c q) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	rows, err := c.x.QueryContext(ctx, c.d.rebind(query), args...)
	return rows, c.d.classify(err)
}

func (c q) row(ctx context.Context, query string, args ...any) scanRow {
	return scanRow{c.x.QueryRowContext(ctx, c.d.rebind(query), args...), c.d}
}

// scanRow is a *sql.Row whose errors are classified like every other query's.
type scanRow struct {
	r *sql.Row
	d *Dialect
}

func (r scanRow) Scan(dest ...any) error { return r.d.classify(r.r.Scan(dest...)) }

// classify marks errors of a closed store as registry.ErrClosed, and errors that mean the
// database cannot be reached — refused, lost, shut down, or refusing our credentials — as
// registry.ErrUnavailable. Others pass unchanged.
func (d *Dialect) classify(err error) error {
	if err != nil && d.closed != nil && d.closed.Load() && !errors.Is(err, registry.ErrClosed) {
		return fmt.Errorf("%s: %w: %w", d.Name, registry.ErrClosed, err)
	}
	if err == nil || d.Unavailable == nil || errors.Is(err, registry.ErrUnavailable) || !d.Unavailable(err) {
		return err
	}
	return fmt.Errorf("%s: %w: %w", d.Name, registry.ErrUnavailable, err)
}

const maxTxAttempts = 5

// inTx runs fn in a transaction, committing when it returns nil. Transactions that fail for
// a transient reason (Dialect.Retryable) are retried from the start a few times.
func (s *Store) inTx(ctx context.Context, fn func(tx q) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = s.tryTx(ctx, fn)
		if err == nil || attempt == maxTxAttempts || s.d.Retryable == nil || !s.d.Retryable(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt*attempt) * 5 * time.Millisecond):
		}
	}
}

func (s *Store) tryTx(ctx context.Context, fn func(tx q) error) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", s.d.classify(err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := fn(q{tx, s.d}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", s.d.classify(err))
	}
	return nil
}

// readSnapshot runs fn in a read-only transaction whose statements all see one snapshot of
// the database (Dialect.Snapshot).
func (s *Store) readSnapshot(ctx context.Context, fn func(tx q) error) error {
	opts := s.d.Snapshot
	tx, err := s.db.BeginTx(ctx, &opts)
	if err != nil {
		return fmt.Errorf("begin read transaction: %w", s.d.classify(err))
	}
	defer func() { _ = tx.Rollback() }() // read only: nothing to commit
	return fn(q{tx, s.d})
}

// Migrate applies the migrations in fsys that the database has not seen yet, in version
// order, in one transaction. Files are named NNNN_description.sql. It is idempotent and safe
// when several processes open the same database at once.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, fsys fs.FS) error {
	type migration struct {
		version int
		name    string
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return fmt.Errorf("migration %q: name must start with a version number", e.Name())
		}
		ms = append(ms, migration{v, e.Name()})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })

	s := &Store{db: db, d: &d}
	return s.inTx(ctx, func(tx q) error {
		if d.MigrationLock != "" {
			if _, err := tx.exec(ctx, d.MigrationLock); err != nil {
				return fmt.Errorf("lock for migration: %w", err)
			}
		}
		if _, err := tx.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY,
			name TEXT NOT NULL,
			applied_at TEXT NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		applied := map[int]bool{}
		rows, err := tx.query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return fmt.Errorf("read schema_migrations: %w", err)
			}
			applied[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		known := 0
		if len(ms) > 0 {
			known = ms[len(ms)-1].version
		}
		for v := range applied {
			if v > known {
				return fmt.Errorf("registry schema version %d is newer than this Quiver knows (%d); upgrade quiver", v, known)
			}
		}
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			body, err := fs.ReadFile(fsys, m.name)
			if err != nil {
				return fmt.Errorf("read migration %s: %w", m.name, err)
			}
			// Multi-statement text without arguments (pgx uses the simple protocol for it).
			if _, err := tx.x.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.name, err)
			}
			if _, err := tx.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, Now().Format(textTimeLayout)); err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
		}
		return nil
	})
}
