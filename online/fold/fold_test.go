package fold

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/embedded"
	"github.com/quiverfs/quiver/value"
)

// boundedWriter is an online store that records the largest batch it was handed (flush
// writes from several goroutines).
type boundedWriter struct {
	online.Writer
	mu       sync.Mutex
	maxBatch int
}

func (w *boundedWriter) Write(ctx context.Context, v *online.View, rows []online.Row) error {
	w.mu.Lock()
	w.maxBatch = max(w.maxBatch, len(rows))
	w.mu.Unlock()
	return w.Writer.Write(ctx, v, rows)
}

// TestLatestFastPathMatchesKeyedPath folds the same batches — 60 entities keyed by one int64,
// rows in random order with tied event times, null created times and null values — through
// the int64 fast path and through the encoded-key path (forced by an `only` set holding every
// entity), with a small entity bound so that both flush mid-stream, and checks that both
// stores end with the row a brute force picks, that the fold never held more entities than
// its bound, and that writes never exceeded the batch size.
func TestLatestFastPathMatchesKeyedPath(t *testing.T) {
	ctx := context.Background()
	user := definitions.Entity{Name: "user", JoinKeys: []definitions.Field{{Name: "user_id", Type: definitions.MustType("int64")}}}
	fv := &definitions.FeatureView{Name: "v", Entities: []string{"user"}, Source: "s", Online: true, Features: []definitions.Field{
		{Name: "n", Type: definitions.MustType("int64")}, {Name: "x", Type: definitions.MustType("float64")},
	}}
	vs, err := offline.NewViewSchema(fv, map[string]*definitions.Entity{"user": &user})
	require.NoError(t, err)
	ov, err := online.NewView("p", fv, []definitions.Entity{user})
	require.NoError(t, err)

	type row struct {
		id             int64
		event, created int64 // µs; created 0 = null
		n              int64
		x              *float64
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const entities = 60
	var rows []row
	for i := range 2000 {
		r := row{id: int64(rng.IntN(entities)), event: int64(rng.IntN(20)) * 1e6, n: int64(i)}
		if rng.IntN(3) > 0 {
			r.created = r.event + int64(rng.IntN(3))
		}
		if rng.IntN(5) > 0 {
			x := rng.Float64()
			r.x = &x
		}
		rows = append(rows, r)
	}
	want := map[int64]row{}
	for _, r := range rows { // the greatest (event, created); on a tie the later row
		if w, ok := want[r.id]; !ok || r.event > w.event || (r.event == w.event && r.created >= w.created) {
			want[r.id] = r
		}
	}
	mem := memory.NewGoAllocator()
	var batches []arrow.RecordBatch
	for start := 0; start < len(rows); start += 300 {
		b := array.NewRecordBuilder(mem, vs.Arrow())
		for _, r := range rows[start:min(start+300, len(rows))] {
			b.Field(0).(*array.Int64Builder).Append(r.id)
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(r.event))
			if r.created == 0 {
				b.Field(2).AppendNull()
			} else {
				b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(r.created))
			}
			b.Field(3).(*array.Int64Builder).Append(r.n)
			if r.x == nil {
				b.Field(4).AppendNull()
			} else {
				b.Field(4).(*array.Float64Builder).Append(*r.x)
			}
		}
		batches = append(batches, b.NewRecordBatch())
		b.Release()
	}
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	keys := make([]online.EntityKey, entities)
	only := map[online.EntityKey]struct{}{}
	for i := range keys {
		keys[i], err = ov.Key(online.Int64(int64(i)))
		require.NoError(t, err)
		only[keys[i]] = struct{}{}
	}
	for _, fast := range []bool{true, false} {
		store, err := embedded.Open(ctx, filepath.Join(t.TempDir(), "online.db"), embedded.Options{})
		require.NoError(t, err)
		defer store.Close()
		w := &boundedWriter{Writer: store}
		const bound, batch = 7, 3
		l := New(ov, vs, w, bound, batch)
		if !fast {
			l.Only = only
		}
		for _, b := range batches {
			require.NoError(t, l.Add(ctx, b))
			require.LessOrEqual(t, len(l.buf), bound, "entities held")
			if fast {
				require.Empty(t, l.rows, "the fast path keeps no encoded keys")
			} else {
				require.Empty(t, l.byID)
			}
		}
		require.NoError(t, l.Flush(ctx))
		require.LessOrEqual(t, w.maxBatch, batch)
		res, err := store.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: ov, Keys: keys}}})
		require.NoError(t, err)
		for id := range int64(entities) {
			wr, ok := want[id]
			if !ok {
				require.Equal(t, online.NotFound, res.Columns[0].Statuses[id])
				continue
			}
			require.Equal(t, time.UnixMicro(wr.event).UTC(), res.Columns[0].EventTS[id].UTC(), "fast=%v entity %d", fast, id)
			require.Equal(t, wr.n, res.Columns[0].Values[id].Int64(), "fast=%v entity %d", fast, id)
			if wr.x == nil {
				require.Equal(t, online.NullValue, res.Columns[1].Statuses[id], "fast=%v entity %d", fast, id)
			} else {
				require.Equal(t, *wr.x, res.Columns[1].Values[id].Float64(), "fast=%v entity %d", fast, id)
			}
		}
	}
}

// recorder is an online store in memory: per entity key, the row with the greatest
// (EventTS, CreatedTS), a tie going to the later write, as the stale-write guard keeps. It
// copies what it is handed (a fold reuses its rows' values once Write returns).
type recorder struct {
	online.Writer
	mu   sync.Mutex
	rows map[online.EntityKey]online.Row
}

func (w *recorder) Write(_ context.Context, _ *online.View, rows []online.Row) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range rows {
		if old, ok := w.rows[r.Key]; ok && (r.EventTS.Before(old.EventTS) || (r.EventTS.Equal(old.EventTS) && r.CreatedTS.Before(old.CreatedTS))) {
			continue
		}
		r.Values = append([]online.Value(nil), r.Values...)
		w.rows[r.Key] = r
	}
	return nil
}

// TestFoldEveryFeatureKind folds rows of a view with a feature of every kind — the
// fixed-width ones the fold keeps as bits (int32, int64, float32, float64, bool) and the others
// (string, bytes, timestamp, arrays) — with nulls, null created times, event times before 1970
// and batches whose timestamps are in seconds, milliseconds or nanoseconds, through both paths
// and a small entity bound, and checks the rows a store ends with against a brute force.
func TestFoldEveryFeatureKind(t *testing.T) {
	ctx := context.Background()
	user := definitions.Entity{Name: "user", JoinKeys: []definitions.Field{{Name: "user_id", Type: definitions.MustType("int64")}}}
	types := []string{"int32", "int64", "float32", "float64", "bool", "string", "bytes", "timestamp", "array<int64>", "array<string>"}
	fv := &definitions.FeatureView{Name: "v", Entities: []string{"user"}, Source: "s", Online: true}
	for i, ty := range types {
		fv.Features = append(fv.Features, definitions.Field{Name: "f" + strconv.Itoa(i), Type: definitions.MustType(ty)})
	}
	vs, err := offline.NewViewSchema(fv, map[string]*definitions.Entity{"user": &user})
	require.NoError(t, err)
	ov, err := online.NewView("p", fv, []definitions.Entity{user})
	require.NoError(t, err)

	rng := rand.New(rand.NewPCG(5, 6))
	randValue := func(ty definitions.Type) online.Value {
		if rng.IntN(6) == 0 {
			return value.Null()
		}
		if ty.Array {
			if ty.Elem == definitions.Int64 {
				return value.NewInt64s([]int64{rng.Int64(), rng.Int64N(5)})
			}
			return value.NewStrings([]string{"a" + strconv.Itoa(rng.IntN(9)), ""})
		}
		switch ty.Elem {
		case definitions.Int32:
			return value.NewInt32(int32(rng.Uint32()))
		case definitions.Int64:
			return value.NewInt64(rng.Int64() - rng.Int64())
		case definitions.Float32:
			return value.NewFloat32(rng.Float32() - 0.5)
		case definitions.Float64:
			return value.NewFloat64(rng.NormFloat64())
		case definitions.Bool:
			return value.NewBool(rng.IntN(2) == 0)
		case definitions.String:
			return value.NewString("s" + strconv.Itoa(rng.IntN(1000)))
		case definitions.Bytes:
			return value.NewBytes([]byte{byte(rng.IntN(256)), 0})
		default:
			return value.NewTimestamp(time.UnixMicro(rng.Int64N(1e15)).UTC())
		}
	}
	type row struct {
		id             int64
		event, created time.Time // created zero: null
		vals           []online.Value
	}
	older := func(r, w row) bool { // r sorts before w (a tie goes to the later row)
		return r.event.Before(w.event) || (r.event.Equal(w.event) && r.created.Before(w.created))
	}
	const entities = 50
	units := []arrow.TimeUnit{arrow.Second, arrow.Millisecond, arrow.Microsecond, arrow.Nanosecond}
	var batches []arrow.RecordBatch
	want := map[int64]row{}
	for b := range 12 {
		unit := units[b%len(units)]
		fields := append([]arrow.Field(nil), vs.Arrow().Fields()...)
		for _, i := range []int{1, 2} {
			fields[i].Type = &arrow.TimestampType{Unit: unit, TimeZone: "UTC"}
		}
		bld := array.NewRecordBuilder(memory.NewGoAllocator(), arrow.NewSchema(fields, nil))
		for range 150 {
			// In quarter seconds (whole ones in a batch of seconds), few distinct times, so
			// that ties are common; odd entities' all before 1970.
			r := row{id: int64(rng.IntN(entities))}
			r.event = time.Unix(int64(rng.IntN(5)-2)*1e8, 0).UTC()
			if r.id%2 == 1 {
				r.event = time.Unix(-int64(rng.IntN(3)+1)*1e8, 0).UTC()
			}
			if unit != arrow.Second {
				r.event = r.event.Add(time.Duration(rng.IntN(3)) * 250 * time.Millisecond)
			}
			if rng.IntN(3) > 0 {
				r.created = r.event.Add(time.Duration(rng.IntN(3)) * time.Second)
			}
			for _, f := range vs.Features {
				r.vals = append(r.vals, randValue(f.Type))
			}
			if w, ok := want[r.id]; !ok || !older(r, w) {
				want[r.id] = r
			}
			bld.Field(0).(*array.Int64Builder).Append(r.id)
			bld.Field(1).(*array.TimestampBuilder).Append(toUnit(r.event, unit))
			if r.created.IsZero() {
				bld.Field(2).AppendNull()
			} else {
				bld.Field(2).(*array.TimestampBuilder).Append(toUnit(r.created, unit))
			}
			for f, v := range r.vals {
				require.NoError(t, value.Append(bld.Field(3+f), v))
			}
		}
		batches = append(batches, bld.NewRecordBatch())
		bld.Release()
	}
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	only := map[online.EntityKey]struct{}{}
	for id := range int64(entities) {
		k, err := ov.Key(online.Int64(id))
		require.NoError(t, err)
		only[k] = struct{}{}
	}
	for _, fast := range []bool{true, false} {
		for _, bound := range []int{7, 1000} {
			w := &recorder{rows: map[online.EntityKey]online.Row{}}
			l := New(ov, vs, w, bound, 4)
			if !fast {
				l.Only = only
			}
			for _, b := range batches {
				require.NoError(t, l.Add(ctx, b))
			}
			require.NoError(t, l.Flush(ctx))
			require.Len(t, w.rows, len(want))
			for id, wr := range want {
				k, err := ov.Key(online.Int64(id))
				require.NoError(t, err)
				got := w.rows[k]
				require.True(t, wr.event.Equal(got.EventTS), "fast=%v bound=%d entity %d: event %s, want %s", fast, bound, id, got.EventTS, wr.event)
				require.True(t, wr.created.Equal(got.CreatedTS), "fast=%v bound=%d entity %d: created %s, want %s", fast, bound, id, got.CreatedTS, wr.created)
				require.Equal(t, wr.vals, got.Values, "fast=%v bound=%d entity %d", fast, bound, id)
			}
		}
	}
}

func toUnit(t time.Time, u arrow.TimeUnit) arrow.Timestamp {
	switch u {
	case arrow.Second:
		return arrow.Timestamp(t.Unix())
	case arrow.Millisecond:
		return arrow.Timestamp(t.UnixMilli())
	case arrow.Microsecond:
		return arrow.Timestamp(t.UnixMicro())
	}
	return arrow.Timestamp(t.UnixNano())
}
