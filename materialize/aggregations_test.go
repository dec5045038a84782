package materialize_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/parquet"
	"github.com/quiverfs/quiver/offline/pitjoin"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/embedded"
	"github.com/quiverfs/quiver/online/redis"
)

const aggYAML = `
feature_views:
  - name: txn_aggs
    entities: [user]
    source: txns
    columns:
      - { name: amount, type: float64 }
      - { name: qty, type: int64 }
      - { name: merchant, type: string }
    aggregations:
      - { column: amount, function: sum, windows: [1h, 1d, 7d] }
      - { column: amount, function: mean, windows: [1d] }
      - { column: amount, function: min, windows: [1h, 7d] }
      - { column: amount, function: max, windows: [1d] }
      - { column: amount, function: last, windows: [1h, 7d] }
      - { column: amount, function: count, windows: [1h, 1d, 7d] }
      - { column: qty, function: sum, windows: [1d] }
      - { column: qty, function: max, windows: [7d] }
      - { column: merchant, function: count_distinct, windows: [1h, 1d, 7d] }
`

func aggView(t *testing.T) *definitions.FeatureView {
	t.Helper()
	f, err := definitions.Parse("aggs.yaml", []byte(aggYAML))
	require.NoError(t, err)
	return f.Objects[0].(*definitions.FeatureView)
}

var txnSchema = arrow.NewSchema([]arrow.Field{
	{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "created", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "qty", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "merchant", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// writeTxns writes random events over days 0..days: duplicates of (user, ts, created) with
// other values, ties on ts, nulls, late rows (created long after ts) and events on tile
// boundaries.
func writeTxns(t *testing.T, path string, seed uint64, users, n, days int) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 15))
	b := array.NewRecordBuilder(memory.DefaultAllocator, txnSchema)
	defer b.Release()
	span := int64(days) * 86400e6
	type key struct{ u, ev, cr int64 }
	var prev []key
	for i := range n {
		k := key{u: int64(1 + r.IntN(users)), ev: day0.UnixMicro() + r.Int64N(span)}
		if r.IntN(3) == 0 {
			k.ev -= k.ev % 60e6 // on a tile boundary of the 1h window
		}
		k.cr = k.ev + r.Int64N(60e6)
		switch {
		case i > 0 && r.IntN(10) == 0: // a duplicate (user, ts, created): the later row wins
			k = prev[r.IntN(len(prev))]
		case i > 0 && r.IntN(10) == 0: // same ts, another created_ts
			k = prev[r.IntN(len(prev))]
			k.cr += 1e6
		case r.IntN(8) == 0: // late: created a day or two after the event
			k.cr = k.ev + r.Int64N(2*86400e6)
		}
		prev = append(prev, k)
		b.Field(0).(*array.Int64Builder).Append(k.u)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(k.ev))
		if r.IntN(6) == 0 {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(k.cr))
		}
		if r.IntN(7) == 0 {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.Float64Builder).Append(math.Round(r.NormFloat64()*1e4) / 100)
		}
		if r.IntN(7) == 0 {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.Int64Builder).Append(int64(r.IntN(1000) - 200))
		}
		if r.IntN(7) == 0 {
			b.Field(5).AppendNull()
		} else {
			b.Field(5).(*array.StringBuilder).Append(fmt.Sprintf("m%d", r.IntN(15)))
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := pqarrow.NewFileWriter(txnSchema, f, nil, pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())
}

// offlineAt computes the view's aggregations with the offline engine for entity rows
// (user, T) over the offline table at a snapshot.
func offlineAt(t *testing.T, e *env, v *definitions.FeatureView, snap int64, users []int64, ts []time.Time) arrow.Table {
	t.Helper()
	ctx := context.Background()
	s, err := e.offline.Scan(ctx, v.Name, offline.ScanRequest{SnapshotID: snap})
	require.NoError(t, err)
	events, err := offline.ReadAll(ctx, s)
	require.NoError(t, err)
	defer events.Release()
	eb := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	}, nil))
	defer eb.Release()
	for i := range users {
		eb.Field(0).(*array.Int64Builder).Append(users[i])
		eb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(ts[i].UnixMicro()))
	}
	ent := eb.NewRecordBatch()
	defer ent.Release()
	entR, err := array.NewRecordReader(ent.Schema(), []arrow.RecordBatch{ent})
	require.NoError(t, err)
	defer entR.Release()
	aggs, _ := pitjoin.AggregationsFor(v, featureNames(v))
	view := pitjoin.View{Name: v.Name, JoinKeys: []string{"user_id"}, Aggregations: aggs,
		Open: func(context.Context, pitjoin.EventRange) (array.RecordReader, error) {
			return array.NewTableReader(events, 1000), nil
		}}
	res, err := pitjoin.Join(ctx, entR, []pitjoin.View{view}, pitjoin.Options{TempDir: t.TempDir()})
	require.NoError(t, err)
	defer res.Release()
	var recs []arrow.RecordBatch
	for res.Next() {
		rec := res.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	require.NoError(t, res.Err())
	tbl := array.NewTableFromRecords(res.Schema(), recs)
	for _, r := range recs {
		r.Release()
	}
	return tbl
}

func featureNames(v *definitions.FeatureView) []string {
	out := make([]string, len(v.Features))
	for i, f := range v.Features {
		out[i] = f.Name
	}
	return out
}

// cell reads one value of a single-chunk-or-more column as an online.Value.
func cell(t *testing.T, col *arrow.Chunked, row int) online.Value {
	t.Helper()
	for _, c := range col.Chunks() {
		if row >= c.Len() {
			row -= c.Len()
			continue
		}
		if c.IsNull(row) {
			return online.Null()
		}
		switch a := c.(type) {
		case *array.Int64:
			return online.Int64(a.Value(row))
		case *array.Float64:
			return online.Float64(a.Value(row))
		}
		t.Fatalf("unexpected column type %s", c.DataType())
	}
	t.Fatalf("row out of range")
	return online.Null()
}

// tileEnd is the last microsecond of the tile of window w that holds t: the online value read
// at t is the exact offline value at tileEnd (docs/aggregations.md).
func tileEnd(t time.Time, w time.Duration) time.Time {
	s := w.Microseconds() / online.TilesPerWindow
	us := t.UnixMicro()
	k := us / s
	return time.UnixMicro((k+1)*s - 1).UTC()
}

// TestAggregationsOnlineMatchOffline materializes random events into the offline and online
// stores (embedded and Redis), then reads online with the clock set to instants T after each
// run and compares every feature with the offline engine over the offline table at the tile end
// of T: equal for counts, distinct counts, integer sums, min, max and last; float sums and
// means to 1e-9 relative. Instants on a common tile boundary compare with offline at T itself.
func TestAggregationsOnlineMatchOffline(t *testing.T) {
	for _, backend := range []string{"embedded", "redis"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			const users = 25
			writeTxns(t, filepath.Join(dir, "txns.parquet"), 3, users, 6000, 12)
			e := openEnv(t, dir, 256)
			v := aggView(t)
			var clock time.Time
			now := func() time.Time { return clock }
			var store online.Store
			var err error
			if backend == "redis" {
				r := testenv.StartRedis(t)
				store, err = redis.Open(ctx, "redis://"+r.Addr, redis.Options{Now: now})
			} else {
				store, err = embedded.Open(ctx, filepath.Join(dir, "agg-online.db"), embedded.Options{Now: now})
			}
			require.NoError(t, err)
			t.Cleanup(func() { store.Close() })
			srcDef := &definitions.Source{Name: "txns", Parquet: &definitions.ParquetSource{Path: "txns.parquet"}, TimestampField: "ts", CreatedTimestampField: "created"}
			src, err := parquet.New(srcDef, parquet.Options{BaseDir: dir, BatchSize: 500})
			require.NoError(t, err)
			vs, err := offline.NewViewSchema(v, map[string]*definitions.Entity{"user": &userEntity})
			require.NoError(t, err)
			ov, err := online.NewView(project, v, []definitions.Entity{userEntity})
			require.NoError(t, err)
			job := materialize.Job{Project: project, Schema: vs, Source: src, Offline: e.offline, OfflineReader: e.offline, Online: store, OnlineView: ov}
			r := rand.New(rand.NewPCG(9, 9))
			keys := make([]online.EntityKey, users)
			for i := range keys {
				keys[i], err = ov.Key(online.Int64(int64(i + 1)))
				require.NoError(t, err)
			}
			start := day(0)
			checked, nonzero := 0, 0
			for _, end := range []time.Time{day(4), day(8).Add(90 * time.Minute), day(12)} {
				res, err := materialize.Run(ctx, e.reg, job, start, end, materialize.Options{OnlineBatch: 7})
				require.NoError(t, err)
				if end.Equal(day(4)) { // a re-run changes nothing
					res, err = materialize.Run(ctx, e.reg, job, start, end, materialize.Options{})
					require.NoError(t, err)
				}
				start = end
				// Instants at and after the run's end: right at it, minutes and days later, and on
				// a tile boundary common to every window (168 minutes: 1h/60, 1d/60 and 7d/60 divide it).
				var instants []time.Time
				for range 6 {
					instants = append(instants, end.Add(time.Duration(r.Int64N(int64(2*time.Hour)))))
					instants = append(instants, end.Add(time.Duration(r.Int64N(int64(8*24*time.Hour)))))
				}
				common := int64(168 * time.Minute / time.Microsecond)
				b := (end.UnixMicro()/common + 1) * common
				instants = append(instants, end, time.UnixMicro(b-1).UTC(), time.UnixMicro(b+3*common-1).UTC())
				feats := v.AggFeatures()
				for _, at := range instants {
					clock = at
					got, err := store.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: ov, Keys: keys}}})
					require.NoError(t, err)
					// Offline reference: one entity row per user and window, at the window's tile end.
					var us []int64
					var ts []time.Time
					for _, w := range []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour} {
						for u := range users {
							us = append(us, int64(u+1))
							ts = append(ts, tileEnd(at, w))
						}
					}
					want := offlineAt(t, e, v, res.SnapshotID, us, ts)
					for f, af := range feats {
						wi := map[time.Duration]int{time.Hour: 0, 24 * time.Hour: 1, 7 * 24 * time.Hour: 2}[af.Window]
						col := want.Column(2 + f).Data()
						for u := range users {
							wv := cell(t, col, wi*users+u)
							gv := got.Columns[f].Values[u]
							st := got.Columns[f].Statuses[u]
							if wv.IsNull() {
								require.Contains(t, []online.Status{online.NullValue, online.NotFound}, st, "%s user %d at %s: offline null, online %v", af.Name, u+1, at, gv)
								checked++
								continue
							}
							if st == online.NotFound { // the user has no event in any lookback yet
								if wv.Type().Elem == definitions.Int64 && wv.Int64() == 0 && (af.Function == definitions.AggCount || af.Function == definitions.AggCountDistinct) {
									checked++
									continue
								}
							}
							require.Equal(t, online.Present, st, "%s user %d at %s: offline %v", af.Name, u+1, at, wv)
							if wv.Type().Elem != definitions.Int64 || wv.Int64() != 0 {
								nonzero++
							}
							if wv.Type().Elem == definitions.Float64 && (af.Function == definitions.AggSum || af.Function == definitions.AggMean) {
								w, g := wv.Float64(), gv.Float64()
								require.InDelta(t, w, g, 1e-9*math.Max(1, math.Abs(w)), "%s user %d at %s", af.Name, u+1, at)
							} else {
								require.Equal(t, wv, gv, "%s user %d at %s", af.Name, u+1, at)
							}
							checked++
						}
					}
					want.Release()
				}
			}
			require.Equal(t, 3*15*len(v.Features)*users, checked, "every feature of every user at every instant")
			require.Greater(t, nonzero, checked/3, "most comparisons are of values, not empty windows")
		})
	}
}
