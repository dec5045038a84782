package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

// aggBenchYAML is a view of 12 aggregation features: sum, count, max and mean of one column
// over 1h, 1d and 7d.
const aggBenchYAML = `
feature_views:
  - name: txn_aggs
    entities: [user]
    source: txns
    columns: [{ name: amount, type: float64 }]
    aggregations:
      - { column: amount, function: sum, windows: [1h, 1d, 7d] }
      - { column: amount, function: count, windows: [1h, 1d, 7d] }
      - { column: amount, function: max, windows: [1h, 1d, 7d] }
      - { column: amount, function: mean, windows: [1h, 1d, 7d] }
`

// BenchmarkReadAggregations reads one entity of a 12-aggregation view (tiles combined at the
// read time), each entity holding the tiles of 100 events spread over the last 7 days. It
// reports the tiles' size per entity; bench-aggregations.sh puts redis-benchmark's HMGET of a
// value that size beside it. See docs/BENCHMARKS.md.
func BenchmarkReadAggregations(b *testing.B) {
	ctx := context.Background()
	f, err := definitions.Parse("bench.yaml", []byte(aggBenchYAML))
	if err != nil {
		b.Fatal(err)
	}
	fv := f.Objects[0].(*definitions.FeatureView)
	fv.Entities = []string{"user"}
	project := fmt.Sprintf("bench%d", benchSeq.Add(1))
	v := onlinetest.MustView(b, project, fv)
	now := time.Now()
	s := New(newBenchClient(), Options{Now: func() time.Time { return now }})
	defer s.Close()
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]online.EntityKey, benchEntities)
	rows := make([]online.Row, 0, 1000)
	var size int
	for i := range keys {
		keys[i] = onlinetest.UserKey(b, v, int64(i))
		events := make([]online.AggEvent, 100)
		for j := range events {
			ev := now.Add(-time.Duration(r.Int64N(int64(7 * 24 * time.Hour))))
			events[j] = online.AggEvent{EventTS: ev, Values: []online.Value{online.Float64(r.Float64() * 100)}}
		}
		blob, latest, err := v.BuildTiles(events, now)
		if err != nil {
			b.Fatal(err)
		}
		size += len(blob)
		rows = append(rows, online.Row{Key: keys[i], EventTS: latest, CreatedTS: now, Values: []online.Value{online.Bytes(blob)}})
		if len(rows) == cap(rows) {
			if err := s.Write(ctx, v, rows); err != nil {
				b.Fatal(err)
			}
			rows = rows[:0]
		}
	}
	if err := s.Write(ctx, v, rows); err != nil {
		b.Fatal(err)
	}
	for _, conc := range []int{1, 50} {
		b.Run(fmt.Sprintf("entities=1/aggregations=12/conc=%d", conc), func(b *testing.B) {
			runLatency(b, conc, 1, func(seed int) error {
				res, err := s.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: []online.EntityKey{keys[(seed*7919)%benchEntities]}}}})
				if err == nil && res.Columns[5].Statuses[0] != online.Present {
					err = fmt.Errorf("count_7d status %v", res.Columns[5].Statuses[0])
				}
				return err
			})
			b.ReportMetric(float64(size)/float64(len(keys)), "tile-bytes/entity")
		})
	}
}
