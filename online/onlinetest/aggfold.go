package onlinetest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
)

// NewClockedStore returns a store for one test whose clock (reads, and folds of events) is now.
type NewClockedStore func(t *testing.T, now func() time.Time) online.Store

// Clock is a settable clock for NewClockedStore, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Set sets the clock.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// AggView is the aggregation view the tile-fold suite uses: events of user with an int64
// qty, a float64 amount and a string merchant, aggregated over 1h and 1d (last of the string
// too).
func AggView(t testing.TB, project string) *online.View {
	t.Helper()
	f, err := definitions.Parse("agg.yaml", []byte(`
feature_views:
  - name: txn_aggs
    entities: [user]
    source: txns
    columns: [{ name: qty, type: int64 }, { name: amount, type: float64 }, { name: merchant, type: string }]
    aggregations:
      - { column: qty, function: count, windows: [1h, 1d] }
      - { column: qty, function: sum, windows: [1h, 1d] }
      - { column: qty, function: max, windows: [1h] }
      - { column: qty, function: last, windows: [1d] }
      - { column: amount, function: mean, windows: [1h] }
      - { column: merchant, function: count_distinct, windows: [1d] }
      - { column: merchant, function: last, windows: [1h] }
`))
	require.NoError(t, err)
	v, err := online.NewView(project, f.Objects[0].(*definitions.FeatureView), Entities)
	require.NoError(t, err)
	return v
}

// RunTileFoldTests checks a store's online.TileFolder: folds at the store's clock, each event
// once, read back as the exact windows at tile boundaries.
func RunTileFoldTests(t *testing.T, newStore NewClockedStore) {
	open := func(t *testing.T, c *Clock) (online.Store, online.TileFolder) {
		s := newStore(t, c.Now)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		f, ok := s.(online.TileFolder)
		require.True(t, ok, "%T does not implement online.TileFolder", s)
		return s, f
	}
	t.Run("EntityWithoutEventsReadsZero", func(t *testing.T) {
		c := &Clock{t: aggBase}
		s, _ := open(t, c)
		v := AggView(t, Project(t))
		res := read(t, s, online.ViewRead{View: v, Keys: []online.EntityKey{UserKey(t, v, 404)}})
		for _, col := range res.Columns {
			name := col.Field().Name
			switch {
			case slices.Contains([]string{"qty_count_1h", "qty_count_1d", "merchant_count_distinct_1d"}, name):
				require.Equal(t, online.Present, col.Statuses[0], name)
				require.True(t, online.Int64(0).Equal(col.Values[0]), "%s: %v", name, col.Values[0])
			default:
				require.Equal(t, online.NullValue, col.Statuses[0], name)
				require.True(t, col.Values[0].IsNull(), name)
			}
		}
	})
	t.Run("RandomizedFoldsMatchExactWindows", func(t *testing.T) {
		c := &Clock{}
		s, f := open(t, c)
		testFoldParity(t, s, f, c)
	})
	t.Run("ConcurrentFoldsCountEachEventOnce", func(t *testing.T) {
		c := &Clock{t: aggBase}
		s, f := open(t, c)
		v := AggView(t, Project(t))
		k := UserKey(t, v, 7)
		const writers, per = 8, 40
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				for i := range per {
					e := AggEvent(aggBase.Add(-time.Duration(w*per+i)*time.Second), 1, 1, "m")
					// Every event is sent twice, the second time by another writer.
					for _, ev := range [][]online.AggEvent{{e}, {e}} {
						if _, err := f.FoldEvents(context.Background(), v, []online.EntityEvents{{Key: k, Events: ev}}); err != nil {
							errs <- err
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		res := read(t, s, online.ViewRead{View: v, Keys: []online.EntityKey{k}})
		require.Equal(t, int64(writers*per), res.Columns[1].Values[0].Int64(), "qty_count_1d")
	})
	t.Run("IntegerSumsSaturate", func(t *testing.T) {
		c := &Clock{t: aggBase}
		s, f := open(t, c)
		v := AggView(t, Project(t))
		k := UserKey(t, v, 3)
		ctx := context.Background()
		for i, q := range []int64{math.MaxInt64, 1, math.MaxInt64} {
			_, err := f.FoldEvents(ctx, v, []online.EntityEvents{{Key: k, Events: []online.AggEvent{AggEvent(aggBase.Add(-time.Duration(i+1)*time.Minute), q, 1, "m")}}})
			require.NoError(t, err)
		}
		res := read(t, s, online.ViewRead{View: v, Keys: []online.EntityKey{k}})
		require.Equal(t, "qty_sum_1d", res.Columns[3].Field().Name)
		require.Equal(t, int64(math.MaxInt64), res.Columns[3].Values[0].Int64(), "clamped, not wrapped")
		_, err := f.FoldEvents(ctx, v, []online.EntityEvents{{Key: k, Events: []online.AggEvent{
			AggEvent(aggBase.Add(-10*time.Minute), math.MinInt64, 1, "m"), AggEvent(aggBase.Add(-11*time.Minute), math.MinInt64, 1, "m"),
		}}})
		require.NoError(t, err)
		res = read(t, s, online.ViewRead{View: v, Keys: []online.EntityKey{k}})
		require.Equal(t, int64(-1), res.Columns[3].Values[0].Int64(), "exact once back in range: 2(2^63-1) + 1 - 2^64")
	})
	t.Run("LateAndDuplicateEvents", func(t *testing.T) {
		c := &Clock{t: aggBase}
		s, f := open(t, c)
		v := AggView(t, Project(t))
		k := UserKey(t, v, 1)
		ctx := context.Background()
		evs := []online.AggEvent{
			AggEvent(aggBase.Add(-time.Minute), 5, 1, "a"),
			AggEvent(aggBase.Add(-49*time.Hour), 100, 1, "b"), // older than 1d and its tile: late
		}
		st, err := f.FoldEvents(ctx, v, []online.EntityEvents{{Key: k, Events: evs}})
		require.NoError(t, err)
		require.Equal(t, online.FoldStats{Folded: 1, Late: 1}, st)
		st, err = f.FoldEvents(ctx, v, []online.EntityEvents{{Key: k, Events: evs[:1]}})
		require.NoError(t, err)
		require.Equal(t, online.FoldStats{Duplicates: 1}, st)
		res := read(t, s, online.ViewRead{View: v, Keys: []online.EntityKey{k}})
		require.Equal(t, int64(1), res.Columns[1].Values[0].Int64())
		require.Equal(t, int64(5), res.Columns[3].Values[0].Int64())
		// A fold of a view without aggregations is refused.
		plain := MustView(t, Project(t), FeatureView("plain", []string{"user"}, 0, "int64"))
		_, err = f.FoldEvents(ctx, plain, []online.EntityEvents{{Key: k, Events: evs}})
		require.ErrorIs(t, err, online.ErrInvalidArgument)
		_, err = f.FoldEvents(ctx, v, []online.EntityEvents{{Key: k, Events: []online.AggEvent{{EventTS: aggBase, Values: []online.Value{online.String("x"), online.Null(), online.Null()}}}}})
		require.ErrorIs(t, err, online.ErrTypeMismatch)
	})
}

// aggBase is a time on a boundary of every tile of AggView (1h: 1 minute, 1d: 24 minutes).
var aggBase = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// AggEvent is an event of AggView.
func AggEvent(ts time.Time, qty int64, amount float64, merchant string) online.AggEvent {
	return online.AggEvent{EventTS: ts, Values: []online.Value{online.Int64(qty), online.Float64(amount), online.String(merchant)}}
}

// testFoldParity folds random events (redeliveries, same event_ts with other created_ts,
// nulls, late and out-of-order events) in random batches at an advancing clock and, after
// each phase, reads at tile boundaries and compares with the exact windows computed from the
// distinct events.
func testFoldParity(t *testing.T, s online.Store, f online.TileFolder, c *Clock) {
	ctx := context.Background()
	v := AggView(t, Project(t))
	r := rand.New(rand.NewPCG(27, 3))
	const users = 5
	keys := make([]online.EntityKey, users)
	for u := range keys {
		keys[u] = UserKey(t, v, int64(u))
	}
	type sent struct {
		user int
		e    online.AggEvent
	}
	var all []sent // distinct events, as the oracle sees them
	now := aggBase
	for phase := range 4 {
		now = now.Add(time.Duration(r.IntN(20)) * time.Hour).Add(time.Duration(r.IntN(3600)) * time.Second)
		c.Set(now)
		var batch []sent
		for range 150 {
			u := r.IntN(users)
			ev := now.Add(-time.Duration(r.Int64N(int64(30 * time.Hour)))).Truncate(time.Microsecond)
			if r.IntN(10) == 0 && len(all) > 0 { // same event_ts as an earlier event, another created_ts
				p := all[r.IntN(len(all))]
				u, ev = p.user, p.e.EventTS
			}
			e := AggEvent(ev, r.Int64N(200)-50, float64(r.IntN(1000))/8, fmt.Sprint("m", r.IntN(6)))
			e.CreatedTS = now.Add(time.Duration(len(all)+len(batch)) * time.Microsecond)
			if r.IntN(3) == 0 { // created before its event time
				e.CreatedTS = ev.Add(-time.Hour - time.Duration(len(all)+len(batch))*time.Microsecond)
			}
			if r.IntN(4) == 0 {
				e.CreatedTS = time.Time{}
				e.EventTS = e.EventTS.Add(time.Duration(len(all)+len(batch)) * time.Microsecond) // distinct identity
			}
			if r.IntN(6) == 0 {
				e.Values[r.IntN(3)] = online.Null()
			}
			batch = append(batch, sent{u, e})
		}
		// Redeliveries: some events again, in this phase or the next.
		for range 30 {
			batch = append(batch, batch[r.IntN(len(batch))])
		}
		if len(all) > 0 {
			for range 20 {
				p := all[r.IntN(len(all))]
				batch = append(batch, p)
			}
		}
		r.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		for start := 0; start < len(batch); {
			n := min(1+r.IntN(40), len(batch)-start)
			byUser := map[int][]online.AggEvent{}
			for _, b := range batch[start : start+n] {
				byUser[b.user] = append(byUser[b.user], b.e)
			}
			var ents []online.EntityEvents
			for u, evs := range byUser {
				ents = append(ents, online.EntityEvents{Key: keys[u], Events: evs})
			}
			_, err := f.FoldEvents(ctx, v, ents)
			require.NoError(t, err)
			start += n
		}
		for _, b := range batch {
			if !slices.ContainsFunc(all, func(a sent) bool {
				return a.user == b.user && a.e.EventTS.Equal(b.e.EventTS) && a.e.CreatedTS.Equal(b.e.CreatedTS)
			}) {
				all = append(all, b)
			}
		}
		// Read at the last microsecond of the tile holding now, and of later 24-minute tiles.
		for _, after := range []time.Duration{0, 24 * time.Minute, 12 * 24 * time.Minute, 57 * 24 * time.Minute} {
			at := now.Truncate(24 * time.Minute).Add(24*time.Minute + after - time.Microsecond)
			c.Set(at)
			res := read(t, s, online.ViewRead{View: v, Keys: keys})
			for u := range users {
				var evs []online.AggEvent
				for _, a := range all {
					if a.user == u {
						evs = append(evs, a.e)
					}
				}
				want := ExactAggregates(v, evs, at)
				for ci, col := range res.Columns {
					got := col.Values[u]
					require.True(t, sameValue(want[ci], got), "phase %d, read %s after, user %d, %s: want %v, got %v (%s)",
						phase, after, u, col.Field().Name, want[ci], got, col.Statuses[u])
				}
			}
		}
		c.Set(now)
	}
}

func sameValue(want, got online.Value) bool {
	if want.IsNull() || got.IsNull() {
		return want.IsNull() && got.IsNull()
	}
	if want.Type().Elem == definitions.Float64 && got.Type().Elem == definitions.Float64 {
		a, b := want.Float64(), got.Float64()
		return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
	}
	return want.Equal(got)
}

// ExactAggregates computes AggView's features at t by brute force over distinct events: for
// each window w the events with t - w < event_ts <= t, nulls ignored, last by (event_ts,
// created_ts) with a null created_ts first.
func ExactAggregates(v *online.View, events []online.AggEvent, t time.Time) []online.Value {
	in := func(e online.AggEvent, w time.Duration) bool {
		return e.EventTS.After(t.Add(-w)) && !e.EventTS.After(t)
	}
	out := make([]online.Value, 0, len(v.Features))
	for _, f := range v.Features {
		col := slices.IndexFunc([]string{"qty", "amount", "merchant"}, func(c string) bool { return strings.HasPrefix(f.Name, c+"_") })
		rest := f.Name[strings.IndexByte(f.Name, '_')+1:]
		cut := strings.LastIndexByte(rest, '_')
		fn, w := rest[:cut], map[string]time.Duration{"1h": time.Hour, "1d": 24 * time.Hour}[rest[cut+1:]]
		var vals []online.AggEvent
		for _, e := range events {
			if in(e, w) && !e.Values[col].IsNull() {
				vals = append(vals, e)
			}
		}
		switch fn {
		case "count":
			out = append(out, online.Int64(int64(len(vals))))
			continue
		case "count_distinct":
			seen := map[string]bool{}
			for _, e := range vals {
				seen[e.Values[col].Str()] = true
			}
			out = append(out, online.Int64(int64(len(seen))))
			continue
		}
		if len(vals) == 0 {
			out = append(out, online.Null())
			continue
		}
		switch fn {
		case "sum":
			var s int64
			for _, e := range vals {
				s += e.Values[col].Int64()
			}
			out = append(out, online.Int64(s))
		case "max":
			m := int64(math.MinInt64)
			for _, e := range vals {
				m = max(m, e.Values[col].Int64())
			}
			out = append(out, online.Int64(m))
		case "mean":
			var s float64
			for _, e := range vals {
				s += e.Values[col].Float64()
			}
			out = append(out, online.Float64(s/float64(len(vals))))
		case "last":
			last := slices.MaxFunc(vals, func(a, b online.AggEvent) int {
				if c := a.EventTS.Compare(b.EventTS); c != 0 {
					return c
				}
				ca, cb := int64(math.MinInt64), int64(math.MinInt64)
				if !a.CreatedTS.IsZero() {
					ca = a.CreatedTS.UnixMicro()
				}
				if !b.CreatedTS.IsZero() {
					cb = b.CreatedTS.UnixMicro()
				}
				return int(min(max(ca-cb, -1), 1))
			})
			out = append(out, last.Values[col])
		default:
			panic("unknown function " + fn)
		}
	}
	return out
}
