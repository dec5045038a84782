package offline

import (
	"context"
	"time"
)

// Writer is the write side of the offline store, what materialization needs.
type Writer interface {
	// EnsureTable creates the table of the view's generation, or evolves it to vs: a column
	// vs adds is added (older rows read it as null); a column widened as Iceberg allows
	// (definitions.Widens) is promoted; any other type change is refused with
	// ErrSchemaConflict naming the column and both types (it needs a new generation); a
	// column vs no longer has is kept.
	EnsureTable(ctx context.Context, vs ViewSchema) error
	// WriteInterval replaces the view's rows with event time in r by rows, in one atomic
	// commit: after it returns nil, a reader sees exactly the new rows of r; if it fails or
	// the process dies, readers see exactly the old ones. rows must have vs's canonical
	// columns; a row whose event time is null or outside r fails the write with
	// ErrOutsideInterval. Rows with equal (join keys, EventTS, CreatedTS) collapse into the
	// one given last. runID and r are recorded with the commit. rows is closed.
	WriteInterval(ctx context.Context, vs ViewSchema, r Range, rows Stream, runID string) (WriteResult, error)
}

// Reader is the read side of the offline store.
type Reader interface {
	// Scan streams a view's rows as of a snapshot (0 for the latest) in the canonical types:
	// the requested columns (all when empty) with event time in the range (all when zero).
	// A view without a table gives ErrTableNotFound, an unknown snapshot ErrSnapshotNotFound.
	Scan(ctx context.Context, view string, req ScanRequest) (SnapshotStream, error)
	// Snapshots lists the snapshots of the table of a view's definition generation (0 or
	// 1: the first), oldest first.
	Snapshots(ctx context.Context, view string, generation int) ([]Snapshot, error)
	// Count is the number of rows Scan would return for the same request.
	Count(ctx context.Context, view string, req ScanRequest) (int64, error)
}

// Dropper drops the tables of ended definition generations.
type Dropper interface {
	// DropTable drops the table of a view's definition generation with its data. Dropping a
	// table that does not exist is not an error.
	DropTable(ctx context.Context, view string, generation int) error
}

// Store is the offline store: the versioned history of every view's rows.
type Store interface {
	Writer
	Reader
}

// ScanRequest selects what a Scan or Count reads.
type ScanRequest struct {
	// SnapshotID is the snapshot to read; 0 means the latest.
	SnapshotID int64
	// Columns lists the canonical columns to return, in order; empty means all the table's.
	Columns []string
	// Range restricts event time; the zero Range means no restriction.
	Range Range
	// Generation is the view's definition generation whose table is read (0 or 1: the
	// first).
	Generation int
}

// WriteResult reports one WriteInterval commit.
type WriteResult struct {
	// SnapshotID is the snapshot the write committed; 0 when NoOp.
	SnapshotID int64
	// NoOp reports that nothing was committed: the stream had no rows and the table had none
	// in the interval to replace, so a new snapshot would have changed nothing.
	NoOp bool
	// RowsIn is the number of rows read from the stream.
	RowsIn int64
	// RowsWritten is the number of rows in the interval after the write (RowsIn less the
	// duplicates collapsed).
	RowsWritten int64
	// Spilled reports whether the rows were spilled to disk to bound memory.
	Spilled bool
	// Conflicts counts the rows collapsed into a later row with the same (join keys,
	// EventTS, CreatedTS) whose other columns differ from it: distinct events of which only
	// the last was kept. Identical duplicates are not counted. ConflictExample names one
	// ("user_id=7 event_ts=... created_ts=...").
	Conflicts       int64
	ConflictExample string
}

// Snapshot is one committed version of a view's table.
type Snapshot struct {
	ID        int64
	ParentID  int64 // 0 for the first
	Committed time.Time
	// Operation is the Iceberg operation: append, overwrite, delete or replace.
	Operation string
	// RunID and Interval are what WriteInterval recorded; empty for other commits.
	RunID    string
	Interval Range
	// Summary is the full snapshot summary.
	Summary map[string]string
}
