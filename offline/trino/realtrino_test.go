package trino

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/offline/pitjoin"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

// The tests in this file run against the real Trino 483 (internal/testenv.SharedTrinoServer):
// one server per test binary, or per test run under QUIVER_TESTENV_DIR, each test with
// catalogs of its own.

// realTrino returns the shared Trino server, owned by TestMain's MainTB.
func realTrino() *testenv.TrinoServer { return testenv.SharedTrinoServer(mainTB) }

// TestRealTrinoSourceConformance runs the source conformance suite against the real Trino: each
// case's rows are loaded into a table of the memory connector, exactly (typed literals), and
// read back through a query and through a table name.
func TestRealTrinoSourceConformance(t *testing.T) {
	tr := realTrino()
	mem := tr.AddCatalog(t, testenv.MemoryCatalog("src"))
	client, err := Open(tr.DSN(mem, "default"))
	require.NoError(t, err)
	defer client.Close()
	n := 0
	sourcetest.Run(t, func(t *testing.T, data arrow.RecordBatch, f offline.Fields) offline.Source {
		n++
		table := fmt.Sprintf("%s.default.events_%d", mem, n)
		tr.LoadTable(t, table, data)
		if n%2 == 0 {
			return newSource(t, client, definitions.TrinoSource{Table: table}, f)
		}
		return newSource(t, client, definitions.TrinoSource{Query: "SELECT * FROM " + table}, f)
	})
}

// pitFixture is a point-in-time join case in the real Trino: three views written by Quiver's
// offline store into Iceberg tables that Trino reads through the JDBC catalog they share, and
// entity rows in a memory table.
type pitFixture struct {
	client *Client
	// iceCatalog is the Trino catalog of the views' tables.
	iceCatalog string
	store      *iceberg.Store
	views      []pitView
	entities   arrow.RecordBatch // user_id, shop, event_timestamp, label
	entQuery   string
}

type pitView struct {
	vs       offline.ViewSchema
	ttl      time.Duration
	aggs     []JoinAggregation
	snapshot int64
}

func (v pitView) features() []string {
	var out []string
	for _, c := range v.vs.Features {
		out = append(out, c.Name)
	}
	return out
}

const pitNamespace = "quiver_pit"

// pitTime is the start of the generated data.
var pitTime = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// newPITFixture writes randomized feature rows (duplicates on (keys, event_ts, created_ts),
// nulls, NaN and infinities, late rows, microsecond timestamps) for three views — plain with a
// TTL, plain with two keys, and an aggregation view's raw events — and entity rows whose times
// sit on and one microsecond around the rows' times, TTL and window edges, and created times.
func newPITFixture(t *testing.T, seed uint64) *pitFixture {
	ctx := context.Background()
	tr := realTrino()
	dbURL := pg.NewDatabase(t)
	wh := t.TempDir()
	// Quiver's catalog first: iceberg-go creates the catalog tables Trino's JDBC catalog uses.
	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: dbURL, Warehouse: wh})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cat.Close()) })
	store, err := iceberg.NewStore(ctx, cat, iceberg.StoreOptions{Namespace: pitNamespace})
	require.NoError(t, err)
	iceCat, err := testenv.IcebergJDBCCatalog("ice", dbURL, wh)
	require.NoError(t, err)
	ice := tr.AddCatalog(t, iceCat)
	mem := tr.AddCatalog(t, testenv.MemoryCatalog("ents"))
	client, err := Open(tr.DSN(ice, pitNamespace))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })

	ty := definitions.MustType
	key := offline.Column{Name: "user_id", Type: ty("int64")}
	f := &pitFixture{client: client, iceCatalog: ice, store: store, views: []pitView{
		{ttl: 6 * time.Hour, vs: offline.ViewSchema{View: "pv", JoinKeys: []offline.Column{key}, Features: []offline.Column{
			{Name: "i64", Type: ty("int64")}, {Name: "i32", Type: ty("int32")}, {Name: "f64", Type: ty("float64")},
			{Name: "f32", Type: ty("float32")}, {Name: "b", Type: ty("bool")}, {Name: "s", Type: ty("string")},
			{Name: "by", Type: ty("bytes")}, {Name: "tm", Type: ty("timestamp")}, {Name: "arr", Type: ty("array<int64>")},
			{Name: "Mixed_Case", Type: ty("int64")},
		}}},
		{vs: offline.ViewSchema{View: "sv", JoinKeys: []offline.Column{key, {Name: "shop", Type: ty("string")}}, Features: []offline.Column{
			{Name: "n", Type: ty("int64")}, {Name: "s2", Type: ty("string")},
		}}},
		{vs: offline.ViewSchema{View: "ag", JoinKeys: []offline.Column{key}, Features: []offline.Column{
			{Name: "amount", Type: ty("float64")}, {Name: "qty", Type: ty("int64")}, {Name: "merchant", Type: ty("string")},
			{Name: "seen", Type: ty("timestamp")}, {Name: "ok", Type: ty("bool")}, {Name: "small", Type: ty("int32")},
		}}, aggs: []JoinAggregation{
			{Name: "amount_sum_1h", Column: "amount", Function: "sum", Window: time.Hour, Float: true},
			{Name: "amount_count_1d", Column: "amount", Function: "count", Window: 24 * time.Hour, Float: true},
			{Name: "amount_mean_1d", Column: "amount", Function: "mean", Window: 24 * time.Hour, Float: true},
			{Name: "amount_min_7d", Column: "amount", Function: "min", Window: 7 * 24 * time.Hour, Float: true},
			{Name: "amount_max_7d", Column: "amount", Function: "max", Window: 7 * 24 * time.Hour, Float: true},
			{Name: "amount_last_1d", Column: "amount", Function: "last", Window: 24 * time.Hour, Float: true},
			{Name: "qty_sum_7d", Column: "qty", Function: "sum", Window: 7 * 24 * time.Hour},
			{Name: "qty_mean_1h", Column: "qty", Function: "mean", Window: time.Hour},
			{Name: "qty_min_1d", Column: "qty", Function: "min", Window: 24 * time.Hour},
			{Name: "qty_last_7d", Column: "qty", Function: "last", Window: 7 * 24 * time.Hour},
			{Name: "merchant_count_distinct_1d", Column: "merchant", Function: "count_distinct", Window: 24 * time.Hour},
			{Name: "merchant_last_1d", Column: "merchant", Function: "last", Window: 24 * time.Hour}, // a string: issue 27
			{Name: "seen_max_7d", Column: "seen", Function: "max", Window: 7 * 24 * time.Hour},
			{Name: "seen_last_1d", Column: "seen", Function: "last", Window: 24 * time.Hour},
			{Name: "ok_last_1d", Column: "ok", Function: "last", Window: 24 * time.Hour},
			{Name: "small_sum_1d", Column: "small", Function: "sum", Window: 24 * time.Hour},
			{Name: "small_min_1h", Column: "small", Function: "min", Window: time.Hour},
		}},
	}}

	r := rand.New(rand.NewPCG(seed, 30))
	const users = 25
	span := int64(8 * 24 * time.Hour / time.Microsecond)
	base := pitTime.UnixMicro()
	var times []int64 // every written event_ts and created_ts: entity times are drawn around them
	for i := range f.views {
		v := &f.views[i]
		b := array.NewRecordBuilder(memory.DefaultAllocator, v.vs.Arrow())
		n := 700
		if v.aggs != nil {
			n = 1500
		}
		for row := 0; row < n; row++ {
			user := int64(r.IntN(users))
			ts := base + r.Int64N(span)
			if r.IntN(3) == 0 {
				ts -= ts % int64(time.Hour/time.Microsecond) // on the hour: ties between views and rows
			}
			var created *int64
			if r.IntN(5) > 0 {
				c := ts + []int64{0, 1, int64(time.Hour / time.Microsecond), r.Int64N(2 * int64(24*time.Hour/time.Microsecond))}[r.IntN(4)]
				created = &c
			}
			times = append(times, ts)
			if created != nil {
				times = append(times, *created)
			}
			for c, col := range v.vs.Columns() {
				fb := b.Field(c)
				switch col.Name {
				case "user_id":
					fb.(*array.Int64Builder).Append(user)
					continue
				case "shop":
					fb.(*array.StringBuilder).Append([]string{"a", "b", "c"}[r.IntN(3)])
					continue
				case offline.EventTS:
					fb.(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
					continue
				case offline.CreatedTS:
					if created == nil {
						fb.AppendNull()
					} else {
						fb.(*array.TimestampBuilder).Append(arrow.Timestamp(*created))
					}
					continue
				}
				if r.IntN(6) == 0 {
					fb.AppendNull()
					continue
				}
				randomValue(r, fb)
			}
		}
		rec := b.NewRecordBatch()
		b.Release()
		// Duplicates: some rows again with the same (keys, event_ts, created_ts) and other values;
		// the store keeps the one ingested last.
		rec = withDuplicates(t, r, rec)
		res, err := store.WriteInterval(ctx, v.vs, offline.Range{Start: pitTime.Add(-24 * time.Hour), End: pitTime.Add(30 * 24 * time.Hour)},
			offline.NewSliceStream(rec.Schema(), rec), "run-"+v.vs.View)
		require.NoError(t, err)
		require.NotZero(t, res.SnapshotID)
		v.snapshot = res.SnapshotID
	}

	// Entity rows: random times, and times on and one microsecond around the rows' times, TTL
	// edges, window edges and created times; some unknown users; some rows twice.
	entSchema := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, {Name: "shop", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_timestamp", Type: offline.TimestampType, Nullable: true}, {Name: "label", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	eb := array.NewRecordBuilder(memory.DefaultAllocator, entSchema)
	defer eb.Release()
	offsets := []time.Duration{0, time.Microsecond, -time.Microsecond, 6 * time.Hour, 6*time.Hour + time.Microsecond,
		time.Hour, time.Hour + time.Microsecond, 24 * time.Hour, 24*time.Hour + time.Microsecond, 7 * 24 * time.Hour, 7*24*time.Hour + time.Microsecond}
	type ent struct {
		user int64
		shop string
		ts   int64
	}
	var ents []ent
	for i := range 800 {
		e := ent{user: int64(r.IntN(users + 3)), shop: []string{"a", "b", "c"}[r.IntN(3)], ts: base + r.Int64N(span+int64(8*24*time.Hour/time.Microsecond))}
		switch {
		case i > 0 && r.IntN(10) == 0:
			e = ents[r.IntN(len(ents))]
		case r.IntN(2) == 0:
			e.ts = times[r.IntN(len(times))] + int64(offsets[r.IntN(len(offsets))]/time.Microsecond)
		}
		ents = append(ents, e)
		eb.Field(0).(*array.Int64Builder).Append(e.user)
		eb.Field(1).(*array.StringBuilder).Append(e.shop)
		eb.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(e.ts))
		eb.Field(3).(*array.Int64Builder).Append(int64(i % 7))
	}
	f.entities = eb.NewRecordBatch()
	t.Cleanup(f.entities.Release)
	table := mem + ".default.ents"
	tr.LoadTable(t, table, f.entities)
	f.entQuery = "SELECT user_id, shop, event_timestamp, label FROM " + table
	return f
}

// withDuplicates appends copies of some rows with the same keys and times and new values.
func withDuplicates(t *testing.T, r *rand.Rand, rec arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	defer rec.Release()
	b := array.NewRecordBuilder(memory.DefaultAllocator, rec.Schema())
	defer b.Release()
	for c := range int(rec.NumCols()) {
		for i := range int(rec.NumRows()) {
			require.NoError(t, b.Field(c).AppendValueFromString(rec.Column(c).ValueStr(i)))
		}
	}
	keep := map[string]bool{"user_id": true, "shop": true, offline.EventTS: true, offline.CreatedTS: true}
	for i := range int(rec.NumRows()) {
		if r.IntN(10) != 0 {
			continue
		}
		for c, fl := range rec.Schema().Fields() {
			fb := b.Field(c)
			if keep[fl.Name] {
				require.NoError(t, fb.AppendValueFromString(rec.Column(c).ValueStr(i)))
				continue
			}
			if r.IntN(6) == 0 {
				fb.AppendNull()
				continue
			}
			randomValue(r, fb)
		}
	}
	return b.NewRecordBatch()
}

// randomValue appends a random value of the builder's type: NaN, infinities and negative zero
// among the floats, empty and null-holding arrays, timestamps with microseconds.
func randomValue(r *rand.Rand, b array.Builder) {
	switch b := b.(type) {
	case *array.Int64Builder:
		b.Append(int64(r.IntN(2000) - 1000))
	case *array.Int32Builder:
		b.Append(int32(r.IntN(2000) - 1000))
	case *array.Float64Builder:
		b.Append(randomFloat(r))
	case *array.Float32Builder:
		b.Append(float32(randomFloat(r)))
	case *array.BooleanBuilder:
		b.Append(r.IntN(2) == 0)
	case *array.StringBuilder:
		b.Append(fmt.Sprintf("m%d", r.IntN(9)))
	case *array.BinaryBuilder:
		b.Append([]byte{byte(r.IntN(256)), 0, byte(r.IntN(256))})
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(pitTime.UnixMicro() + r.Int64N(1e12)))
	case *array.ListBuilder:
		b.Append(true)
		for range r.IntN(3) {
			if r.IntN(5) == 0 {
				b.ValueBuilder().AppendNull()
				continue
			}
			b.ValueBuilder().(*array.Int64Builder).Append(int64(r.IntN(100)))
		}
	default:
		panic(fmt.Sprintf("randomValue: %T", b))
	}
}

func randomFloat(r *rand.Rand) float64 {
	switch r.IntN(40) {
	case 0:
		return math.NaN()
	case 1:
		return math.Inf(1)
	case 2:
		return math.Inf(-1)
	case 3:
		return math.Copysign(0, -1)
	}
	return math.Round(r.NormFloat64()*1e4) / 100
}

// pushdown runs the join on Trino and renders its column names and rows.
func (f *pitFixture) pushdown(t *testing.T, cutoff bool) (string, []string) {
	t.Helper()
	ctx := context.Background()
	cols, err := f.client.Columns(ctx, f.entQuery)
	require.NoError(t, err)
	var views []JoinView
	for _, v := range f.views {
		jv := JoinView{Name: v.vs.View, Table: pitNamespace + "." + v.vs.View, SnapshotID: v.snapshot, JoinKeys: v.vs.KeyNames(), TTL: v.ttl, Features: v.features()}
		if v.aggs != nil {
			jv.Features, jv.Aggregations = nil, v.aggs
		}
		views = append(views, jv)
	}
	q, err := BuildJoinSQL(JoinSpec{Entities: f.entQuery, EntityColumns: cols, Views: views, CreatedCutoff: cutoff})
	require.NoError(t, err)
	stream, err := f.client.Query(ctx, q, 0, nil)
	require.NoError(t, err, q)
	defer stream.Close()
	return headerOf(stream.Schema()), rowStrings(t, stream.Schema(), func() (arrow.RecordBatch, bool) {
		rec, err := stream.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil, false
		}
		require.NoError(t, err, q)
		return rec, true
	})
}

// inProcess runs the same join in the in-process engine over the same offline tables.
func (f *pitFixture) inProcess(t *testing.T, cutoff bool) (string, []string) {
	t.Helper()
	ctx := context.Background()
	var views []pitjoin.View
	for _, v := range f.views {
		pv := pitjoin.View{Name: v.vs.View, JoinKeys: v.vs.KeyNames(), TTL: v.ttl, Features: v.features()}
		for _, a := range v.aggs {
			pv.Aggregations = append(pv.Aggregations, pitjoin.Aggregation{Name: a.Name, Column: a.Column, Function: a.Function, Window: a.Window})
		}
		if v.aggs != nil {
			pv.Features = nil
		}
		view, snap := v.vs.View, v.snapshot
		pv.Open = func(ctx context.Context, _ pitjoin.EventRange) (array.RecordReader, error) {
			st, err := f.store.Scan(ctx, view, offline.ScanRequest{SnapshotID: snap})
			if err != nil {
				return nil, err
			}
			tbl, err := offline.ReadAll(ctx, st)
			if err != nil {
				return nil, err
			}
			defer tbl.Release()
			return array.NewTableReader(tbl, 0), nil
		}
		views = append(views, pv)
	}
	ents, err := array.NewRecordReader(f.entities.Schema(), []arrow.RecordBatch{f.entities})
	require.NoError(t, err)
	defer ents.Release()
	res, err := pitjoin.Join(ctx, ents, views, pitjoin.Options{CreatedCutoff: cutoff, TempDir: t.TempDir()})
	require.NoError(t, err)
	defer res.Release()
	return headerOf(res.Schema()), rowStrings(t, res.Schema(), func() (arrow.RecordBatch, bool) {
		if !res.Next() {
			require.NoError(t, res.Err())
			return nil, false
		}
		return res.RecordBatch(), true
	})
}

// TestRealTrinoPointInTimeMatchesInProcessEngine is issue 30's acceptance item 4 at the engine:
// the pushed-down join on the real Trino, reading Quiver's Iceberg tables at pinned snapshots
// through the shared JDBC catalog, gives the in-process engine's values, cell for cell — plain
// views (every feature type, a TTL, two join keys, a mixed-case feature name) and aggregations,
// with and without the created-time cutoff.
func TestRealTrinoPointInTimeMatchesInProcessEngine(t *testing.T) {
	f := newPITFixture(t, 7)
	for _, cutoff := range []bool{false, true} {
		wantCols, want := f.inProcess(t, cutoff)
		gotCols, got := f.pushdown(t, cutoff)
		require.Equal(t, wantCols, gotCols)
		// SQL entity rows have no order of their own: compare sorted.
		sort.Strings(want)
		sort.Strings(got)
		require.Len(t, got, len(want))
		requireSameCells(t, strings.Split(wantCols, "|"), want, got, fmt.Sprintf("cutoff %v", cutoff))
	}
	t.Run("ZonelessTimesAreUTC", func(t *testing.T) { testZonelessTimesAreUTC(t, f) })
}

// testZonelessTimesAreUTC: a timestamp without a time zone means UTC in Quiver (as in Parquet
// and entity files), whatever the zone of the machine Quiver runs on. trino-go-client makes the
// machine's zone (TZ) the session's, in which Trino reads zone-less timestamps; here TZ is New
// York, and both the source and the pushed-down join must still read such values as UTC. (It
// changes f: run it last.)
func testZonelessTimesAreUTC(t *testing.T, f *pitFixture) {
	t.Setenv("TZ", "America/New_York")
	ctx := context.Background()
	tr := realTrino()

	// The entity rows again, their times zone-less.
	naive := &arrow.TimestampType{Unit: arrow.Microsecond}
	fields := f.entities.Schema().Fields()
	fields[2].Type = naive
	cols := f.entities.Columns()
	d := cols[2].Data()
	tsCol := array.NewTimestampData(array.NewData(naive, d.Len(), d.Buffers(), nil, d.NullN(), d.Offset()))
	defer tsCol.Release()
	ents := array.NewRecordBatch(arrow.NewSchema(fields, nil), []arrow.Array{cols[0], cols[1], tsCol, cols[3]}, f.entities.NumRows())
	defer ents.Release()
	mem := tr.AddCatalog(t, testenv.MemoryCatalog("naive"))
	table := mem + ".default.ents"
	tr.LoadTable(t, table, ents)

	client, err := Open(tr.DSN(f.iceCatalog, pitNamespace)) // a new session, in New York
	require.NoError(t, err)
	defer client.Close()
	f.client, f.entities, f.entQuery = client, ents, "SELECT user_id, shop, event_timestamp, label FROM "+table
	wantCols, want := f.inProcess(t, false)
	gotCols, got := f.pushdown(t, false)
	require.Equal(t, wantCols, gotCols)
	sort.Strings(want)
	sort.Strings(got)
	require.Len(t, got, len(want))
	requireSameCells(t, strings.Split(wantCols, "|"), want, got, "zone-less entity times")

	// A source reading the same zone-less column as its event time.
	ty := definitions.MustType
	vs := offline.ViewSchema{View: "e", JoinKeys: []offline.Column{{Name: "user_id", Type: ty("int64")}}, Features: []offline.Column{{Name: "label", Type: ty("int64")}}}
	src := newSource(t, client, definitions.TrinoSource{Table: table}, offline.Fields{Timestamp: "event_timestamp"})
	rng := offline.Range{Start: pitTime.Add(-24 * time.Hour), End: pitTime.Add(30 * 24 * time.Hour)}
	st, err := src.Read(ctx, vs, rng)
	require.NoError(t, err)
	tbl, err := offline.ReadAll(ctx, st)
	require.NoError(t, err)
	defer tbl.Release()
	gotTimes := map[int64]int{}
	tr2 := array.NewTableReader(tbl, 0)
	defer tr2.Release()
	for tr2.Next() {
		c := tr2.RecordBatch().Column(1).(*array.Timestamp)
		for i := range c.Len() {
			gotTimes[int64(c.Value(i))]++
		}
	}
	wantTimes := map[int64]int{}
	for i := range tsCol.Len() {
		wantTimes[int64(tsCol.Value(i))]++
	}
	require.Equal(t, wantTimes, gotTimes)
}

// requireSameCells compares rendered rows cell by cell, floats with a fraction to 1e-9
// relative (sums and means depend on the order of addition), and on a difference fails naming
// every column that differs, with its first differing row.
func requireSameCells(t *testing.T, cols, want, got []string, what string) {
	t.Helper()
	first := map[int]string{}
	count := map[int]int{}
	for i := range want {
		w, g := strings.Split(want[i], "|"), strings.Split(got[i], "|")
		require.Len(t, g, len(w))
		for c := range w {
			if w[c] == g[c] {
				continue
			}
			wf, err1 := strconv.ParseFloat(w[c], 64)
			gf, err2 := strconv.ParseFloat(g[c], 64)
			if err1 == nil && err2 == nil && math.Abs(wf-gf) <= 1e-9*math.Max(1, math.Abs(wf)) {
				continue
			}
			if count[c] == 0 {
				first[c] = fmt.Sprintf("in-process %s, trino %s (row %s)", w[c], g[c], want[i])
			}
			count[c]++
		}
	}
	if len(count) == 0 {
		return
	}
	var msg []string
	for c := range cols {
		if count[c] > 0 {
			msg = append(msg, fmt.Sprintf("%s: %d rows differ, e.g. %s", cols[c], count[c], first[c]))
		}
	}
	t.Fatalf("%s: %d rows compared, the engines differ:\n%s", what, len(want), strings.Join(msg, "\n"))
}

// headerOf is a result's column names.
func headerOf(s *arrow.Schema) string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = f.Name
	}
	return strings.Join(names, "|")
}

// TestJoinRefusesMixedCaseTables: Trino folds identifiers to lower case, so a view whose offline
// table has upper-case letters cannot be read there (the real Trino says "Table
// 'cat.ns.shop_view' does not exist"); the pushdown refuses it up front, naming the view.
func TestJoinRefusesMixedCaseTables(t *testing.T) {
	_, err := BuildJoinSQL(JoinSpec{Entities: "SELECT * FROM e", EntityColumns: []string{"user_id", "event_timestamp"},
		Views: []JoinView{{Name: "Shop_View", Table: "quiver_shop.Shop_View", JoinKeys: []string{"user_id"}, Features: []string{"n"}}}})
	require.ErrorIs(t, err, offline.ErrInvalidSource)
	require.ErrorContains(t, err, `view "Shop_View": its offline table quiver_shop.Shop_View has upper-case letters`)
}
