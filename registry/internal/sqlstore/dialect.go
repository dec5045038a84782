// Package sqlstore is the registry implementation shared by the Postgres and SQLite backends:
// the same SQL over database/sql, with the few differences (placeholders, row locks, time
// encoding, retryable errors, migration lock) described by a Dialect.
package sqlstore

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Dialect describes what differs between SQL backends.
type Dialect struct {
	// Name is used in error messages ("postgres", "sqlite").
	Name string
	// Numbered placeholders: true rewrites each ? to $1, $2, ...
	Numbered bool
	// ForUpdate is appended to the SELECT that reads a project's revision inside a write
	// transaction to lock the row (" FOR UPDATE"); empty where the transaction already holds
	// the database's write lock (SQLite BEGIN IMMEDIATE).
	ForUpdate string
	// TextTimes stores times as fixed-width UTC text instead of native timestamps.
	TextTimes bool
	// MigrationLock is executed first in the migration transaction so that two processes
	// opening the store at once migrate one after the other; empty when beginning the
	// transaction is enough.
	MigrationLock string
	// Retryable reports whether a transaction failed for a transient reason (serialization
	// failure, deadlock, busy database) and may be retried from the start.
	Retryable func(error) bool
	// Unavailable reports whether an error means the database cannot be reached or refused
	// us (connection refused or lost, server shutting down, authentication failed); such
	// errors are returned matching registry.ErrUnavailable. Nil: none are.
	Unavailable func(error) bool
	// Snapshot are the options of a transaction whose statements all read one snapshot of
	// the database (REPEATABLE READ on Postgres; any read transaction on SQLite in WAL mode).
	Snapshot sql.TxOptions

	closed *atomic.Bool // set by Store.Close: errors from then on are registry.ErrClosed
}

// textTimeLayout is fixed width, so text order is time order.
const textTimeLayout = "2006-01-02T15:04:05.000000Z"

// rebind rewrites ? placeholders for dialects with numbered ones. Queries here never contain
// a literal '?'.
func (d *Dialect) rebind(q string) string {
	if !d.Numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Now is the store's clock: UTC, microsecond precision.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// encTime encodes a time as an argument; the zero time is NULL.
func (d *Dialect) encTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	if d.TextTimes {
		return t.Format(textTimeLayout)
	}
	return t
}

// dbTime scans a native or text timestamp; NULL scans as the zero time.
type dbTime struct{ t *time.Time }

func (s dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.t = time.Time{}
	case time.Time:
		*s.t = v.UTC()
	case string:
		return s.parse(v)
	case []byte:
		return s.parse(string(v))
	default:
		return fmt.Errorf("scan time: unsupported type %T", src)
	}
	return nil
}

func (s dbTime) parse(v string) error {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("scan time %q: %w", v, err)
	}
	*s.t = t.UTC()
	return nil
}
