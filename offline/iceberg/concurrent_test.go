package iceberg

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

// TestConcurrentWrites runs two writers on different intervals of one view at once, through
// two catalogs over one SQLite file (as two processes would). The loser of the commit race
// replays its rows on the winner's snapshot, so both intervals end up replaced.
func TestConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := killConfig(dir)
	mem := memory.DefaultAllocator
	open := func() *Store {
		cat, err := OpenCatalog(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = cat.Close() })
		s, err := NewStore(ctx, cat, StoreOptions{})
		require.NoError(t, err)
		return s
	}
	s1, s2 := open(), open()
	var v1 []sourcetest.Row
	for h := range 72 {
		ts := base.Add(time.Duration(h) * time.Hour)
		v1 = append(v1, sourcetest.Row{UserID: int64(h % 5), TS: ts, Created: ts, Spend: 1})
	}
	all := offline.Range{Start: base, End: base.Add(3 * day)}
	_, err := s1.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, v1), "v1")
	require.NoError(t, err)

	intervals := []offline.Range{{Start: base, End: base.Add(day)}, {Start: base.Add(day), End: base.Add(2 * day)}}
	stores := []*Store{s1, s2}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		var rows []sourcetest.Row
		for _, r := range v1 {
			if !r.TS.Before(intervals[i].Start) && r.TS.Before(intervals[i].End) {
				r.Spend = float64(10 + i)
				rows = append(rows, r)
			}
		}
		in := stream(t, mem, rows)
		wg.Go(func() {
			_, errs[i] = stores[i].WriteInterval(ctx, sourcetest.View(), intervals[i], in, "w")
		})
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	want := map[float64]int64{1: 24, 10: 24, 11: 24}
	require.Equal(t, want, spendCounts(t, s1))
}
