package fold

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
)

// discard is an online.Writer that drops what it is handed: BenchmarkAdd measures the fold's
// own CPU, not a store's.
type discard struct{ online.Writer }

func (discard) Write(context.Context, *online.View, []online.Row) error { return nil }

// BenchmarkAdd folds scripts/bench.sh's materialization shape — 10 features (float64 and
// int64 alternating) keyed by one int64, rows in random order over 30 days, 5 source rows per
// entity — 65,536 rows per batch, and reports source rows folded per second.
func BenchmarkAdd(b *testing.B) {
	const entities, batches, perBatch = 200_000, 16, 65_536
	entity := definitions.Entity{Name: "entity", JoinKeys: []definitions.Field{{Name: "entity_id", Type: definitions.MustType("int64")}}}
	fv := &definitions.FeatureView{Name: "bench", Entities: []string{"entity"}, Source: "s", Online: true}
	for i := range 10 {
		t := "float64"
		if i%2 == 1 {
			t = "int64"
		}
		fv.Features = append(fv.Features, definitions.Field{Name: "f" + strconv.Itoa(i), Type: definitions.MustType(t)})
	}
	vs, err := offline.NewViewSchema(fv, map[string]*definitions.Entity{"entity": &entity})
	if err != nil {
		b.Fatal(err)
	}
	ov, err := online.NewView("bench", fv, []definitions.Entity{entity})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	var recs []arrow.RecordBatch
	for range batches {
		bld := array.NewRecordBuilder(memory.NewGoAllocator(), vs.Arrow())
		for range perBatch {
			ev := end - rng.Int64N(30*24*3600*1e6)
			bld.Field(0).(*array.Int64Builder).Append(rng.Int64N(entities))
			bld.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(ev))
			bld.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(ev + 1000))
			for f := range 10 {
				if f%2 == 0 {
					bld.Field(3 + f).(*array.Float64Builder).Append(rng.Float64())
				} else {
					bld.Field(3 + f).(*array.Int64Builder).Append(rng.Int64N(1000))
				}
			}
		}
		recs = append(recs, bld.NewRecordBatch())
		bld.Release()
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		l := New(ov, vs, discard{}, 1_000_000, 2048)
		for _, r := range recs {
			if err := l.Add(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
		if err := l.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batches*perBatch)/b.Elapsed().Seconds(), "rows/s")
}
