package fold

import (
	"context"
	"math/rand/v2"
	"path/filepath"
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
