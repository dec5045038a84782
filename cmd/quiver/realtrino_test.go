package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/offline/trino"
)

// TestRealTrino is issue 30's acceptance against the real Trino 483 (items 1-4), through the
// CLI. One Trino serves every subtest (the test run's, under QUIVER_TESTENV_DIR); each subtest
// has its own registry database, warehouse and Trino catalogs: an Iceberg JDBC catalog on the
// registry's PostgreSQL with Quiver's catalog name, so Trino and Quiver share every table, and
// a memory catalog for source and entity tables.
func TestRealTrino(t *testing.T) {
	tr := testenv.SharedTrinoServer(t)
	pg := testenv.StartPostgres(t)
	t.Run("SourceMatchesParquet", func(t *testing.T) { testTrinoSourceMatchesParquet(t, tr, pg) })
	t.Run("TrinoReadsQuiverTables", func(t *testing.T) { testTrinoReadsQuiverTables(t, tr, pg) })
	t.Run("QuiverReadsTrinoWrites", func(t *testing.T) { testQuiverReadsTrinoWrites(t, tr, pg) })
}

// rtLake is one subtest's shared stores: a registry database (which holds the Iceberg
// catalog), a warehouse on local disk, and Trino's catalogs over them.
type rtLake struct {
	tr      *testenv.TrinoServer
	dbURL   string
	wh      string
	ice     string // the Iceberg catalog's name in Trino
	mem     string // the memory catalog's name in Trino
	db      *sql.DB
	started time.Time
}

func newRTLake(t *testing.T, tr *testenv.TrinoServer, pg *testenv.Postgres) *rtLake {
	t.Helper()
	l := &rtLake{tr: tr, dbURL: pg.NewDatabase(t), wh: t.TempDir(), started: time.Now()}
	// Quiver's catalog first: iceberg-go creates the catalog tables Trino's JDBC catalog uses.
	cat, err := iceberg.OpenCatalog(context.Background(), iceberg.CatalogConfig{URI: l.dbURL, Warehouse: l.wh})
	require.NoError(t, err)
	require.NoError(t, cat.Close())
	ice, err := testenv.IcebergJDBCCatalog("ice", l.dbURL, l.wh)
	require.NoError(t, err)
	l.ice = tr.AddCatalog(t, ice)
	l.mem = tr.AddCatalog(t, testenv.MemoryCatalog("mem"))
	l.db = tr.DB(t, l.ice, "")
	return l
}

// project writes a feature repo for project with the given definitions and returns its
// directory and the environment the CLI runs it with.
func (l *rtLake) project(t *testing.T, project, defs string) (string, map[string]string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), project)
	writeFile(t, filepath.Join(dir, "quiver.yaml"), "project: "+project+"\ndefinitions: [features]\n")
	writeFile(t, filepath.Join(dir, "features", "defs.yaml"), defs)
	env := map[string]string{
		"QUIVER_REGISTRY":  l.dbURL,
		"QUIVER_WAREHOUSE": l.wh,
		"QUIVER_ONLINE":    "sqlite://" + filepath.Join(dir, "online.db"),
		"QUIVER_TRINO_DSN": l.tr.DSN(l.ice, iceberg.ProjectNamespace(project)),
	}
	return dir, env
}

// scan reads a view table (of one definition generation) through Quiver's offline store.
func (l *rtLake) scan(t *testing.T, project, view string, generation int) []string {
	t.Helper()
	ctx := context.Background()
	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: l.dbURL, Warehouse: l.wh})
	require.NoError(t, err)
	defer cat.Close()
	store, err := iceberg.NewStore(ctx, cat, iceberg.StoreOptions{Namespace: iceberg.ProjectNamespace(project)})
	require.NoError(t, err)
	st, err := store.Scan(ctx, view, offline.ScanRequest{Generation: generation})
	require.NoError(t, err)
	tbl, err := offline.ReadAll(ctx, st)
	require.NoError(t, err)
	defer tbl.Release()
	return rtTableRows(tbl)
}

// trinoRows runs a query on the real Trino through Quiver's client (the types mapped as a
// Trino source maps them) and renders the rows.
func (l *rtLake) trinoRows(t *testing.T, query string) []string {
	t.Helper()
	ctx := context.Background()
	c, err := trino.Open(l.tr.DSN(l.ice, ""))
	require.NoError(t, err)
	defer c.Close()
	st, err := c.Query(ctx, query, 0, nil)
	require.NoError(t, err, query)
	tbl, err := offline.ReadAll(ctx, st)
	require.NoError(t, err, query)
	defer tbl.Release()
	return rtTableRows(tbl)
}

func (l *rtLake) exec(t *testing.T, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		_, err := l.db.ExecContext(context.Background(), s)
		require.NoError(t, err, s)
	}
}

// rtTableRows renders every row as its cells joined by "|", sorted: timestamps RFC 3339 with
// microseconds, floats exactly (NaN, ±Inf, -0), lists and binaries element by element.
func rtTableRows(tbl arrow.Table) []string {
	var out []string
	rdr := array.NewTableReader(tbl, 0)
	defer rdr.Release()
	for rdr.Next() {
		out = append(out, rtRecordRows(rdr.RecordBatch())...)
	}
	sort.Strings(out)
	return out
}

func rtRecordRows(rec arrow.RecordBatch) []string {
	var out []string
	for r := range int(rec.NumRows()) {
		cells := make([]string, rec.NumCols())
		for c, col := range rec.Columns() {
			cells[c] = rtCell(col, r)
		}
		out = append(out, strings.Join(cells, "|"))
	}
	return out
}

func rtCell(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "NULL"
	}
	switch a := a.(type) {
	case *array.Timestamp:
		return a.Value(i).ToTime(a.DataType().(*arrow.TimestampType).Unit).UTC().Format("2006-01-02T15:04:05.000000Z")
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Float32:
		return strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32)
	case *array.Binary:
		return fmt.Sprintf("%x", a.Value(i))
	case *array.List:
		lo, hi := a.ValueOffsets(i)
		var elems []string
		for j := lo; j < hi; j++ {
			elems = append(elems, rtCell(a.ListValues(), int(j)))
		}
		return "[" + strings.Join(elems, ",") + "]"
	}
	return a.ValueStr(i)
}

// rtDataset reads a dataset snapshot's Parquet files and renders its rows, sorted, with the
// column names as the first line.
func rtDataset(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	require.NoError(t, err)
	require.NotEmpty(t, files, dir)
	var header string
	var rows []string
	for _, p := range files {
		rf, err := file.OpenParquetFile(p, false)
		require.NoError(t, err)
		fr, err := pqarrow.NewFileReader(rf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		require.NoError(t, err)
		tbl, err := fr.ReadTable(context.Background())
		require.NoError(t, err)
		var names []string
		for _, f := range tbl.Schema().Fields() {
			names = append(names, f.Name)
		}
		header = strings.Join(names, "|")
		rows = append(rows, rtTableRows(tbl)...)
		tbl.Release()
		require.NoError(t, rf.Close())
	}
	sort.Strings(rows)
	return append([]string{header}, rows...)
}

// rtCreateDataset runs dataset create with extra arguments and returns the snapshot's folder.
func rtCreateDataset(t *testing.T, env map[string]string, dir string, args ...string) string {
	t.Helper()
	r := quiver(t, env, append([]string{"-C", dir, "-o", "json", "dataset", "create"}, args...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var out struct {
		Location string `json:"location"`
		Rows     int64  `json:"rows"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.Positive(t, out.Rows)
	return out.Location
}

func rtWriteParquet(t *testing.T, path string, rec arrow.RecordBatch) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, nil, pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())
}

// rtBase is the start of the generated data.
var rtBase = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

// rtSourceSchema is the generated source rows' schema: every type a view may declare.
var rtSourceSchema = arrow.NewSchema([]arrow.Field{
	{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "ts", Type: offline.TimestampType, Nullable: true},
	{Name: "created", Type: offline.TimestampType, Nullable: true},
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "by", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "tm", Type: offline.TimestampType, Nullable: true},
	{Name: "ai", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
	{Name: "af", Type: arrow.ListOf(arrow.PrimitiveTypes.Float64), Nullable: true},
	{Name: "as", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
}, nil)

// rtFeatureYAML declares rtSourceSchema's features.
const rtFeatureYAML = `      - { name: i32, type: int32 }
      - { name: i64, type: int64 }
      - { name: f32, type: float32 }
      - { name: f64, type: float64 }
      - { name: b, type: bool }
      - { name: s, type: string }
      - { name: by, type: bytes }
      - { name: tm, type: timestamp }
      - { name: ai, type: "array<int64>" }
      - { name: af, type: "array<float64>" }
      - { name: as, type: "array<string>" }
`

// rtSourceRows generates n source rows for users 0..users-1 over ten days: microsecond times,
// rows sharing (user, ts) with other created times, null created times, a null in a sixth of
// the values, edge floats (NaN, ±Inf, -0, extremes), empty lists. No two rows
// share (user, ts, created), so which one an engine ingests last never matters.
func rtSourceRows(seed uint64, n, users int) arrow.RecordBatch {
	r := rand.New(rand.NewPCG(seed, 30))
	b := array.NewRecordBuilder(memory.DefaultAllocator, rtSourceSchema)
	defer b.Release()
	edge := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.MaxFloat64, math.SmallestNonzeroFloat64, 1e-300}
	f64 := func() float64 {
		if r.IntN(5) == 0 {
			return edge[r.IntN(len(edge))]
		}
		return math.Round(r.NormFloat64()*1e6) / 1e3
	}
	seen := map[string]bool{}
	for len(seen) < n {
		user := int64(r.IntN(users))
		ts := rtBase.UnixMicro() + r.Int64N(int64(10*24*time.Hour/time.Microsecond))
		if r.IntN(3) == 0 {
			ts -= ts % int64(time.Hour/time.Microsecond)
		}
		var created *int64
		if r.IntN(5) > 0 {
			c := ts + r.Int64N(int64(2*time.Hour/time.Microsecond))*int64(r.IntN(2))
			created = &c
		}
		k := fmt.Sprint(user, ts, "NULL")
		if created != nil {
			k = fmt.Sprint(user, ts, *created)
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		b.Field(0).(*array.Int64Builder).Append(user)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
		if created == nil {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(*created))
		}
		for c := 3; c < len(rtSourceSchema.Fields()); c++ {
			fb := b.Field(c)
			if r.IntN(6) == 0 {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.Int32Builder:
				fb.Append(int32(r.IntN(1<<20) - 1<<19))
			case *array.Int64Builder:
				fb.Append(r.Int64() - math.MaxInt64/2)
			case *array.Float32Builder:
				fb.Append(float32(f64()))
			case *array.Float64Builder:
				fb.Append(f64())
			case *array.BooleanBuilder:
				fb.Append(r.IntN(2) == 0)
			case *array.StringBuilder:
				fb.Append([]string{"", "ü", "it's", `say "hi"`, "x"}[r.IntN(5)] + strconv.Itoa(r.IntN(50)))
			case *array.BinaryBuilder:
				fb.Append([]byte{byte(r.IntN(256)), 0, byte(r.IntN(256))})
			case *array.TimestampBuilder:
				fb.Append(arrow.Timestamp(rtBase.UnixMicro() - r.Int64N(1e13)))
			case *array.ListBuilder:
				fb.Append(true)
				for range r.IntN(4) {
					switch vb := fb.ValueBuilder().(type) { // online arrays hold no nulls
					case *array.Int64Builder:
						vb.Append(int64(r.IntN(1000)))
					case *array.Float64Builder:
						vb.Append(f64())
					case *array.StringBuilder:
						vb.Append("e" + strconv.Itoa(r.IntN(9)))
					}
				}
			}
		}
	}
	return b.NewRecordBatch()
}

// getOnlineJSON is get-online of every feature of view for users 0..users-1, as JSON.
func getOnlineJSON(t *testing.T, env map[string]string, dir, view string, features []string, users int) map[string]any {
	t.Helper()
	args := []string{"-C", dir, "-o", "json", "get-online"}
	for _, f := range features {
		args = append(args, "--feature", view+":"+f)
	}
	for u := range users {
		args = append(args, "--entity", "user_id="+strconv.Itoa(u))
	}
	r := quiver(t, env, args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	return out
}

var rtFeatures = []string{"i32", "i64", "f32", "f64", "b", "s", "by", "tm", "ai", "af", "as"}

// testTrinoSourceMatchesParquet is item 1: a view whose source is a query on the real Trino
// (over a memory-connector table) materializes the same offline rows and online values as the
// same view over the same rows in a Parquet file — every type a view declares, nulls, edge
// floats, timestamps to the microsecond.
func testTrinoSourceMatchesParquet(t *testing.T, tr *testenv.TrinoServer, pg *testenv.Postgres) {
	l := newRTLake(t, tr, pg)
	const users = 30
	rows := rtSourceRows(1, 400, users)
	defer rows.Release()
	table := l.mem + ".default.events"
	tr.LoadTable(t, table, rows)
	defs := func(source string) string {
		return `entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: events
    ` + source + `
    timestamp_field: ts
    created_timestamp_field: created
feature_views:
  - name: stats
    entities: [user]
    source: events
    online: true
    features:
` + rtFeatureYAML
	}
	pqDir, pqEnv := l.project(t, "from_parquet", defs("parquet: { path: data/events.parquet }"))
	rtWriteParquet(t, filepath.Join(pqDir, "data", "events.parquet"), rows)
	trDir, trEnv := l.project(t, "from_trino", defs(`trino: { query: "SELECT * FROM `+table+` WHERE user_id >= 0" }`))
	for _, p := range []struct {
		dir string
		env map[string]string
	}{{pqDir, pqEnv}, {trDir, trEnv}} {
		r := quiver(t, p.env, "-C", p.dir, "apply")
		require.Equal(t, exitOK, r.code, r.stderr)
		r = quiver(t, p.env, "-C", p.dir, "materialize", "--start", "2024-02-01T00:00:00Z", "--end", "2024-04-01T00:00:00Z")
		require.Equal(t, exitOK, r.code, r.stderr)
	}
	fromParquet, fromTrino := l.scan(t, "from_parquet", "stats", 1), l.scan(t, "from_trino", "stats", 1)
	require.Len(t, fromParquet, int(rows.NumRows()))
	require.Equal(t, fromParquet, fromTrino)

	onlineParquet := getOnlineJSON(t, pqEnv, pqDir, "stats", rtFeatures, users)
	onlineTrino := getOnlineJSON(t, trEnv, trDir, "stats", rtFeatures, users)
	require.Contains(t, fmt.Sprint(onlineParquet), "PRESENT")
	require.Equal(t, onlineParquet, onlineTrino)
}

// rtLakeDefs is a project over a Parquet source: a plain view of every type, and an
// aggregation view (its table holds the raw events).
const rtLakeDefs = `entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: events
    parquet: { path: data/events.parquet }
    timestamp_field: ts
    created_timestamp_field: created
feature_views:
  - name: prof
    entities: [user]
    source: events
    ttl: 2d
    online: true
    features:
FEATURES
  - name: txn
    entities: [user]
    source: events
    columns:
      - { name: f64, type: float64 }
      - { name: i64, type: int64 }
      - { name: i32, type: int32 }
      - { name: tm, type: timestamp }
      - { name: s, type: string }
    aggregations:
      - { column: f64, function: sum, windows: [1h, 1d] }
      - { column: f64, function: mean, windows: [1d] }
      - { column: f64, function: min, windows: [7d] }
      - { column: f64, function: max, windows: [7d] }
      - { column: f64, function: last, windows: [1d] }
      - { column: i64, function: count, windows: [1d] }
      - { column: i32, function: sum, windows: [7d] }
      - { column: tm, function: max, windows: [1d] }
      - { column: s, function: count_distinct, windows: [7d] }
feature_services:
  - name: svc
    features: [prof:*, txn:*]
`

// testTrinoReadsQuiverTables is item 2: Trino's SELECT of each view table Quiver wrote, through
// the shared JDBC catalog, equals Quiver's own scan of it — a plain view and an aggregation
// view's raw events, a second definition generation (apply --allow-breaking), and after quiver
// gc has expired snapshots and removed files. Then item 4 end to end: dataset create --engine
// trino equals the in-process engine on the same tables, with and without --created-cutoff.
func testTrinoReadsQuiverTables(t *testing.T, tr *testenv.TrinoServer, pg *testenv.Postgres) {
	l := newRTLake(t, tr, pg)
	const users = 25
	rows := rtSourceRows(2, 500, users)
	defer rows.Release()
	dir, env := l.project(t, "lake", strings.Replace(rtLakeDefs, "FEATURES\n", rtFeatureYAML, 1))
	rtWriteParquet(t, filepath.Join(dir, "data", "events.parquet"), rows)
	r := quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	// Two runs over halves of the time, then the whole again: several snapshots for gc.
	for _, iv := range [][2]string{{"2024-02-01T00:00:00Z", "2024-03-06T00:00:00Z"}, {"2024-03-06T00:00:00Z", "2024-04-01T00:00:00Z"}, {"2024-02-01T00:00:00Z", "2024-04-01T00:00:00Z"}} {
		r = quiver(t, env, "-C", dir, "materialize", "--start", iv[0], "--end", iv[1])
		require.Equal(t, exitOK, r.code, r.stderr)
	}
	ns := iceberg.ProjectNamespace("lake")
	same := func(view string, generation int) {
		t.Helper()
		quiverRows := l.scan(t, "lake", view, generation)
		require.NotEmpty(t, quiverRows)
		table := view
		if generation > 1 {
			table = iceberg.TableName(view, generation)
		}
		require.Equal(t, quiverRows, l.trinoRows(t, fmt.Sprintf(`SELECT * FROM %s.%s.%q`, l.ice, ns, table)), "view %s generation %d", view, generation)
	}
	same("prof", 1)
	same("txn", 1)

	// A second generation: a feature removed is a breaking change.
	path := filepath.Join(dir, "features", "defs.yaml")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	writeFile(t, path, strings.Replace(string(b), "      - { name: by, type: bytes }\n", "", 1))
	r = quiver(t, env, "-C", dir, "apply", "--allow-breaking")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, env, "-C", dir, "materialize", "--start", "2024-02-01T00:00:00Z", "--end", "2024-04-01T00:00:00Z")
	require.Equal(t, exitOK, r.code, r.stderr)
	same("prof", 2)
	require.Equal(t, []string{"prof-g2", "txn"}, l.trinoRows(t, fmt.Sprintf("SELECT table_name FROM %s.information_schema.tables WHERE table_schema = '%s' ORDER BY 1", l.ice, ns)),
		"the first generation's table is dropped for Trino too")

	// gc: snapshots older than a moment ago are expired and their files removed.
	time.Sleep(10 * time.Millisecond)
	r = quiver(t, env, "-C", dir, "-o", "json", "gc", "--older-than", "1ms")
	require.Equal(t, exitOK, r.code, r.stderr)
	var gc struct {
		Bytes int64 `json:"bytes_reclaimed"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &gc), r.stdout)
	require.Positive(t, gc.Bytes, r.stdout)
	same("prof", 2)
	same("txn", 1)

	// Item 4 end to end: the pushed-down join over the same tables (the second generation's
	// "prof-g2" among them) equals the in-process engine's, with the same entity rows in a
	// Parquet file and in a Trino table.
	ents := rtEntities(t, rows, 400)
	defer ents.Release()
	entFile, entSQL := l.entityInputs(t, ents, dir)
	for i, cutoff := range []bool{false, true} {
		args := []string{"--service", "svc"}
		if cutoff {
			args = append(args, "--created-cutoff")
		}
		local := rtDataset(t, rtCreateDataset(t, env, dir, append([]string{"local" + strconv.Itoa(i), "--entities", entFile}, args...)...))
		pushed := rtDataset(t, rtCreateDataset(t, env, dir, append([]string{"pushed" + strconv.Itoa(i), "--engine", "trino", "--entities-sql", entSQL}, args...)...))
		require.Equal(t, local[0], pushed[0], "columns")
		require.Len(t, pushed, len(local))
		rtRequireSameCells(t, local[0], local[1:], pushed[1:], fmt.Sprintf("created cutoff %v", cutoff))
	}
}

// rtEntities are n entity rows (user_id, event_timestamp, label) over the rows' users and
// times: half at a row's time, or one microsecond, the TTL, or a window after it.
// entityInputs gives entity rows to both engines: written to dir/ents.parquet (the local
// engine's --entities) and loaded into the lake's memory catalog as default.ents (the Trino
// engine's --entities-sql, returned).
func (l *rtLake) entityInputs(t *testing.T, ents arrow.RecordBatch, dir string) (file, sql string) {
	t.Helper()
	file = filepath.Join(dir, "ents.parquet")
	rtWriteParquet(t, file, ents)
	l.tr.LoadTable(t, l.mem+".default.ents", ents)
	return file, "SELECT user_id, event_timestamp, label FROM " + l.mem + ".default.ents"
}

func rtEntities(t *testing.T, rows arrow.RecordBatch, n int) arrow.RecordBatch {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(n), 9))
	schema := arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "event_timestamp", Type: offline.TimestampType, Nullable: true}, {Name: "label", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	users := rows.Column(0).(*array.Int64)
	times := []*array.Timestamp{rows.Column(1).(*array.Timestamp), rows.Column(2).(*array.Timestamp)}
	us := func(d time.Duration) int64 { return int64(d / time.Microsecond) }
	offsets := []int64{0, 1, -1, us(time.Hour), us(time.Hour) + 1, us(24 * time.Hour), us(24*time.Hour) + 1, us(48 * time.Hour), us(48*time.Hour) + 1, us(7 * 24 * time.Hour)}
	for i := range n {
		row := r.IntN(int(rows.NumRows()))
		user, ts := users.Value(row)+int64(r.IntN(2)), rtBase.UnixMicro()+r.Int64N(us(12*24*time.Hour))
		if r.IntN(2) == 0 {
			tc := times[r.IntN(2)]
			if tc.IsValid(row) {
				user, ts = users.Value(row), int64(tc.Value(row))+offsets[r.IntN(len(offsets))]
			}
		}
		b.Field(0).(*array.Int64Builder).Append(user)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
		b.Field(2).(*array.Int64Builder).Append(int64(i))
	}
	return b.NewRecordBatch()
}

// rtRequireSameCells compares rendered rows cell by cell; float cells to 1e-9 relative (sums
// and means depend on the order of addition). It names every column that differs.
func rtRequireSameCells(t *testing.T, header string, want, got []string, what string) {
	t.Helper()
	cols := strings.Split(header, "|")
	diffs := map[int]string{}
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
			if _, ok := diffs[c]; !ok {
				diffs[c] = fmt.Sprintf("%s: local %s, trino %s (row %s)", cols[c], w[c], g[c], want[i])
			}
		}
	}
	if len(diffs) > 0 {
		var msg []string
		for _, d := range diffs {
			msg = append(msg, d)
		}
		sort.Strings(msg)
		t.Fatalf("%s: the engines differ:\n%s", what, strings.Join(msg, "\n"))
	}
}

// testQuiverReadsTrinoWrites is item 3: rows Trino INSERTs, MERGEs and DELETEs (position
// deletes) in a view table Quiver wrote are read back correctly by dataset create (both
// engines) and materialize --online-only, also after quiver gc.
func testQuiverReadsTrinoWrites(t *testing.T, tr *testenv.TrinoServer, pg *testenv.Postgres) {
	l := newRTLake(t, tr, pg)
	const users = 20
	rows := rtSourceRows(3, 300, users)
	defer rows.Release()
	dir, env := l.project(t, "mart", strings.Replace(rtLakeDefs, "FEATURES\n", rtFeatureYAML, 1))
	rtWriteParquet(t, filepath.Join(dir, "data", "events.parquet"), rows)
	r := quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, env, "-C", dir, "materialize", "--start", "2024-02-01T00:00:00Z", "--end", "2024-04-01T00:00:00Z")
	require.Equal(t, exitOK, r.code, r.stderr)

	// The user whose rows Trino deletes, and a day on which it has rows before and after noon
	// (a later run re-materializes that morning).
	delUser, day := int64(-1), time.Time{}
	for i := range int(rows.NumRows()) {
		u := rows.Column(0).(*array.Int64).Value(i)
		ts := rows.Column(1).(*array.Timestamp).Value(i).ToTime(arrow.Microsecond).UTC()
		d := ts.Truncate(24 * time.Hour)
		if u < 5 || ts.Hour() >= 12 {
			continue
		}
		for j := range int(rows.NumRows()) {
			tj := rows.Column(1).(*array.Timestamp).Value(j).ToTime(arrow.Microsecond).UTC()
			if rows.Column(0).(*array.Int64).Value(j) == u && tj.Truncate(24*time.Hour).Equal(d) && tj.Hour() >= 12 {
				delUser, day = u, d
			}
		}
	}
	require.NotEqual(t, int64(-1), delUser, "the data has a user with rows before and after noon of one day")
	tbl := fmt.Sprintf(`%s.%s.prof`, l.ice, iceberg.ProjectNamespace("mart"))
	later := "TIMESTAMP '2024-03-20 10:00:00.000001 UTC'"
	l.exec(t,
		// New rows: a new user, and a newer row for users 1 and 2.
		"INSERT INTO "+tbl+" (user_id, event_ts, created_ts, i64, s, f64, ai) VALUES "+
			"(100, "+later+", "+later+", 1000, 'inserted', DOUBLE '1.5', ARRAY[BIGINT '1', 2]), "+
			"(1, "+later+", NULL, 1001, 'inserted-1', nan(), ARRAY[]), "+
			"(2, "+later+", "+later+", 1002, 'inserted-2', NULL, NULL)",
		// MERGE: user 2's new row updated, user 101 inserted.
		"MERGE INTO "+tbl+" t USING (VALUES (BIGINT '2', "+later+", BIGINT '2002', 'merged-2'), (BIGINT '101', "+later+", BIGINT '2101', 'merged-101')) "+
			"AS s(user_id, event_ts, i64, s) ON t.user_id = s.user_id AND t.event_ts = s.event_ts "+
			"WHEN MATCHED THEN UPDATE SET i64 = s.i64, s = s.s "+
			"WHEN NOT MATCHED THEN INSERT (user_id, event_ts, i64, s) VALUES (s.user_id, s.event_ts, s.i64, s.s)",
		// DELETE: every row of one user; user 4's latest row, so an older one becomes its latest.
		"DELETE FROM "+tbl+" WHERE user_id = "+strconv.FormatInt(delUser, 10),
		"DELETE FROM "+tbl+" WHERE user_id = 4 AND event_ts = (SELECT max(event_ts) FROM "+tbl+" WHERE user_id = 4)",
		// Column statistics for Trino's optimizer, in a Puffin file the table metadata names.
		"ANALYZE "+tbl,
	)
	// Trino wrote position deletes (content 1), never equality deletes (content 2).
	contents := l.trinoRows(t, fmt.Sprintf(`SELECT DISTINCT content FROM %s.%s."prof$files"`, l.ice, iceberg.ProjectNamespace("mart")))
	require.Equal(t, []string{"0", "1"}, contents)

	// What Trino says the table holds now, and what each entity row should join by the rule
	// (latest event_ts <= T within the TTL, ties by the latest created_ts, a null lowest).
	current := l.trinoRows(t, "SELECT user_id, event_ts, created_ts, "+strings.Join(rtQuoted(rtFeatures), ", ")+" FROM "+tbl)
	require.Contains(t, strings.Join(current, "\n"), "merged-2")

	ents := rtEntities(t, rows, 200)
	defer ents.Release()
	ents = rtWithEntity(t, ents, []int64{1, 2, delUser, 4, 100, 101}, time.Date(2024, 3, 20, 10, 0, 0, 1000, time.UTC))
	defer ents.Release()
	entFile, entSQL := l.entityInputs(t, ents, dir)
	want := rtOracle(t, current, ents, 48*time.Hour)

	svc := "prof_only"
	b, err := os.ReadFile(filepath.Join(dir, "features", "defs.yaml"))
	require.NoError(t, err)
	writeFile(t, filepath.Join(dir, "features", "defs.yaml"), string(b)+"  - name: "+svc+"\n    features: [prof:*]\n")
	r = quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	check := func(what string) {
		t.Helper()
		local := rtDataset(t, rtCreateDataset(t, env, dir, "local_"+what, "--service", svc, "--entities", entFile))
		require.Equal(t, want, local[1:], "dataset create, %s", what)
		pushed := rtDataset(t, rtCreateDataset(t, env, dir, "pushed_"+what, "--service", svc, "--engine", "trino",
			"--entities-sql", entSQL))
		require.Equal(t, want, pushed[1:], "dataset create --engine trino, %s", what)

		// materialize --online-only into an empty online store: the latest row per user.
		fresh := map[string]string{}
		for k, v := range env {
			fresh[k] = v
		}
		fresh["QUIVER_ONLINE"] = "sqlite://" + filepath.Join(t.TempDir(), "online.db")
		r := quiver(t, fresh, "-C", dir, "materialize", "--online-only", "prof")
		require.Equal(t, exitOK, r.code, r.stderr)
		online := getOnlineJSON(t, fresh, dir, "prof", []string{"i64", "s"}, 102)
		require.Equal(t, rtLatestOnline(current, 102), rtOnlineCells(t, online), "online after --online-only, %s", what)
	}
	check("after_trino")
	stats := rtFiles(t, l.wh, ".stats")
	require.Len(t, stats, 1, "ANALYZE wrote a statistics file")
	// gc after Trino's commits keeps every file the table needs: delete files, and the
	// statistics file, which only the table metadata names.
	time.Sleep(10 * time.Millisecond)
	r = quiver(t, env, "-C", dir, "gc", "--older-than", "1ms")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, current, l.trinoRows(t, "SELECT user_id, event_ts, created_ts, "+strings.Join(rtQuoted(rtFeatures), ", ")+" FROM "+tbl))
	require.Equal(t, stats, rtFiles(t, l.wh, ".stats"), "gc keeps the statistics file the table metadata names")
	require.NotEmpty(t, l.trinoRows(t, "SHOW STATS FOR "+tbl))
	check("after_gc")

	// A later run over the morning of a day rewrites the day's files: the deleted user's rows of
	// that afternoon stay deleted, its morning rows are the source's again.
	noon := day.Add(12 * time.Hour)
	r = quiver(t, env, "-C", dir, "materialize", "--start", day.Format(time.RFC3339), "--end", noon.Format(time.RFC3339), "prof")
	require.Equal(t, exitOK, r.code, r.stderr)
	after := l.trinoRows(t, "SELECT user_id, event_ts, created_ts, "+strings.Join(rtQuoted(rtFeatures), ", ")+" FROM "+tbl)
	require.Equal(t, after, rtProject(l.scan(t, "mart", "prof", 1), 3+len(rtFeatures)))
	var user3, want3 []string
	for _, line := range after {
		if c := strings.Split(line, "|"); c[0] == strconv.FormatInt(delUser, 10) {
			user3 = append(user3, c[1])
		}
	}
	for i := range int(rows.NumRows()) {
		ts := rows.Column(1).(*array.Timestamp).Value(i).ToTime(arrow.Microsecond).UTC()
		if rows.Column(0).(*array.Int64).Value(i) == delUser && !ts.Before(day) && ts.Before(noon) {
			want3 = append(want3, ts.Format("2006-01-02T15:04:05.000000Z"))
		}
	}
	sort.Strings(want3)
	require.NotEmpty(t, want3)
	require.Equal(t, want3, user3, "user %d's rows: only the re-materialized morning's", delUser)
}

// rtProject keeps the first n cells of each rendered row.
func rtProject(rows []string, n int) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = strings.Join(strings.SplitN(r, "|", n+1)[:n], "|")
	}
	sort.Strings(out)
	return out
}

// rtFiles lists the files under dir whose names end in suffix.
func rtFiles(t *testing.T, dir, suffix string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, suffix) {
			out = append(out, p)
		}
		return err
	}))
	return out
}

func rtQuoted(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strconv.Quote(n)
	}
	return out
}

// rtWithEntity appends an entity row at ts for each user.
func rtWithEntity(t *testing.T, ents arrow.RecordBatch, users []int64, ts time.Time) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, ents.Schema())
	defer b.Release()
	for i := range int(ents.NumRows()) {
		b.Field(0).(*array.Int64Builder).Append(ents.Column(0).(*array.Int64).Value(i))
		b.Field(1).(*array.TimestampBuilder).Append(ents.Column(1).(*array.Timestamp).Value(i))
		b.Field(2).(*array.Int64Builder).Append(ents.Column(2).(*array.Int64).Value(i))
	}
	for j, u := range users {
		b.Field(0).(*array.Int64Builder).Append(u)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro()))
		b.Field(2).(*array.Int64Builder).Append(int64(10000 + j))
	}
	return b.NewRecordBatch()
}

// rtOracle joins the entity rows to the table's rows (user_id|event_ts|created_ts|features...,
// as rendered) by brute force, and renders the dataset rows the engines must produce:
// user_id|event_timestamp|label|features..., sorted.
func rtOracle(t *testing.T, table []string, ents arrow.RecordBatch, ttl time.Duration) []string {
	t.Helper()
	type row struct {
		ts, cr string
		feats  []string
	}
	byUser := map[string][]row{}
	for _, line := range table {
		c := strings.Split(line, "|")
		byUser[c[0]] = append(byUser[c[0]], row{ts: c[1], cr: c[2], feats: c[3:]})
	}
	var out []string
	for i := range int(ents.NumRows()) {
		user := strconv.FormatInt(ents.Column(0).(*array.Int64).Value(i), 10)
		tcol := ents.Column(1).(*array.Timestamp)
		at := tcol.Value(i).ToTime(arrow.Microsecond).UTC()
		T := at.Format("2006-01-02T15:04:05.000000Z")
		from := at.Add(-ttl).Format("2006-01-02T15:04:05.000000Z")
		var best *row
		for j := range byUser[user] {
			rw := &byUser[user][j]
			if rw.ts > T || rw.ts < from {
				continue
			}
			if best == nil || rw.ts > best.ts || (rw.ts == best.ts && rtLaterCreated(rw.cr, best.cr)) {
				best = rw
			}
		}
		cells := []string{user, T, strconv.FormatInt(ents.Column(2).(*array.Int64).Value(i), 10)}
		if best == nil {
			for range rtFeatures {
				cells = append(cells, "NULL")
			}
		} else {
			cells = append(cells, best.feats...)
		}
		out = append(out, strings.Join(cells, "|"))
	}
	sort.Strings(out)
	return out
}

// rtLaterCreated: a created time later than another, a null lowest.
func rtLaterCreated(a, b string) bool {
	if a == "NULL" {
		return false
	}
	return b == "NULL" || a > b
}

// rtLatestOnline is the (i64, s) values of each user's latest row (event_ts, then created_ts)
// in the rendered table rows, "NOT_FOUND" for users without rows.
func rtLatestOnline(table []string, users int) map[int][2]string {
	out := map[int][2]string{}
	best := map[int][2]string{} // ts, created of the latest so far
	for _, line := range table {
		c := strings.Split(line, "|")
		u, _ := strconv.Atoi(c[0])
		b, ok := best[u]
		if ok && (c[1] < b[0] || (c[1] == b[0] && !rtLaterCreated(c[2], b[1]))) {
			continue
		}
		best[u] = [2]string{c[1], c[2]}
		out[u] = [2]string{c[4], c[8]} // i64, s
	}
	for u := range users {
		if _, ok := out[u]; !ok {
			out[u] = [2]string{"NOT_FOUND", "NOT_FOUND"}
		}
	}
	return out
}

// rtOnlineCells reads get-online's JSON for features (i64, s) into the same shape.
func rtOnlineCells(t *testing.T, resp map[string]any) map[int][2]string {
	t.Helper()
	b, err := json.Marshal(resp)
	require.NoError(t, err)
	var out struct {
		Features []struct {
			Values   map[string]map[string][]any `json:"values"`
			Statuses []string                    `json:"statuses"`
			Nulls    []bool                      `json:"nulls"`
		} `json:"features"`
	}
	require.NoError(t, json.Unmarshal(b, &out))
	require.Len(t, out.Features, 2)
	cells := map[int][2]string{}
	for f := range 2 {
		var vals []any
		for _, v := range out.Features[f].Values {
			vals = v["val"]
		}
		for u, status := range out.Features[f].Statuses {
			c := cells[u]
			switch {
			case status == "NOT_FOUND":
				c[f] = "NOT_FOUND"
			case len(out.Features[f].Nulls) > 0 && out.Features[f].Nulls[u]:
				c[f] = "NULL"
			default:
				c[f] = fmt.Sprint(vals[u])
			}
			cells[u] = c
		}
	}
	return cells
}
