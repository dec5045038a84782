package online_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
)

func aggTestView(t testing.TB) *online.View {
	t.Helper()
	f, err := definitions.Parse("a.yaml", []byte(`
feature_views:
  - name: txn_aggs
    entities: [user]
    source: txns
    columns: [{ name: amount, type: float64 }, { name: qty, type: int32 }, { name: merchant, type: string }]
    aggregations:
      - { column: amount, function: sum, windows: [1h, 1d] }
      - { column: qty, function: last, windows: [1h] }
      - { column: merchant, function: count_distinct, windows: [1d] }
      - { column: merchant, function: last, windows: [1h] }
`))
	require.NoError(t, err)
	v, err := online.NewView("p", f.Objects[0].(*definitions.FeatureView), []definitions.Entity{{Name: "user", JoinKeys: []definitions.Field{{Name: "user_id", Type: definitions.MustType("int64")}}}})
	require.NoError(t, err)
	return v
}

func randEvents(r *rand.Rand, n int, now time.Time) []online.AggEvent {
	evs := make([]online.AggEvent, n)
	for i := range evs {
		evs[i] = online.AggEvent{EventTS: now.Add(-time.Duration(r.Int64N(int64(30 * time.Hour)))).Truncate(time.Microsecond),
			Values: []online.Value{online.Float64(float64(r.IntN(100))), online.Int32(int32(r.IntN(9))), online.String([]string{"a", "b", "c"}[r.IntN(3)])}}
		if r.IntN(5) == 0 {
			evs[i].Values[r.IntN(3)] = online.Null()
		}
	}
	return evs
}

// Folding events in several calls gives the same tiles as building them at once (for events
// with distinct timestamps), and a rebuild from the same events is byte-identical.
func TestFoldTilesEqualsBuildTiles(t *testing.T) {
	v := aggTestView(t)
	r := rand.New(rand.NewPCG(1, 1))
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	evs := randEvents(r, 300, now)
	built, latest, err := v.BuildTiles(evs, now)
	require.NoError(t, err)
	again, _, err := v.BuildTiles(evs, now)
	require.NoError(t, err)
	require.Equal(t, built, again)
	var enc []byte
	for i := 0; i < len(evs); i += 37 {
		var l time.Time
		enc, l, err = v.FoldTiles(enc, evs[i:min(i+37, len(evs))], now)
		require.NoError(t, err)
		_ = l
	}
	_, latest2, err := v.FoldTiles(enc, nil, now)
	require.NoError(t, err)
	require.Equal(t, latest, latest2)
	require.Equal(t, built, enc)

	_, _, err = v.FoldTiles(nil, []online.AggEvent{{EventTS: now, Values: []online.Value{online.Int64(1), online.Null(), online.Null()}}}, now)
	require.ErrorIs(t, err, online.ErrTypeMismatch)
	_, _, err = v.FoldTiles(nil, []online.AggEvent{{EventTS: now, Values: []online.Value{online.Null()}}}, now)
	require.ErrorIs(t, err, online.ErrInvalidArgument)
}

// Stored tiles that are not what the view writes read as ErrCorrupt, never a panic.
func FuzzReadTiles(f *testing.F) {
	v := aggTestView(f)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	enc, _, err := v.BuildTiles(randEvents(rand.New(rand.NewPCG(2, 2)), 20, now), now)
	require.NoError(f, err)
	f.Add(enc)
	f.Add([]byte{1, 3, 1})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, err := v.FoldTiles(data, nil, now)
		if err != nil && !errors.Is(err, online.ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
	})
}

// Folding in any split, with redeliveries, gives the tiles and event identities of one build,
// created_ts null or not; a fold of events the tiles hold changes nothing.
func TestFoldEventsDedupesAcrossCalls(t *testing.T) {
	v := aggTestView(t)
	r := rand.New(rand.NewPCG(3, 3))
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	evs := randEvents(r, 200, now)
	for i := range evs {
		evs[i].EventTS = evs[i].EventTS.Add(time.Duration(i) * time.Microsecond)
		if i%3 != 0 {
			evs[i].CreatedTS = evs[i].EventTS.Add(time.Duration(r.Int64N(2e9)-1e9) * time.Microsecond)
		}
	}
	// Folding at now ignores events no read at or after now reaches; building at now keeps
	// those a read at the newest event reaches. At the newest event both keep the same.
	now = slices.MaxFunc(evs, func(a, b online.AggEvent) int { return a.EventTS.Compare(b.EventTS) }).EventTS
	built, _, err := v.BuildTiles(evs, now)
	require.NoError(t, err)
	var enc []byte
	var total online.FoldStats
	for i := 0; i < len(evs); i += 23 {
		batch := append(slices.Clone(evs[i:min(i+23, len(evs))]), evs[r.IntN(min(i+23, len(evs)))])
		out, _, st, err := v.FoldEvents(enc, batch, now)
		require.NoError(t, err)
		total.Add(st)
		if out != nil {
			enc = out
		}
	}
	require.True(t, bytes.Equal(built, enc), "folded tiles differ from built: %d and %d bytes", len(enc), len(built))
	out, _, st, err := v.FoldEvents(enc, evs, now)
	require.NoError(t, err)
	require.Nil(t, out)
	require.Equal(t, total.Folded, st.Duplicates, "every event folded once is held")
	require.Equal(t, int64(len(evs)), st.Duplicates+st.Late)
	require.Positive(t, st.Late)
}
