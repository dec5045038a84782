package registry

import (
	"context"
	"fmt"
	"time"
)

// BackfillStore records resumable backfills: a backfill of [Start, End) of one view split into
// chunks, and each chunk's state, so that a re-run of the same backfill (same view, range and
// chunk size) resumes at the chunks not yet DONE (materialize --chunk).
type BackfillStore interface {
	// StartBackfill returns the backfill of b's project, view, range and chunk size with every
	// chunk's state, recording it — its chunks, from b.Chunks, PENDING — when there is none.
	// A recorded backfill keeps its chunks' states (b.Chunks is then only checked against
	// them: the same boundaries, or ErrConflict). Of concurrent starts of the same backfill
	// exactly one records it; the others read it.
	StartBackfill(ctx context.Context, b Backfill) (Backfill, error)
	// SetChunk records the state of chunk seq of backfill id: RUNNING with the run that
	// loads it, DONE, or FAILED with the error. ErrNotFound for an unknown chunk.
	SetChunk(ctx context.Context, id BackfillID, seq int, u ChunkUpdate) error
	// GetBackfill returns a backfill with its chunks in order; ErrNotFound when unknown.
	GetBackfill(ctx context.Context, id BackfillID) (Backfill, error)
}

// BackfillID identifies a backfill.
type BackfillID int64

// ChunkStatus is the state of a backfill chunk.
type ChunkStatus string

// Backfill chunk states. A chunk left RUNNING by a process that died is not DONE, so a
// re-run loads it again.
const (
	ChunkPending ChunkStatus = "PENDING"
	ChunkRunning ChunkStatus = "RUNNING"
	ChunkDone    ChunkStatus = "DONE"
	ChunkFailed  ChunkStatus = "FAILED"
)

// Backfill is a backfill of [Start, End) of a view in chunks of Chunk.
type Backfill struct {
	ID         BackfillID
	Project    string
	View       string
	Start, End time.Time
	Chunk      time.Duration
	CreatedAt  time.Time
	// Chunks are the chunks in time order, seq 0, 1, ...
	Chunks []BackfillChunk
}

// BackfillChunk is one chunk of a backfill.
type BackfillChunk struct {
	Seq        int
	Start, End time.Time
	Status     ChunkStatus
	// RunID is the materialization run that last loaded the chunk; 0 before any.
	RunID     RunID
	Error     string
	UpdatedAt time.Time
}

// ChunkUpdate is a chunk's new state.
type ChunkUpdate struct {
	Status ChunkStatus
	RunID  RunID
	Error  string
}

// Validate checks a backfill to start: names, a non-empty range, a positive chunk size, and
// chunks that tile the range in order.
func (b Backfill) Validate() error {
	switch {
	case b.Project == "" || b.View == "":
		return fmt.Errorf("backfill: empty project or view name: %w", ErrInvalid)
	case !b.Start.Before(b.End):
		return fmt.Errorf("backfill of %q: range [%s, %s) is empty: %w", b.View, b.Start.UTC().Format(time.RFC3339), b.End.UTC().Format(time.RFC3339), ErrInvalid)
	case b.Chunk <= 0:
		return fmt.Errorf("backfill of %q: chunk size %s is not positive: %w", b.View, b.Chunk, ErrInvalid)
	case len(b.Chunks) == 0:
		return fmt.Errorf("backfill of %q: no chunks: %w", b.View, ErrInvalid)
	}
	at := b.Start
	for i, c := range b.Chunks {
		if c.Seq != i || !c.Start.Equal(at) || !c.Start.Before(c.End) {
			return fmt.Errorf("backfill of %q: chunk %d [%s, %s) does not continue the chunks before it: %w", b.View, i,
				c.Start.UTC().Format(time.RFC3339), c.End.UTC().Format(time.RFC3339), ErrInvalid)
		}
		at = c.End
	}
	if !at.Equal(b.End) {
		return fmt.Errorf("backfill of %q: the chunks end at %s, not at the range's end: %w", b.View, at.UTC().Format(time.RFC3339), ErrInvalid)
	}
	return nil
}
