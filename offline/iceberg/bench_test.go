package iceberg

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

// BenchmarkWriteInterval writes 200,000 rows over two days, re-running the same interval.
func BenchmarkWriteInterval(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts StoreOptions
	}{{"memory", StoreOptions{}}, {"spilled", StoreOptions{MemoryBudget: 1}}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			s, _ := newStore(b, tc.opts)
			const batches, per = 20, 10_000
			r := offline.Range{Start: base, End: base.Add(2 * day)}
			recs := make([]arrow.RecordBatch, batches)
			for i := range recs {
				rows := make([]sourcetest.Row, per)
				for j := range rows {
					n := i*per + j
					ts := base.Add(time.Duration(n) * (2 * day / (batches * per)))
					rows[j] = sourcetest.Row{UserID: int64(n % 50_000), TS: ts, Created: ts, Spend: float64(n)}
				}
				recs[i] = canonical(b, memory.DefaultAllocator, rows)
			}
			b.ReportAllocs()
			for b.Loop() {
				for _, r := range recs {
					r.Retain()
				}
				_, err := s.WriteInterval(ctx, sourcetest.View(), r, offline.NewSliceStream(sourcetest.View().Arrow(), recs...), "bench")
				require.NoError(b, err)
			}
			b.ReportMetric(float64(batches*per)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
