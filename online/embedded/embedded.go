// Package embedded is the online store for local use with no server: one SQLite file
// (modernc.org/sqlite, pure Go) in WAL mode, the default `online: sqlite://.quiver/online.db`.
// Several processes may use the same file at once — typically the materializer writing and
// `quiver serve` reading: WAL lets readers run beside the one writer, and a busy timeout makes
// writers queue for the write lock instead of failing. Rows are stored in the encoding of
// docs/online-format.md, one SQLite row per (project, view, entity key).
package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/quiverfs/quiver/online"
)

// Options tune a Store. The zero Options are valid.
type Options struct {
	// Now is the clock TTLs are measured against when reading. Default time.Now.
	Now func() time.Time
	// BusyTimeout is how long a statement waits for another process's lock. Default 10s.
	BusyTimeout time.Duration
}

// Store is the embedded online store. It is safe for concurrent use, also from other
// processes opening the same file.
type Store struct {
	db   *sql.DB
	path string
	now  func() time.Time
}

var _ online.Store = (*Store)(nil)

const schema = `
CREATE TABLE IF NOT EXISTS online_rows (
	project    TEXT    NOT NULL,
	view       TEXT    NOT NULL,
	entity_key BLOB    NOT NULL,
	event_ts   INTEGER NOT NULL, -- µs since the epoch
	created_ts INTEGER NOT NULL, -- µs since the epoch
	value      BLOB    NOT NULL, -- the row in the docs/online-format.md encoding
	PRIMARY KEY (project, view, entity_key)
) WITHOUT ROWID`

// upsert keeps the row with the greatest (event_ts, created_ts); equal timestamps: the last
// write wins. SQLite runs it atomically.
const upsert = `
INSERT INTO online_rows (project, view, entity_key, event_ts, created_ts, value) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (project, view, entity_key) DO UPDATE SET
	event_ts = excluded.event_ts, created_ts = excluded.created_ts, value = excluded.value
WHERE (excluded.event_ts, excluded.created_ts) >= (online_rows.event_ts, online_rows.created_ts)`

var _ online.KeptWriter = (*Store)(nil)

// maxParams bounds the keys of one IN (...) lookup, well under SQLite's variable limit.
const maxParams = 500

// Open opens (creating it and its directory if needed) the store at location: a path, or a
// sqlite:// URL of one (sqlite://.quiver/online.db is relative to the working directory,
// sqlite:///var/lib/quiver/online.db absolute).
func Open(ctx context.Context, location string, opts Options) (*Store, error) {
	path := location
	if rest, ok := strings.CutPrefix(location, "sqlite://"); ok {
		path = rest
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if p, err := url.PathUnescape(path); err == nil {
			path = p
		}
	}
	if path == "" {
		return nil, fmt.Errorf("open embedded online store %q: empty path: %w", location, online.ErrInvalidArgument)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open embedded online store %s: %w", path, err)
		}
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate") // take the write lock at BEGIN: no lock-upgrade deadlocks
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open embedded online store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		_ = db.Close()
		return nil, s.wrap("create schema", err)
	}
	return s, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close embedded online store %s: %w", s.path, err)
	}
	return nil
}

func (s *Store) wrap(op string, err error) error {
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "database is closed") {
		return fmt.Errorf("embedded online store %s: %s: %w", s.path, op, online.ErrClosed)
	}
	return fmt.Errorf("embedded online store %s: %s: %w", s.path, op, err)
}

// Write implements online.Writer in one transaction: every row is checked and encoded first,
// then upserted, keeping the newer of the stored and the written row.
func (s *Store) Write(ctx context.Context, v *online.View, rows []online.Row) error {
	_, err := s.WriteKept(ctx, v, rows)
	return err
}

// WriteKept implements online.KeptWriter: Write, counting the rows the upsert stored (an
// upsert whose WHERE refuses the row changes nothing).
func (s *Store) WriteKept(ctx context.Context, v *online.View, rows []online.Row) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	encoded := make([][]byte, len(rows))
	for i := range rows {
		if rows[i].Key == "" {
			return 0, fmt.Errorf("write view %q row %d: empty entity key: %w", v.Name, i, online.ErrInvalidArgument)
		}
		b, err := online.EncodeRow(nil, v, &rows[i])
		if err != nil {
			return 0, fmt.Errorf("write view %q row %d: %w", v.Name, i, err)
		}
		encoded[i] = b
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, s.wrap(fmt.Sprintf("write view %q", v.Name), err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, upsert)
	if err != nil {
		return 0, s.wrap(fmt.Sprintf("write view %q", v.Name), err)
	}
	defer stmt.Close()
	var kept int64
	for i := range rows {
		r := &rows[i]
		created := int64(0)
		if !r.CreatedTS.IsZero() {
			created = r.CreatedTS.UnixMicro()
		}
		res, err := stmt.ExecContext(ctx, v.Project, v.StorageName(), []byte(r.Key), r.EventTS.UnixMicro(), created, encoded[i])
		if err != nil {
			return 0, s.wrap(fmt.Sprintf("write view %q", v.Name), err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, s.wrap(fmt.Sprintf("write view %q", v.Name), err)
		}
		kept += n
	}
	if err := tx.Commit(); err != nil {
		return 0, s.wrap(fmt.Sprintf("write view %q: commit", v.Name), err)
	}
	return kept, nil
}

// DeleteView implements online.Writer. Rows are stored under the view's storage name
// (online.StorageName), so the rows of generations 1 to v.Generation are those of its
// storage names through that generation.
func (s *Store) DeleteView(ctx context.Context, v *online.View) error {
	query, args := generationsWhere(`DELETE FROM online_rows`, v)
	if _, err := s.db.ExecContext(ctx, query, args...); err != nil {
		return s.wrap(fmt.Sprintf("delete view %q", v.Name), err)
	}
	return nil
}

// DeleteEntities implements online.Writer in one transaction.
func (s *Store) DeleteEntities(ctx context.Context, v *online.View, keys []online.EntityKey) (int64, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	op := fmt.Sprintf("delete %d entities of view %q", len(keys), v.Name)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, s.wrap(op, err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, `DELETE FROM online_rows WHERE project = ? AND view = ? AND entity_key = ?`)
	if err != nil {
		return 0, s.wrap(op, err)
	}
	defer stmt.Close()
	var n int64
	for _, k := range keys {
		res, err := stmt.ExecContext(ctx, v.Project, v.StorageName(), []byte(k))
		if err != nil {
			return 0, s.wrap(op, err)
		}
		c, err := res.RowsAffected()
		if err != nil {
			return 0, s.wrap(op, err)
		}
		n += c
	}
	if err := tx.Commit(); err != nil {
		return 0, s.wrap(op+": commit", err)
	}
	return n, nil
}

// CountView implements online.Counter.
func (s *Store) CountView(ctx context.Context, v *online.View) (int64, error) {
	query, args := generationsWhere(`SELECT COUNT(*) FROM online_rows`, v)
	var n int64
	if err := s.db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, s.wrap(fmt.Sprintf("count view %q", v.Name), err)
	}
	return n, nil
}

func generationsWhere(head string, v *online.View) (string, []any) {
	names := v.StorageNamesThrough()
	args := []any{v.Project}
	for _, n := range names {
		args = append(args, n)
	}
	return head + ` WHERE project = ? AND view IN (?` + strings.Repeat(",?", len(names)-1) + `)`, args
}

// Read implements online.Reader with one IN (...) query per view and up to 500 keys.
func (s *Store) Read(ctx context.Context, req online.ReadRequest) (*online.ReadResult, error) {
	b, err := online.NewResultBuilder(&req, s.now())
	if err != nil {
		return nil, err
	}
	found := make(map[online.EntityKey]string)
	for vi := range req.Views {
		vr := &req.Views[vi]
		clear(found)
		keys := make([]online.EntityKey, 0, len(vr.Keys))
		seen := make(map[online.EntityKey]bool, len(vr.Keys))
		for _, k := range vr.Keys {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		for start := 0; start < len(keys); start += maxParams {
			chunk := keys[start:min(start+maxParams, len(keys))]
			if err := s.lookup(ctx, vr.View, chunk, found); err != nil {
				return nil, err
			}
		}
		for r, k := range vr.Keys {
			if data, ok := found[k]; ok {
				if err := b.Set(vi, r, data); err != nil {
					return nil, fmt.Errorf("embedded online store %s: read: %w", s.path, err)
				}
			}
		}
	}
	return b.Result(), nil
}

func (s *Store) lookup(ctx context.Context, v *online.View, keys []online.EntityKey, found map[online.EntityKey]string) error {
	var q strings.Builder
	q.WriteString(`SELECT entity_key, value FROM online_rows WHERE project = ? AND view = ? AND entity_key IN (?`)
	q.WriteString(strings.Repeat(",?", len(keys)-1))
	q.WriteString(")")
	args := make([]any, 0, 2+len(keys))
	args = append(args, v.Project, v.StorageName())
	for _, k := range keys {
		args = append(args, []byte(k))
	}
	rows, err := s.db.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return s.wrap(fmt.Sprintf("read view %q", v.Name), err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, val []byte
		if err := rows.Scan(&k, &val); err != nil {
			return s.wrap(fmt.Sprintf("read view %q", v.Name), err)
		}
		found[online.EntityKey(k)] = string(val)
	}
	if err := rows.Err(); err != nil {
		return s.wrap(fmt.Sprintf("read view %q", v.Name), err)
	}
	return nil
}

var _ online.Counter = (*Store)(nil)
