// Package postgres is the registry backend on PostgreSQL, through a pgx v5 connection pool.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/quiverfs/quiver/internal/redact"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// connectTimeout bounds each new connection when the URL sets no connect_timeout.
const connectTimeout = 10 * time.Second

// dialect: write transactions run at READ COMMITTED and lock the project's row with
// SELECT ... FOR UPDATE (see sqlstore.lockProject). SERIALIZABLE would also be correct but
// turns every concurrent apply into a serialization failure to retry, and cannot give the
// "planned against revision 4, now 5" message without a retry; the row lock gives a clear
// conflict on the first try and never blocks other projects. Migrations take a transaction
// advisory lock so that two processes opening the same database migrate one after the other.
var dialect = sqlstore.Dialect{
	Name:          "postgres",
	Numbered:      true,
	ForUpdate:     " FOR UPDATE",
	MigrationLock: "SELECT pg_advisory_xact_lock(7308130412)",
	Retryable: func(err error) bool {
		var pgErr *pgconn.PgError
		// serialization_failure, deadlock_detected
		return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
	},
	Unavailable: unavailable,
	Snapshot:    sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
}

// unavailable tells the errors that mean the database cannot be used now: the connection
// refused or lost, the server shutting down or out of connections, authentication failed.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 28: invalid authorization; 57P01-03: admin or crash
		// shutdown, cannot connect now; 53300: too many connections.
		c := pgErr.Code
		return strings.HasPrefix(c, "08") || strings.HasPrefix(c, "28") || strings.HasPrefix(c, "57P") || c == "53300"
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		strings.Contains(err.Error(), "conn closed")
}

// Open connects to the PostgreSQL database at url (postgres:// or postgresql://, or a
// key=value DSN), applies the registry's migrations, and returns the store. A database that
// cannot be reached gives an error naming the URL, password redacted, that matches
// registry.ErrUnavailable.
func Open(ctx context.Context, url string) (registry.Store, error) {
	unavailable := func(err error) error {
		return fmt.Errorf("open registry %s: %w: %w", redact.URL(url), registry.ErrUnavailable, err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w: %w", redact.URL(url), registry.ErrInvalid, err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, unavailable(err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, unavailable(err)
	}
	db := stdlib.OpenDBFromPool(pool)
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		db.Close()
		pool.Close()
		return nil, err
	}
	if err := sqlstore.Migrate(ctx, db, dialect, sub); err != nil {
		db.Close()
		pool.Close()
		return nil, unavailable(err)
	}
	return sqlstore.New(db, dialect, func() error { pool.Close(); return nil }), nil
}
