package redis

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

// Benchmarks run against the package's throwaway Redis, or against QUIVER_BENCH_REDIS
// (host:port) when set, so that bench.sh can put go-redis and redis-benchmark on the same
// server. See docs/BENCHMARKS.md.

const benchEntities = 10_000 // distinct entities written, then read at random

func benchAddr() string {
	if a := os.Getenv("QUIVER_BENCH_REDIS"); a != "" {
		return a
	}
	return single.Addr
}

// benchViews are three views of ten features each: 30 features per entity.
func benchViews(b *testing.B, project string) []*online.View {
	types := []string{"int64", "float64", "float32", "int32", "bool", "string", "int64", "float64", "array<float32>", "timestamp"}
	var views []*online.View
	for i := range 3 {
		fv := onlinetest.FeatureView(fmt.Sprintf("view_%d", i), []string{"user"}, 7*24*time.Hour)
		for j, ty := range types {
			fv.Features = append(fv.Features, definitions.Field{Name: fmt.Sprintf("f%d_%d", i, j), Type: definitions.MustType(ty)})
		}
		views = append(views, onlinetest.MustView(b, project, fv))
	}
	return views
}

func benchRow(v *online.View, key online.EntityKey, id int, ev time.Time) online.Row {
	return online.Row{Key: key, EventTS: ev, CreatedTS: ev, Values: []online.Value{
		online.Int64(int64(id)), online.Float64(float64(id) / 3), online.Float32(1.5), online.Int32(int32(id)),
		online.Bool(id%2 == 0), online.String("segment-" + fmt.Sprint(id%17)), online.Int64(int64(id) * 7),
		online.Float64(0.25), online.Float32s([]float32{0.1, 0.2, 0.3, 0.4}), online.Timestamp(ev),
	}}
}

var benchSeq atomic.Int64

func BenchmarkRead(b *testing.B) {
	ctx := context.Background()
	s := New(newBenchClient(), Options{})
	defer s.Close()
	project := fmt.Sprintf("bench%d", benchSeq.Add(1))
	views := benchViews(b, project)
	keys := make([]online.EntityKey, benchEntities)
	now := time.Now()
	for _, v := range views {
		rows := make([]online.Row, benchEntities)
		for i := range rows {
			if v == views[0] {
				keys[i] = onlinetest.UserKey(b, v, int64(i))
			}
			rows[i] = benchRow(v, keys[i], i, now)
		}
		if err := s.Write(ctx, v, rows); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range []int{1, 100} {
		for _, conc := range []int{1, 50} {
			b.Run(fmt.Sprintf("entities=%d/views=3/features=30/conc=%d", n, conc), func(b *testing.B) {
				request := func(seed int) online.ReadRequest {
					ks := make([]online.EntityKey, n)
					for i := range ks {
						ks[i] = keys[(seed*n+i*7919)%benchEntities]
					}
					req := online.ReadRequest{}
					for _, v := range views {
						req.Views = append(req.Views, online.ViewRead{View: v, Keys: ks})
					}
					return req
				}
				runLatency(b, conc, n, func(seed int) error {
					res, err := s.Read(ctx, request(seed))
					if err == nil && res.Columns[0].Statuses[0] != online.Present {
						err = fmt.Errorf("status %v", res.Columns[0].Statuses[0])
					}
					return err
				})
			})
		}
	}
}

// runLatency runs op with conc goroutines, b.N times in all, and reports ops/s, rows/s (rows
// per op), and p50/p99 latency.
func runLatency(b *testing.B, conc, rows int, op func(seed int) error) {
	b.ReportAllocs()
	var mu sync.Mutex
	var all []time.Duration
	var seq atomic.Int64
	b.ResetTimer()
	start := time.Now()
	if conc == 1 {
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t0 := time.Now()
			if err := op(int(seq.Add(1))); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		all = lat
	} else {
		var wg sync.WaitGroup
		var failed atomic.Value
		var next atomic.Int64
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lat := make([]time.Duration, 0, b.N/conc+1)
				for next.Add(1) <= int64(b.N) {
					t0 := time.Now()
					if err := op(int(seq.Add(1))); err != nil {
						failed.Store(err)
						return
					}
					lat = append(lat, time.Since(t0))
				}
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	ops := float64(len(all)) / elapsed.Seconds()
	b.ReportMetric(ops, "ops/s")
	b.ReportMetric(ops*float64(rows), "rows/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[min(len(all)-1, len(all)*99/100)].Microseconds()), "p99-µs")
}

// BenchmarkWrite writes batches of rows of a view of ten features, every row newer than the
// stored one (so each is really written: the guard does not rewrite a row identical to the
// stored one), and reports view-rows/s.
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	for _, conc := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("features=10/batch=2048/conc=%d", conc), func(b *testing.B) {
			s := New(newBenchClient(), Options{})
			defer s.Close()
			v := benchViews(b, fmt.Sprintf("bench%d", benchSeq.Add(1)))[0]
			const batch = 2048
			keys := make([]online.EntityKey, 100_000)
			for i := range keys {
				keys[i] = onlinetest.UserKey(b, v, int64(i))
			}
			// Rows are built up front: building them is the caller's work. Each write stamps
			// a copy of its batch with a new time, a microsecond per write later than the last.
			base := time.Now().Add(-time.Hour)
			batches := make([][]online.Row, len(keys)/batch)
			for j := range batches {
				batches[j] = make([]online.Row, batch)
				for i := range batches[j] {
					id := j*batch + i
					batches[j][i] = benchRow(v, keys[id], id, base)
				}
			}
			bufs := sync.Pool{New: func() any { return new([batch]online.Row) }}
			runLatency(b, conc, batch, func(seed int) error {
				buf := bufs.Get().(*[batch]online.Row)
				defer bufs.Put(buf)
				rows := buf[:]
				copy(rows, batches[seed%len(batches)])
				ev := base.Add(time.Duration(seed) * time.Microsecond)
				for i := range rows {
					rows[i].EventTS, rows[i].CreatedTS = ev, ev
				}
				return s.Write(ctx, v, rows)
			})
		})
	}
}

// newBenchClient has a connection per benchmark goroutine, as redis-benchmark -c 50 has.
func newBenchClient() *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: benchAddr(), ContextTimeoutEnabled: true, PoolSize: 64})
}
