// Package onlinetest is the conformance suite of online.Store: every backend runs
// RunStoreTests against itself.
package onlinetest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
)

// NewStore returns a store for one test. Stores returned for different tests may share a
// server: the suite isolates tests by project name. The suite closes the store.
type NewStore func(t *testing.T) online.Store

var projectSeq atomic.Int64

// Project returns a project name unique to this test run, for isolating tests on a shared
// server.
func Project(t *testing.T) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	return fmt.Sprintf("%s_%d_%d", name, projectSeq.Add(1), rand.Uint32())
}

// Entities used by the suite: user (one int64 key) and device (a composite key).
var Entities = []definitions.Entity{
	{Name: "user", JoinKeys: []definitions.Field{{Name: "user_id", Type: definitions.MustType("int64")}}},
	{Name: "device", JoinKeys: []definitions.Field{
		{Name: "region", Type: definitions.MustType("string")},
		{Name: "device_id", Type: definitions.MustType("int32")},
	}},
}

// AllTypes lists every feature type, scalars and arrays.
var AllTypes = []string{
	"int32", "int64", "float32", "float64", "bool", "string", "bytes", "timestamp",
	"array<int32>", "array<int64>", "array<float32>", "array<float64>", "array<bool>",
	"array<string>", "array<bytes>", "array<timestamp>",
}

// FeatureView builds a definitions.FeatureView with features "f_<type>" of the given types.
func FeatureView(name string, entities []string, ttl time.Duration, types ...string) *definitions.FeatureView {
	fv := &definitions.FeatureView{Name: name, Entities: entities, TTL: definitions.Duration(ttl), Online: true}
	for _, ty := range types {
		n := "f_" + strings.NewReplacer("<", "_", ">", "").Replace(ty)
		fv.Features = append(fv.Features, definitions.Field{Name: n, Type: definitions.MustType(ty)})
	}
	return fv
}

// MustView is online.NewView for tests.
func MustView(t testing.TB, project string, fv *definitions.FeatureView) *online.View {
	t.Helper()
	v, err := online.NewView(project, fv, Entities)
	require.NoError(t, err)
	return v
}

// UserKey is the entity key of user id for view v.
func UserKey(t testing.TB, v *online.View, id int64) online.EntityKey {
	t.Helper()
	k, err := v.Key(online.Int64(id))
	require.NoError(t, err)
	return k
}

// SampleValues returns one non-null value per AllTypes entry, varied by seed.
func SampleValues(seed int) []online.Value {
	s := int64(seed)
	ts := time.Date(2024, 3, 1, 12, 0, 0, 123456000, time.UTC).Add(time.Duration(s) * time.Second)
	return []online.Value{
		online.Int32(int32(-7 * s)),
		online.Int64(math.MinInt64 + s),
		online.Float32(float32(s) + 0.25),
		online.Float64(-1e300 * float64(s+1)),
		online.Bool(seed%2 == 0),
		online.String(fmt.Sprintf("héllo {%d} \x00 world", seed)),
		online.Bytes([]byte{0, 0xff, byte(seed), '}', '{'}),
		online.Timestamp(time.Date(1960, 1, 1, 0, 0, 0, 1000, time.UTC).Add(time.Duration(s) * time.Hour)),
		online.Int32s([]int32{math.MinInt32, 0, int32(seed), math.MaxInt32}),
		online.Int64s([]int64{}),
		online.Float32s([]float32{1.5, float32(math.Inf(-1)), float32(seed)}),
		online.Float64s([]float64{math.Pi, math.SmallestNonzeroFloat64, float64(seed)}),
		online.Bools([]bool{true, false, seed%3 == 0}),
		online.Strings([]string{"", "a", strings.Repeat("z", 300+seed)}),
		online.BytesArray([][]byte{{}, {1, 2, 3}, []byte(fmt.Sprint(seed))}),
		online.Timestamps([]time.Time{ts, ts.Add(-time.Microsecond)}),
	}
}

// Unavailable returns a store that works and a function that stops its server for good (kills
// the process), after which the store cannot be reached. The suite closes the store.
type Unavailable func(t *testing.T) (s online.Store, stop func())

// RunStoreTests runs the conformance suite against stores made by newStore. unavailable is
// nil for a backend that has no server to lose (the embedded store is a file).
func RunStoreTests(t *testing.T, newStore NewStore, unavailable Unavailable) {
	open := func(t *testing.T) online.Store {
		s := newStore(t)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		return s
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s online.Store)
	}{
		{"RoundTripEveryType", testRoundTrip},
		{"NullsAndMissingEntities", testNullsAndMissing},
		{"FeatureSubsetAndOrder", testFeatureSubset},
		{"ManyViewsOneRead", testManyViews},
		{"TTLOutsideMaxAge", testTTL},
		{"OutOfOrderWrites", testOutOfOrder},
		{"ConcurrentWriters", testConcurrentWriters},
		{"DeleteView", testDeleteView},
		{"Generations", testGenerations},
		{"DeleteEntities", testDeleteEntities},
		{"InvalidRowsWriteNothing", testInvalidRows},
		{"ViewGainsAndLosesFeatures", testSchemaChange},
		{"ProjectIsolation", testProjectIsolation},
		{"EmptyRequests", testEmpty},
		{"CancelledContext", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
	t.Run("ClosedStore", func(t *testing.T) { testClosed(t, newStore(t)) })
	if unavailable != nil {
		t.Run("UnavailableStore", func(t *testing.T) {
			s, stop := unavailable(t)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			testUnavailable(t, s, stop)
		})
	}
}

// failureCase is one call of every Store method, for the failure tests.
type failureCase struct {
	name string
	call func(ctx context.Context) error
}

// everyMethod calls each method of s on a view holding one row of entity 1.
func everyMethod(t *testing.T, s online.Store, v *online.View) []failureCase {
	k := UserKey(t, v, 1)
	row := []online.Row{{Key: k, EventTS: base.Add(time.Hour), Values: []online.Value{online.Int64(2)}}}
	cases := []failureCase{
		{"Read", func(ctx context.Context) error {
			_, err := s.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: []online.EntityKey{k}}}})
			return err
		}},
		{"Write", func(ctx context.Context) error { return s.Write(ctx, v, row) }},
		{"DeleteEntities", func(ctx context.Context) error {
			_, err := s.DeleteEntities(ctx, v, []online.EntityKey{k})
			return err
		}},
		{"DeleteView", func(ctx context.Context) error { return s.DeleteView(ctx, v) }},
	}
	if kw, ok := s.(online.KeptWriter); ok {
		cases = append(cases, failureCase{"WriteKept", func(ctx context.Context) error {
			_, err := kw.WriteKept(ctx, v, row)
			return err
		}})
	}
	if c, ok := s.(online.Counter); ok {
		cases = append(cases, failureCase{"CountView", func(ctx context.Context) error {
			_, err := c.CountView(ctx, v)
			return err
		}})
	}
	return cases
}

// writeOne writes entity 1's row of v (value 1) and checks that it reads back.
func writeOne(t *testing.T, s online.Store, v *online.View) {
	t.Helper()
	require.NoError(t, s.Write(context.Background(), v, []online.Row{{Key: UserKey(t, v, 1), EventTS: base, Values: []online.Value{online.Int64(1)}}}))
	res := read(t, s, online.ViewRead{View: v, Keys: []online.EntityKey{UserKey(t, v, 1)}})
	require.Equal(t, int64(1), res.Columns[0].Values[0].Int64())
}

// testCancelled: every method called with a cancelled context fails with an error matching
// context.Canceled and changes nothing.
func testCancelled(t *testing.T, s online.Store) {
	v := MustView(t, Project(t), FeatureView("v", []string{"user"}, 0, "int64"))
	writeOne(t, s, v)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range everyMethod(t, s, v) {
		err := c.call(ctx)
		require.ErrorIs(t, err, context.Canceled, c.name)
		require.NotErrorIs(t, err, online.ErrUnavailable, "%s: the store is fine, the caller left", c.name)
	}
	res := read(t, s, online.ViewRead{View: v, Keys: []online.EntityKey{UserKey(t, v, 1)}})
	require.Equal(t, online.Present, res.Columns[0].Statuses[0], "the row is still there")
	require.Equal(t, int64(1), res.Columns[0].Values[0].Int64(), "and was not replaced")
}

// testClosed: every method of a closed store fails with ErrClosed; closing again is not an
// error.
func testClosed(t *testing.T, s online.Store) {
	v := MustView(t, Project(t), FeatureView("v", []string{"user"}, 0, "int64"))
	writeOne(t, s, v)
	require.NoError(t, s.Close())
	for _, c := range everyMethod(t, s, v) {
		err := c.call(context.Background())
		require.ErrorIs(t, err, online.ErrClosed, c.name)
	}
	require.NoError(t, s.Close(), "a second Close")
}

// testUnavailable: once the store's server is gone, every method fails with ErrUnavailable
// (not ErrClosed, not a bare driver error) within the caller's deadline.
func testUnavailable(t *testing.T, s online.Store, stop func()) {
	v := MustView(t, Project(t), FeatureView("v", []string{"user"}, 0, "int64"))
	writeOne(t, s, v)
	stop()
	for _, c := range everyMethod(t, s, v) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := c.call(ctx)
		cancel()
		require.ErrorIs(t, err, online.ErrUnavailable, c.name)
		require.NotErrorIs(t, err, online.ErrClosed, c.name)
	}
}

var base = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func read(t *testing.T, s online.Store, reads ...online.ViewRead) *online.ReadResult {
	t.Helper()
	res, err := s.Read(context.Background(), online.ReadRequest{Views: reads})
	require.NoError(t, err)
	return res
}

func testRoundTrip(t *testing.T, s online.Store) {
	ctx := context.Background()
	v := MustView(t, Project(t), FeatureView("all_types", []string{"user"}, 0, AllTypes...))
	var rows []online.Row
	for id := range int64(5) {
		rows = append(rows, online.Row{
			Key: UserKey(t, v, id), EventTS: base.Add(time.Duration(id) * time.Minute).Add(789 * time.Nanosecond),
			CreatedTS: base.Add(time.Hour), Values: SampleValues(int(id)),
		})
	}
	require.NoError(t, s.Write(ctx, v, rows))
	keys := make([]online.EntityKey, len(rows))
	for i := range rows {
		keys[i] = rows[i].Key
	}
	res := read(t, s, online.ViewRead{View: v, Keys: keys})
	require.Equal(t, len(rows), res.Rows)
	require.Len(t, res.Columns, len(AllTypes))
	for c, col := range res.Columns {
		require.Equal(t, c, col.Feature)
		require.Equal(t, v.Features[c], col.Field())
		require.Same(t, v, col.View)
		for r := range rows {
			want := rows[r].Values[c]
			require.Equal(t, online.Present, col.Statuses[r], "feature %s row %d", col.Field().Name, r)
			require.True(t, want.Equal(col.Values[r]), "feature %s row %d: want %#v, got %#v", col.Field().Name, r, want, col.Values[r])
			require.Equal(t, rows[r].EventTS.Truncate(time.Microsecond), col.EventTS[r])
		}
	}
	// Accessors give back what went in.
	row0 := res.Columns
	require.Equal(t, []int32{math.MinInt32, 0, 0, math.MaxInt32}, row0[8].Values[0].Int32s())
	require.Equal(t, []string{"", "a", strings.Repeat("z", 300)}, row0[13].Values[0].Strings())
	require.Equal(t, "héllo {0} \x00 world", row0[5].Values[0].Str())
	require.Equal(t, time.Date(1960, 1, 1, 0, 0, 0, 1000, time.UTC), row0[7].Values[0].Time())
	require.Equal(t, int64(math.MinInt64), row0[1].Values[0].Int64())
}

func testNullsAndMissing(t *testing.T, s online.Store) {
	ctx := context.Background()
	v := MustView(t, Project(t), FeatureView("all_types", []string{"user"}, 0, AllTypes...))
	nulls := make([]online.Value, len(AllTypes))
	half := SampleValues(1)
	for i := 0; i < len(half); i += 2 {
		half[i] = online.Null()
	}
	require.NoError(t, s.Write(ctx, v, []online.Row{
		{Key: UserKey(t, v, 1), EventTS: base, Values: nulls},
		{Key: UserKey(t, v, 2), EventTS: base, Values: half},
	}))
	keys := []online.EntityKey{UserKey(t, v, 404), UserKey(t, v, 1), UserKey(t, v, 2), UserKey(t, v, 405)}
	res := read(t, s, online.ViewRead{View: v, Keys: keys})
	for c, col := range res.Columns {
		require.Equal(t, online.NotFound, col.Statuses[0], col.Field().Name)
		require.True(t, col.Values[0].IsNull())
		require.True(t, col.EventTS[0].IsZero())
		require.Equal(t, online.NullValue, col.Statuses[1], col.Field().Name)
		require.True(t, col.Values[1].IsNull())
		require.Equal(t, base, col.EventTS[1])
		if c%2 == 0 {
			require.Equal(t, online.NullValue, col.Statuses[2], col.Field().Name)
		} else {
			require.Equal(t, online.Present, col.Statuses[2], col.Field().Name)
			require.True(t, half[c].Equal(col.Values[2]))
		}
		require.Equal(t, online.NotFound, col.Statuses[3], col.Field().Name)
	}
}

func testFeatureSubset(t *testing.T, s online.Store) {
	ctx := context.Background()
	v := MustView(t, Project(t), FeatureView("all_types", []string{"user"}, 0, AllTypes...))
	vals := SampleValues(3)
	require.NoError(t, s.Write(ctx, v, []online.Row{{Key: UserKey(t, v, 3), EventTS: base, Values: vals}}))
	idx, err := v.FeatureIndexes("f_array_string", "f_int32", "f_float64")
	require.NoError(t, err)
	_, err = v.FeatureIndexes("nope")
	require.ErrorIs(t, err, online.ErrInvalidArgument)
	res := read(t, s, online.ViewRead{View: v, Features: idx, Keys: []online.EntityKey{UserKey(t, v, 3)}})
	require.Len(t, res.Columns, 3)
	for i, f := range idx {
		require.Equal(t, v.Features[f].Name, res.Columns[i].Field().Name)
		require.True(t, vals[f].Equal(res.Columns[i].Values[0]))
	}
	_, err = s.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: v, Features: []int{99}, Keys: []online.EntityKey{UserKey(t, v, 3)}}}})
	require.ErrorIs(t, err, online.ErrInvalidArgument)
}

// testManyViews reads three views (two keyed by user, one by a composite device key) for
// many entity rows in one request.
func testManyViews(t *testing.T, s online.Store) {
	ctx := context.Background()
	project := Project(t)
	a := MustView(t, project, FeatureView("user_a", []string{"user"}, 0, "int64", "string"))
	b := MustView(t, project, FeatureView("user_b", []string{"user"}, 0, "float64", "array<float32>"))
	d := MustView(t, project, FeatureView("device_c", []string{"device"}, 0, "bool", "int32"))
	const n = 100
	var ra, rb, rd []online.Row
	ka, kb, kd := make([]online.EntityKey, n), make([]online.EntityKey, n), make([]online.EntityKey, n)
	for i := range n {
		ka[i], kb[i] = UserKey(t, a, int64(i)), UserKey(t, b, int64(i))
		k, err := d.Key(online.String(fmt.Sprintf("eu-%d", i%3)), online.Int32(int32(i)))
		require.NoError(t, err)
		kd[i] = k
		if i%2 == 0 {
			ra = append(ra, online.Row{Key: ka[i], EventTS: base, Values: []online.Value{online.Int64(int64(i)), online.String(fmt.Sprint("a", i))}})
		}
		if i%3 == 0 {
			rb = append(rb, online.Row{Key: kb[i], EventTS: base.Add(time.Second), Values: []online.Value{online.Float64(float64(i)), online.Float32s([]float32{float32(i)})}})
		}
		rd = append(rd, online.Row{Key: kd[i], EventTS: base.Add(2 * time.Second), Values: []online.Value{online.Bool(i%2 == 1), online.Int32(int32(-i))}})
	}
	require.Equal(t, ka[7], kb[7], "views keyed by the same entity share entity keys")
	require.NoError(t, s.Write(ctx, a, ra))
	require.NoError(t, s.Write(ctx, b, rb))
	require.NoError(t, s.Write(ctx, d, rd))
	res := read(t, s,
		online.ViewRead{View: a, Keys: ka},
		online.ViewRead{View: b, Features: []int{1}, Keys: kb},
		online.ViewRead{View: d, Keys: kd},
	)
	require.Len(t, res.Columns, 5)
	for i := range n {
		if i%2 == 0 {
			require.Equal(t, online.Present, res.Columns[0].Statuses[i])
			require.Equal(t, int64(i), res.Columns[0].Values[i].Int64())
			require.Equal(t, fmt.Sprint("a", i), res.Columns[1].Values[i].Str())
			require.Equal(t, base, res.Columns[0].EventTS[i])
		} else {
			require.Equal(t, online.NotFound, res.Columns[0].Statuses[i])
			require.Equal(t, online.NotFound, res.Columns[1].Statuses[i])
		}
		if i%3 == 0 {
			require.Equal(t, online.Present, res.Columns[2].Statuses[i])
			require.Equal(t, []float32{float32(i)}, res.Columns[2].Values[i].Float32s())
			require.Equal(t, base.Add(time.Second), res.Columns[2].EventTS[i])
		} else {
			require.Equal(t, online.NotFound, res.Columns[2].Statuses[i])
		}
		require.Equal(t, i%2 == 1, res.Columns[3].Values[i].Bool())
		require.Equal(t, int32(-i), res.Columns[4].Values[i].Int32())
		require.Equal(t, base.Add(2*time.Second), res.Columns[4].EventTS[i])
	}
}

func testTTL(t *testing.T, s online.Store) {
	ctx := context.Background()
	project := Project(t)
	v := MustView(t, project, FeatureView("stats", []string{"user"}, time.Hour, "int64", "float32"))
	forever := MustView(t, project, FeatureView("forever", []string{"user"}, 0, "int64"))
	now := time.Now()
	require.NoError(t, s.Write(ctx, v, []online.Row{
		{Key: UserKey(t, v, 1), EventTS: now.Add(-2 * time.Hour), Values: []online.Value{online.Int64(1), online.Null()}},
		{Key: UserKey(t, v, 2), EventTS: now.Add(-time.Minute), Values: []online.Value{online.Int64(2), online.Float32(2)}},
	}))
	require.NoError(t, s.Write(ctx, forever, []online.Row{
		{Key: UserKey(t, v, 1), EventTS: now.Add(-1000 * time.Hour), Values: []online.Value{online.Int64(10)}},
	}))
	keys := []online.EntityKey{UserKey(t, v, 1), UserKey(t, v, 2)}
	res := read(t, s, online.ViewRead{View: v, Keys: keys}, online.ViewRead{View: forever, Keys: keys})
	// An expired row is returned, value and event time included, marked OUTSIDE_MAX_AGE.
	require.Equal(t, online.OutsideMaxAge, res.Columns[0].Statuses[0])
	require.Equal(t, int64(1), res.Columns[0].Values[0].Int64())
	require.Equal(t, now.Add(-2*time.Hour).Truncate(time.Microsecond).UTC(), res.Columns[0].EventTS[0])
	require.Equal(t, online.OutsideMaxAge, res.Columns[1].Statuses[0])
	require.Equal(t, online.Present, res.Columns[0].Statuses[1])
	require.Equal(t, online.Present, res.Columns[1].Statuses[1])
	// A view without TTL never expires; another view's TTL does not affect it.
	require.Equal(t, online.Present, res.Columns[2].Statuses[0])
	require.Equal(t, int64(10), res.Columns[2].Values[0].Int64())
	require.Equal(t, online.NotFound, res.Columns[2].Statuses[1])
}

func testOutOfOrder(t *testing.T, s online.Store) {
	ctx := context.Background()
	v := MustView(t, Project(t), FeatureView("stats", []string{"user"}, 0, "string"))
	k := UserKey(t, v, 1)
	row := func(ev, created time.Duration, val string) online.Row {
		return online.Row{Key: k, EventTS: base.Add(ev), CreatedTS: base.Add(created), Values: []online.Value{online.String(val)}}
	}
	get := func() (string, time.Time) {
		res := read(t, s, online.ViewRead{View: v, Keys: []online.EntityKey{k}})
		return res.Columns[0].Values[0].Str(), res.Columns[0].EventTS[0]
	}
	// kept is how many rows of the step a KeptWriter reports stored.
	steps := []struct {
		name string
		rows []online.Row
		want string
		kept int64
	}{
		{"first write", []online.Row{row(10*time.Hour, 0, "t10")}, "t10", 1},
		{"older event is ignored", []online.Row{row(5*time.Hour, 99*time.Hour, "t5")}, "t10", 0},
		{"newer event wins", []online.Row{row(11*time.Hour, 0, "t11")}, "t11", 1},
		{"same event, older created is ignored", []online.Row{row(11*time.Hour, -time.Hour, "t11-older")}, "t11", 0},
		{"same event, newer created wins", []online.Row{row(11*time.Hour, time.Hour, "t11-newer")}, "t11-newer", 1},
		{"identical timestamps: last write wins", []online.Row{row(11*time.Hour, time.Hour, "t11-again")}, "t11-again", 1},
		{"out of order in one batch", []online.Row{row(20*time.Hour, 0, "t20"), row(15*time.Hour, 0, "t15"), row(12*time.Hour, 0, "t12")}, "t20", 1},
		{"backfill of old rows", []online.Row{row(1*time.Hour, 0, "t1"), row(2*time.Hour, 0, "t2")}, "t20", 0},
		{"pre-1970 event is older", []online.Row{row(-100000*time.Hour, 0, "old")}, "t20", 0},
	}
	kw, counts := s.(online.KeptWriter)
	for _, st := range steps {
		if counts {
			kept, err := kw.WriteKept(ctx, v, st.rows)
			require.NoError(t, err, st.name)
			require.Equal(t, st.kept, kept, st.name)
		} else {
			require.NoError(t, s.Write(ctx, v, st.rows), st.name)
		}
		got, _ := get()
		require.Equal(t, st.want, got, st.name)
	}
	_, ev := get()
	require.Equal(t, base.Add(20*time.Hour), ev)
}

// testConcurrentWriters has several goroutines write the same keys with interleaved
// timestamps in shuffled order; the newest row of each key must win.
func testConcurrentWriters(t *testing.T, s online.Store) {
	ctx := context.Background()
	v := MustView(t, Project(t), FeatureView("stats", []string{"user"}, 0, "int64", "string"))
	const writers, keys, versions = 6, 20, 12
	ks := make([]online.EntityKey, keys)
	for k := range keys {
		ks[k] = UserKey(t, v, int64(k))
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			var rows []online.Row
			for k := range keys {
				for ver := range versions {
					ev := ver*writers + w // every writer owns distinct timestamps
					rows = append(rows, online.Row{
						Key: ks[k], EventTS: base.Add(time.Duration(ev) * time.Second),
						Values: []online.Value{online.Int64(int64(ev)), online.String(fmt.Sprintf("w%d", w))},
					})
				}
			}
			rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
			for len(rows) > 0 {
				n := min(len(rows), 1+rng.IntN(7))
				if err := s.Write(ctx, v, rows[:n]); err != nil {
					errs <- err
					return
				}
				rows = rows[n:]
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	res := read(t, s, online.ViewRead{View: v, Keys: ks})
	newest := (versions-1)*writers + writers - 1
	for k := range keys {
		require.Equal(t, int64(newest), res.Columns[0].Values[k].Int64(), "key %d", k)
		require.Equal(t, fmt.Sprintf("w%d", writers-1), res.Columns[1].Values[k].Str())
		require.Equal(t, base.Add(time.Duration(newest)*time.Second), res.Columns[0].EventTS[k])
	}
}

func testDeleteView(t *testing.T, s online.Store) {
	ctx := context.Background()
	project := Project(t)
	a := MustView(t, project, FeatureView("a", []string{"user"}, time.Hour, "int64"))
	b := MustView(t, project, FeatureView("b", []string{"user"}, 0, "int64"))
	other := MustView(t, Project(t), FeatureView("a", []string{"user"}, 0, "int64"))
	now := time.Now()
	var keys []online.EntityKey
	for i := range int64(50) {
		k := UserKey(t, a, i)
		keys = append(keys, k)
		row := []online.Row{{Key: k, EventTS: now, Values: []online.Value{online.Int64(i)}}}
		require.NoError(t, s.Write(ctx, a, row))
		require.NoError(t, s.Write(ctx, b, row))
		require.NoError(t, s.Write(ctx, other, row))
	}
	require.NoError(t, s.DeleteView(ctx, a))
	res := read(t, s, online.ViewRead{View: a, Keys: keys}, online.ViewRead{View: b, Keys: keys}, online.ViewRead{View: other, Keys: keys})
	for i := range keys {
		require.Equal(t, online.NotFound, res.Columns[0].Statuses[i])
		require.Equal(t, online.Present, res.Columns[1].Statuses[i])
		require.Equal(t, online.Present, res.Columns[2].Statuses[i], "another project's view of the same name is untouched")
	}
	// Deleting again, or a view with no data, is fine; the view can be written again.
	require.NoError(t, s.DeleteView(ctx, a))
	require.NoError(t, s.Write(ctx, a, []online.Row{{Key: keys[0], EventTS: base, Values: []online.Value{online.Int64(7)}}}))
	res = read(t, s, online.ViewRead{View: a, Keys: keys[:1]})
	require.Equal(t, int64(7), res.Columns[0].Values[0].Int64())
}

// testDeleteEntities: only the named entities of the named view go; other views of the same
// entities, other projects and other entities stay; an older row can be written afterwards
// (the stale-write guard does not remember a deleted row); unknown keys are ignored.
func testDeleteEntities(t *testing.T, s online.Store) {
	ctx := context.Background()
	project := Project(t)
	a := MustView(t, project, FeatureView("a", []string{"user"}, 0, "int64"))
	b := MustView(t, project, FeatureView("b", []string{"user"}, 0, "int64"))
	other := MustView(t, Project(t), FeatureView("a", []string{"user"}, 0, "int64"))
	var keys []online.EntityKey
	for i := range int64(20) {
		k := UserKey(t, a, i)
		keys = append(keys, k)
		row := []online.Row{{Key: k, EventTS: base.Add(time.Hour), Values: []online.Value{online.Int64(i)}}}
		require.NoError(t, s.Write(ctx, a, row))
		require.NoError(t, s.Write(ctx, b, row))
		require.NoError(t, s.Write(ctx, other, row))
	}
	n, err := s.DeleteEntities(ctx, a, []online.EntityKey{keys[3], keys[7], UserKey(t, a, 999)})
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "two rows existed")
	res := read(t, s, online.ViewRead{View: a, Keys: keys}, online.ViewRead{View: b, Keys: keys}, online.ViewRead{View: other, Keys: keys})
	for i := range keys {
		want := online.Present
		if i == 3 || i == 7 {
			want = online.NotFound
		}
		require.Equal(t, want, res.Columns[0].Statuses[i], "view a entity %d", i)
		require.Equal(t, online.Present, res.Columns[1].Statuses[i], "view b entity %d is untouched", i)
		require.Equal(t, online.Present, res.Columns[2].Statuses[i], "another project's view a entity %d is untouched", i)
	}
	// Deleting again removes nothing; an older row is accepted after a delete.
	n, err = s.DeleteEntities(ctx, a, keys[3:4])
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = s.DeleteEntities(ctx, a, nil)
	require.NoError(t, err)
	require.Zero(t, n)
	require.NoError(t, s.Write(ctx, a, []online.Row{{Key: keys[3], EventTS: base, Values: []online.Value{online.Int64(-3)}}}))
	res = read(t, s, online.ViewRead{View: a, Keys: keys[3:4]})
	require.Equal(t, online.Present, res.Columns[0].Statuses[0])
	require.Equal(t, int64(-3), res.Columns[0].Values[0].Int64())
	require.Equal(t, base, res.Columns[0].EventTS[0])
	// The last view of an entity can go too, and the entity reads as not found everywhere.
	_, err = s.DeleteEntities(ctx, b, keys[3:4])
	require.NoError(t, err)
	_, err = s.DeleteEntities(ctx, a, keys[3:4])
	require.NoError(t, err)
	res = read(t, s, online.ViewRead{View: a, Keys: keys[3:4]}, online.ViewRead{View: b, Keys: keys[3:4]})
	require.Equal(t, online.NotFound, res.Columns[0].Statuses[0])
	require.Equal(t, online.NotFound, res.Columns[1].Statuses[0])
}

func testInvalidRows(t *testing.T, s online.Store) {
	ctx := context.Background()
	v := MustView(t, Project(t), FeatureView("stats", []string{"user"}, 0, "int64", "array<float32>"))
	good := online.Row{Key: UserKey(t, v, 1), EventTS: base, Values: []online.Value{online.Int64(1), online.Float32s(nil)}}
	cases := []struct {
		name string
		bad  online.Row
		is   error
	}{
		{"too few values", online.Row{Key: UserKey(t, v, 2), EventTS: base, Values: []online.Value{online.Int64(1)}}, online.ErrInvalidArgument},
		{"scalar for array", online.Row{Key: UserKey(t, v, 2), EventTS: base, Values: []online.Value{online.Int64(1), online.Float32(1)}}, online.ErrTypeMismatch},
		{"int32 for int64", online.Row{Key: UserKey(t, v, 2), EventTS: base, Values: []online.Value{online.Int32(1), online.Null()}}, online.ErrTypeMismatch},
		{"no event time", online.Row{Key: UserKey(t, v, 2), Values: []online.Value{online.Int64(1), online.Null()}}, online.ErrInvalidArgument},
		{"no key", online.Row{EventTS: base, Values: []online.Value{online.Int64(1), online.Null()}}, online.ErrInvalidArgument},
	}
	for _, tc := range cases {
		err := s.Write(ctx, v, []online.Row{good, tc.bad})
		require.ErrorIs(t, err, tc.is, tc.name)
	}
	res := read(t, s, online.ViewRead{View: v, Keys: []online.EntityKey{UserKey(t, v, 1), UserKey(t, v, 2)}})
	require.Equal(t, online.NotFound, res.Columns[0].Statuses[0], "a failed write writes nothing")
	require.Equal(t, online.NotFound, res.Columns[0].Statuses[1])

	_, err := v.Key(online.String("1"))
	require.ErrorIs(t, err, online.ErrTypeMismatch)
	_, err = v.Key()
	require.ErrorIs(t, err, online.ErrInvalidArgument)
	_, err = s.Read(ctx, online.ReadRequest{})
	require.ErrorIs(t, err, online.ErrInvalidArgument)
	_, err = s.Read(ctx, online.ReadRequest{Views: []online.ViewRead{
		{View: v, Keys: []online.EntityKey{UserKey(t, v, 1)}},
		{View: v, Keys: nil},
	}})
	require.ErrorIs(t, err, online.ErrInvalidArgument)
}

// testSchemaChange writes rows with one version of a view and reads them with later
// versions: an added feature is NOT_FOUND in old rows, a removed one is ignored, features
// may be reordered, and a feature whose type changed is NOT_FOUND until rewritten.
func testSchemaChange(t *testing.T, s online.Store) {
	ctx := context.Background()
	project := Project(t)
	fields := func(specs ...string) *definitions.FeatureView {
		fv := &definitions.FeatureView{Name: "evolving", Entities: []string{"user"}}
		for _, sp := range specs {
			name, ty, _ := strings.Cut(sp, ":")
			fv.Features = append(fv.Features, definitions.Field{Name: name, Type: definitions.MustType(ty)})
		}
		return fv
	}
	v1 := MustView(t, project, fields("a:int64", "b:string", "c:float64"))
	k := UserKey(t, v1, 1)
	require.NoError(t, s.Write(ctx, v1, []online.Row{{Key: k, EventTS: base, Values: []online.Value{online.Int64(1), online.String("b"), online.Float64(3)}}}))

	v2 := MustView(t, project, fields("c:float64", "new:int32", "a:int64", "b:int64"))
	res := read(t, s, online.ViewRead{View: v2, Keys: []online.EntityKey{k}})
	require.Equal(t, online.Present, res.Columns[0].Statuses[0])
	require.Equal(t, 3.0, res.Columns[0].Values[0].Float64())
	require.Equal(t, online.NotFound, res.Columns[1].Statuses[0], "feature added after the row was written")
	require.Equal(t, online.Present, res.Columns[2].Statuses[0])
	require.Equal(t, int64(1), res.Columns[2].Values[0].Int64())
	require.Equal(t, online.NotFound, res.Columns[3].Statuses[0], "feature whose type changed")
}

func testProjectIsolation(t *testing.T, s online.Store) {
	ctx := context.Background()
	p1 := MustView(t, Project(t), FeatureView("stats", []string{"user"}, 0, "int64"))
	p2 := MustView(t, Project(t), FeatureView("stats", []string{"user"}, 0, "int64"))
	require.NoError(t, s.Write(ctx, p1, []online.Row{{Key: UserKey(t, p1, 1), EventTS: base, Values: []online.Value{online.Int64(1)}}}))
	res := read(t, s, online.ViewRead{View: p2, Keys: []online.EntityKey{UserKey(t, p2, 1)}}, online.ViewRead{View: p1, Keys: []online.EntityKey{UserKey(t, p1, 1)}})
	require.Equal(t, online.NotFound, res.Columns[0].Statuses[0])
	require.Equal(t, online.Present, res.Columns[1].Statuses[0])
}

func testEmpty(t *testing.T, s online.Store) {
	ctx := context.Background()
	v := MustView(t, Project(t), FeatureView("stats", []string{"user"}, 0, "int64", "bool"))
	require.NoError(t, s.Write(ctx, v, nil))
	res := read(t, s, online.ViewRead{View: v, Keys: []online.EntityKey{}})
	require.Equal(t, 0, res.Rows)
	require.Len(t, res.Columns, 2)
	require.Empty(t, res.Columns[0].Values)
}

// testGenerations: rows belong to the definition generation they were written for. A newer
// generation never reads older rows (they are NOT_FOUND), older timestamps of a new
// generation are written (the stale-write guard is per generation), and DeleteView and
// CountView cover a generation and every earlier one.
func testGenerations(t *testing.T, s online.Store) {
	ctx := context.Background()
	project := Project(t)
	g1 := MustView(t, project, FeatureView("v", []string{"user"}, 0, "int64"))
	// Generation 2 changes the feature's type, as a breaking change would.
	g2 := MustView(t, project, FeatureView("v", []string{"user"}, 0, "int32")).WithGeneration(2)
	require.Equal(t, "v", g1.StorageName())
	require.Equal(t, "v@2", g2.StorageName())
	other := MustView(t, project, FeatureView("w", []string{"user"}, 0, "int64"))
	var keys []online.EntityKey
	for i := range int64(20) {
		k := UserKey(t, g1, i)
		keys = append(keys, k)
		require.NoError(t, s.Write(ctx, g1, []online.Row{{Key: k, EventTS: base.Add(time.Hour), Values: []online.Value{online.Int64(i)}}}))
		require.NoError(t, s.Write(ctx, other, []online.Row{{Key: k, EventTS: base, Values: []online.Value{online.Int64(i)}}}))
	}
	res := read(t, s, online.ViewRead{View: g2, Keys: keys})
	for i := range keys {
		require.Equal(t, online.NotFound, res.Columns[0].Statuses[i], "generation 2 never reads generation 1's rows")
	}
	// Older event times than generation 1's rows: still written for generation 2.
	for i, k := range keys[:10] {
		require.NoError(t, s.Write(ctx, g2, []online.Row{{Key: k, EventTS: base, Values: []online.Value{online.Int32(int32(100 + i))}}}))
	}
	res = read(t, s, online.ViewRead{View: g2, Keys: keys}, online.ViewRead{View: g1, Keys: keys})
	for i := range keys {
		if i < 10 {
			require.Equal(t, online.Present, res.Columns[0].Statuses[i])
			require.Equal(t, int32(100+i), res.Columns[0].Values[i].Int32())
		} else {
			require.Equal(t, online.NotFound, res.Columns[0].Statuses[i])
		}
		require.Equal(t, int64(i), res.Columns[1].Values[i].Int64())
	}
	if c, ok := s.(online.Counter); ok {
		n, err := c.CountView(ctx, g1)
		require.NoError(t, err)
		require.EqualValues(t, 20, n)
		n, err = c.CountView(ctx, g2)
		require.NoError(t, err)
		require.EqualValues(t, 30, n, "generation 2 counts its rows and generation 1's")
	} else {
		t.Fatalf("%T does not implement online.Counter", s)
	}
	// Dropping generation 1 leaves generation 2 and other views alone.
	require.NoError(t, s.DeleteView(ctx, g1))
	res = read(t, s, online.ViewRead{View: g2, Keys: keys}, online.ViewRead{View: g1, Keys: keys}, online.ViewRead{View: other, Keys: keys})
	for i := range keys {
		require.Equal(t, i < 10, res.Columns[0].Statuses[i] == online.Present, "row %d", i)
		require.Equal(t, online.NotFound, res.Columns[1].Statuses[i])
		require.Equal(t, online.Present, res.Columns[2].Statuses[i])
	}
	// A reference by name and generation drops every generation through it.
	ref, err := online.NewViewRef(project, "v", 2)
	require.NoError(t, err)
	require.NoError(t, s.DeleteView(ctx, ref))
	require.NoError(t, s.DeleteView(ctx, ref), "dropping twice is a no-op")
	n, err := s.(online.Counter).CountView(ctx, ref)
	require.NoError(t, err)
	require.Zero(t, n)
	res = read(t, s, online.ViewRead{View: g2, Keys: keys}, online.ViewRead{View: other, Keys: keys})
	for i := range keys {
		require.Equal(t, online.NotFound, res.Columns[0].Statuses[i])
		require.Equal(t, online.Present, res.Columns[1].Statuses[i])
	}
	_, err = online.NewViewRef(project, "", 1)
	require.ErrorIs(t, err, online.ErrInvalidArgument)
}
