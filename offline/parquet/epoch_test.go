package parquet

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
)

// TestEpochIntervalEdges is the regression test for timestamps just before 1970: a value is
// read at the microsecond it falls in (floored, like row-group pruning and the join engine),
// so every value lands in exactly one of two adjacent intervals, whatever its unit and sign.
// Before the fix, -500 ns was cast to 0 µs (truncated toward zero) while its row group was
// pruned from [0, 1h) as -1 µs, so neither interval read it.
func TestEpochIntervalEdges(t *testing.T) {
	epoch := time.Unix(0, 0).UTC()
	cases := []struct {
		unit arrow.TimeUnit
		vals []int64 // in unit
	}{
		{arrow.Nanosecond, []int64{-1_000_001, -1000, -999, -501, -500, -499, -1, 0, 1, 999, 1000}},
		{arrow.Microsecond, []int64{-2, -1, 0, 1}},
		{arrow.Millisecond, []int64{-2, -1, 0, 1}},
		{arrow.Second, []int64{-2, -1, 0, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.unit.String(), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			schema := arrow.NewSchema([]arrow.Field{
				{Name: "k", Type: arrow.PrimitiveTypes.Int64},
				{Name: "t", Type: &arrow.TimestampType{Unit: tc.unit, TimeZone: "UTC"}},
			}, nil)
			b := array.NewRecordBuilder(mem, schema)
			defer b.Release()
			for i, v := range tc.vals {
				b.Field(0).(*array.Int64Builder).Append(int64(i))
				b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(v))
			}
			rec := b.NewRecordBatch()
			defer rec.Release()
			path := filepath.Join(t.TempDir(), "edges.parquet")
			writeParquet(t, path, rec, 1) // one row per row group: pruning sees every value alone

			vs := offline.ViewSchema{View: "edges", JoinKeys: []offline.Column{{Name: "k", Type: definitions.MustType("int64")}}}
			s := newSource(t, path, offline.Fields{Timestamp: "t"}, Options{Allocator: mem})
			read := func(r offline.Range) map[int64]int64 {
				st, err := s.Read(context.Background(), vs, r)
				require.NoError(t, err)
				tbl, err := offline.ReadAll(context.Background(), st)
				require.NoError(t, err)
				defer tbl.Release()
				got := map[int64]int64{}
				for c, chunk := range tbl.Column(0).Data().Chunks() {
					keys := chunk.(*array.Int64)
					tss := tbl.Column(1).Data().Chunk(c).(*array.Timestamp)
					for i := range keys.Len() {
						got[keys.Value(i)] = int64(tss.Value(i))
					}
				}
				return got
			}
			// Intervals around the epoch at several widths, down to one microsecond.
			for _, w := range []time.Duration{time.Hour, time.Millisecond, time.Microsecond} {
				before := read(offline.Range{Start: epoch.Add(-w), End: epoch})
				after := read(offline.Range{Start: epoch, End: epoch.Add(w)})
				for i, v := range tc.vals {
					ns := v * int64(tc.unit.Multiplier())
					wantUS := floorDiv(ns, 1000)
					inBefore := wantUS < 0 && wantUS >= -w.Microseconds()
					inAfter := wantUS >= 0 && wantUS < w.Microseconds()
					name := fmt.Sprintf("%d %s in interval of width %s", v, tc.unit, w)
					us, b := before[int64(i)]
					require.Equal(t, inBefore, b, "%s: read before the epoch", name)
					if b {
						require.Equal(t, wantUS, us, "%s: value read (floored to µs)", name)
					}
					us, a := after[int64(i)]
					require.Equal(t, inAfter, a, "%s: read after the epoch", name)
					if a {
						require.Equal(t, wantUS, us, "%s: value read (floored to µs)", name)
					}
					if w == time.Hour {
						require.True(t, a != b, "%s: read by exactly one of the two intervals", name)
					}
				}
			}
		})
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
