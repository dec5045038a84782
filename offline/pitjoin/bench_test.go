package pitjoin

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Benchmark sizes come from the environment so the default run stays small:
//
//	PITJOIN_FEATURE_ROWS (default 200000)  feature rows per view
//	PITJOIN_ENTITIES     (default 20000)   distinct entity keys
//	PITJOIN_ENTITY_ROWS  (default 40000)   entity rows
//	PITJOIN_VIEWS        (default 1)       views joined at once
//	PITJOIN_FEATURES     (default 10)      float64/int64 features per view
//	PITJOIN_BUDGET       (default 0)       Options.MemoryBudget in bytes (0: the default)
func envInt(name string, def int) int {
	if s := os.Getenv(name); s != "" {
		if v, err := strconv.Atoi(s); err == nil {
			return v
		}
	}
	return def
}

type benchSpec struct {
	featureRows, entities, entityRows, views, features int
	budget                                             int64
}

func benchSpecFromEnv() benchSpec {
	return benchSpec{
		featureRows: envInt("PITJOIN_FEATURE_ROWS", 200_000),
		entities:    envInt("PITJOIN_ENTITIES", 20_000),
		entityRows:  envInt("PITJOIN_ENTITY_ROWS", 40_000),
		views:       envInt("PITJOIN_VIEWS", 1),
		features:    envInt("PITJOIN_FEATURES", 10),
		budget:      int64(envInt("PITJOIN_BUDGET", 0)),
	}
}

const (
	benchBatch = 64 << 10
	benchSpan  = 365 * 24 * 3600 * sec // a year of microseconds
)

// genFeatureBatches generates a view's feature rows: random keys in [0, entities), event times
// over a year, created_ts up to an hour later, features alternating float64 and int64.
func genFeatureBatches(mem memory.Allocator, seed uint64, s benchSpec) (*arrow.Schema, []arrow.RecordBatch) {
	var out []arrow.RecordBatch
	schema := genFeatures(mem, seed, s, func(rec arrow.RecordBatch) error {
		out = append(out, rec)
		return nil
	})
	return schema, out
}

// genFeatures generates the batches of genFeatureBatches one at a time; emit owns each batch.
func genFeatures(mem memory.Allocator, seed uint64, s benchSpec, emit func(arrow.RecordBatch) error) *arrow.Schema {
	r := rand.New(rand.NewPCG(seed, 7))
	fields := []arrow.Field{
		{Name: "user_id", Type: i64},
		{Name: "event_ts", Type: tsType, Nullable: true},
		{Name: "created_ts", Type: tsType, Nullable: true},
	}
	for f := range s.features {
		dt := arrow.DataType(f64)
		if f%2 == 1 {
			dt = i64
		}
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("f%d", f), Type: dt, Nullable: true})
	}
	schema := arrow.NewSchema(fields, nil)
	for lo := 0; lo < s.featureRows; lo += benchBatch {
		n := min(benchBatch, s.featureRows-lo)
		b := array.NewRecordBuilder(mem, schema)
		ids := make([]int64, n)
		ev := make([]arrow.Timestamp, n)
		cr := make([]arrow.Timestamp, n)
		for i := range n {
			ids[i] = r.Int64N(int64(s.entities))
			e := r.Int64N(benchSpan)
			ev[i] = arrow.Timestamp(e)
			cr[i] = arrow.Timestamp(e + r.Int64N(3600*sec))
		}
		b.Field(0).(*array.Int64Builder).AppendValues(ids, nil)
		b.Field(1).(*array.TimestampBuilder).AppendValues(ev, nil)
		b.Field(2).(*array.TimestampBuilder).AppendValues(cr, nil)
		fv := make([]float64, n)
		iv := make([]int64, n)
		for f := range s.features {
			if f%2 == 0 {
				for i := range fv {
					fv[i] = r.Float64()
				}
				b.Field(3+f).(*array.Float64Builder).AppendValues(fv, nil)
			} else {
				for i := range iv {
					iv[i] = r.Int64N(1000)
				}
				b.Field(3+f).(*array.Int64Builder).AppendValues(iv, nil)
			}
		}
		rec := b.NewRecordBatch()
		b.Release()
		if err := emit(rec); err != nil {
			return schema
		}
	}
	return schema
}

func genEntityBatches(mem memory.Allocator, s benchSpec) (*arrow.Schema, []arrow.RecordBatch) {
	r := rand.New(rand.NewPCG(1, 1))
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: i64},
		{Name: "event_timestamp", Type: tsType},
		{Name: "label", Type: f64},
	}, nil)
	var out []arrow.RecordBatch
	for lo := 0; lo < s.entityRows; lo += benchBatch {
		n := min(benchBatch, s.entityRows-lo)
		b := array.NewRecordBuilder(mem, schema)
		for range n {
			b.Field(0).(*array.Int64Builder).Append(r.Int64N(int64(s.entities)))
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Int64N(benchSpan)))
			b.Field(2).(*array.Float64Builder).Append(r.Float64())
		}
		out = append(out, b.NewRecordBatch())
		b.Release()
	}
	return schema, out
}

type benchData struct {
	entSchema *arrow.Schema
	ent       []arrow.RecordBatch
	views     []View
	release   func()
}

func genBench(mem memory.Allocator, s benchSpec) benchData {
	d := benchData{}
	d.entSchema, d.ent = genEntityBatches(mem, s)
	var all [][]arrow.RecordBatch
	for v := range s.views {
		schema, recs := genFeatureBatches(mem, uint64(v+10), s)
		all = append(all, recs)
		var feats []string
		for f := range s.features {
			feats = append(feats, fmt.Sprintf("f%d", f))
		}
		d.views = append(d.views, View{
			Name: fmt.Sprintf("v%d", v), JoinKeys: []string{"user_id"}, TTL: 0, Features: feats,
			Open: func(context.Context, EventRange) (array.RecordReader, error) {
				return array.NewRecordReader(schema, recs)
			},
		})
	}
	d.release = func() {
		for _, r := range d.ent {
			r.Release()
		}
		for _, recs := range all {
			for _, r := range recs {
				r.Release()
			}
		}
	}
	return d
}

// runBench joins and drains the output, returning the stats.
func runBench(ctx context.Context, d benchData, opts Options) (Stats, error) {
	rdr, err := array.NewRecordReader(d.entSchema, d.ent)
	if err != nil {
		return Stats{}, err
	}
	defer rdr.Release()
	res, err := Join(ctx, rdr, d.views, opts)
	if err != nil {
		return Stats{}, err
	}
	defer res.Release()
	for res.Next() {
	}
	return res.Stats(), res.Err()
}

// BenchmarkJoin joins generated data (PITJOIN_* sizes, see benchSpecFromEnv) by the merge and
// by the fold (Options.Fold).
func BenchmarkJoin(b *testing.B) {
	s := benchSpecFromEnv()
	d := genBench(memory.DefaultAllocator, s)
	defer d.release()
	for _, fold := range []bool{false, true} {
		name := "merge"
		if fold {
			name = "fold"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var st Stats
			for b.Loop() {
				var err error
				if st, err = runBench(b.Context(), d, Options{MemoryBudget: s.budget, Fold: fold}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(s.entityRows)*float64(b.N)/b.Elapsed().Seconds(), "entity-rows/s")
			b.ReportMetric(float64(st.SpilledBytes), "spilled-bytes")
			b.ReportMetric(float64(st.FoldedViews), "folded-views")
		})
	}
}
