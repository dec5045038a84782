package registrytest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/registry"
)

// backfill is a backfill of three days of view in one-day chunks.
func backfill(project, view string) registry.Backfill {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b := registry.Backfill{Project: project, View: view, Start: start, End: start.Add(72 * time.Hour), Chunk: 24 * time.Hour}
	for i := range 3 {
		at := start.Add(time.Duration(i) * 24 * time.Hour)
		b.Chunks = append(b.Chunks, registry.BackfillChunk{Seq: i, Start: at, End: at.Add(24 * time.Hour)})
	}
	return b
}

// testBackfills: a backfill is recorded with its chunks PENDING; chunk states are kept; the
// same backfill started again returns the recorded states (a resume), another range, chunk
// size, view or project is another backfill; bad input is refused.
func testBackfills(t *testing.T, s registry.Store) {
	c := ctx(t)
	b, err := s.StartBackfill(c, backfill("shop", "stats"))
	require.NoError(t, err)
	require.NotZero(t, b.ID)
	require.Len(t, b.Chunks, 3)
	for i, ch := range b.Chunks {
		require.Equal(t, registry.ChunkPending, ch.Status)
		require.Equal(t, i, ch.Seq)
		require.True(t, ch.Start.Equal(backfill("shop", "stats").Chunks[i].Start))
	}
	require.Equal(t, 24*time.Hour, b.Chunk)

	require.NoError(t, s.SetChunk(c, b.ID, 0, registry.ChunkUpdate{Status: registry.ChunkRunning, RunID: 7}))
	require.NoError(t, s.SetChunk(c, b.ID, 0, registry.ChunkUpdate{Status: registry.ChunkDone, RunID: 7}))
	require.NoError(t, s.SetChunk(c, b.ID, 1, registry.ChunkUpdate{Status: registry.ChunkFailed, RunID: 8, Error: "boom"}))
	require.NoError(t, s.SetChunk(c, b.ID, 2, registry.ChunkUpdate{Status: registry.ChunkRunning, RunID: 9}))

	again, err := s.StartBackfill(c, backfill("shop", "stats"))
	require.NoError(t, err)
	require.Equal(t, b.ID, again.ID, "the same backfill is resumed")
	var states []registry.ChunkStatus
	for _, ch := range again.Chunks {
		states = append(states, ch.Status)
	}
	require.Equal(t, []registry.ChunkStatus{registry.ChunkDone, registry.ChunkFailed, registry.ChunkRunning}, states)
	require.Equal(t, registry.RunID(8), again.Chunks[1].RunID)
	require.Equal(t, "boom", again.Chunks[1].Error)
	got, err := s.GetBackfill(c, b.ID)
	require.NoError(t, err)
	require.Equal(t, again, got)

	other := backfill("shop", "stats")
	other.End = other.End.Add(-24 * time.Hour)
	other.Chunks = other.Chunks[:2]
	o, err := s.StartBackfill(c, other)
	require.NoError(t, err)
	require.NotEqual(t, b.ID, o.ID, "another range is another backfill")
	require.Equal(t, registry.ChunkPending, o.Chunks[0].Status)
	for _, p := range [][2]string{{"shop", "other"}, {"bank", "stats"}} {
		o, err := s.StartBackfill(c, backfill(p[0], p[1]))
		require.NoError(t, err)
		require.NotEqual(t, b.ID, o.ID)
		require.Equal(t, registry.ChunkPending, o.Chunks[0].Status)
	}

	_, err = s.GetBackfill(c, b.ID+1000)
	require.ErrorIs(t, err, registry.ErrNotFound)
	require.ErrorIs(t, s.SetChunk(c, b.ID, 3, registry.ChunkUpdate{Status: registry.ChunkDone}), registry.ErrNotFound)
	require.ErrorIs(t, s.SetChunk(c, b.ID, 0, registry.ChunkUpdate{Status: "HALF"}), registry.ErrInvalid)
	gap := backfill("shop", "gap")
	gap.Chunks[1].Start = gap.Chunks[1].Start.Add(time.Hour)
	short := backfill("shop", "short")
	short.Chunks = short.Chunks[:2]
	for _, bad := range []registry.Backfill{gap, short, {Project: "shop", View: "x", Start: gap.Start, End: gap.Start, Chunk: time.Hour}, {Project: "shop"}} {
		_, err := s.StartBackfill(c, bad)
		require.ErrorIs(t, err, registry.ErrInvalid)
	}
}

// testConcurrentBackfillStarts: processes starting the same backfill at once all get the one
// backfill, recorded once.
func testConcurrentBackfillStarts(t *testing.T, s registry.Store) {
	const n = 6
	ids := make([]registry.BackfillID, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			b, err := s.StartBackfill(ctx(t), backfill("shop", "race"))
			ids[i], errs[i] = b.ID, err
		})
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, ids[0], ids[i])
	}
	b, err := s.GetBackfill(ctx(t), ids[0])
	require.NoError(t, err)
	require.Len(t, b.Chunks, 3)
}
