package trino

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

var (
	update = flag.Bool("update", false, "rewrite the golden files in testdata")
	pg     *testenv.Postgres
	// mainTB owns the servers the package's tests share (PostgreSQL, and the real Trino once a
	// test asks for it).
	mainTB *testenv.MainTB
)

func TestMain(m *testing.M) {
	flag.Parse()
	mainTB = testenv.NewMainTB("offline/trino")
	pg = testenv.StartPostgres(mainTB)
	code := m.Run()
	mainTB.Close()
	// trino-go-client talks to Trino through http.DefaultClient, whose idle keep-alive
	// connections to the real (shared, still running) server outlive the tests' clients.
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		// The waiter of a shared server this binary started for the whole test run
		// (QUIVER_TESTENV_DIR) outlives the tests by design, until bin/testenv stops it.
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/quiverfs/quiver/internal/testenv.startProcess.func1")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const createEvents = `CREATE TABLE events (
	user_id bigint, ts timestamptz, created timestamptz, clicks integer, spend double precision,
	name text, tags text[], active boolean, payload bytea, last_seen timestamptz)`

// loadEvents creates a database holding data (a sourcetest batch) in table "events" and
// returns a Trino test server over it.
func loadEvents(t *testing.T, data arrow.RecordBatch) (*testenv.Trino, *Client) {
	t.Helper()
	ctx := context.Background()
	dbURL := pg.NewDatabase(t)
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, createEvents)
	require.NoError(t, err)
	var rows [][]any
	for i := range int(data.NumRows()) {
		row := make([]any, data.NumCols())
		for c, col := range data.Columns() {
			row[c] = goValue(col, i)
		}
		rows = append(rows, row)
	}
	var names []string
	for _, f := range data.Schema().Fields() {
		names = append(names, f.Name)
	}
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"events"}, names, pgx.CopyFromRows(rows))
	require.NoError(t, err)
	tr := testenv.StartTrino(t, dbURL)
	client, err := Open(tr.DSN("quiver", "", ""))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	return tr, client
}

func goValue(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.Int64:
		return a.Value(i)
	case *array.Int32:
		return a.Value(i)
	case *array.Float64:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.Boolean:
		return a.Value(i)
	case *array.Binary:
		return a.Value(i)
	case *array.Timestamp:
		return time.UnixMicro(int64(a.Value(i))).UTC()
	case *array.List:
		start, end := a.ValueOffsets(i)
		out := []any{}
		for j := start; j < end; j++ {
			out = append(out, goValue(a.ListValues(), int(j)))
		}
		return out
	}
	panic(fmt.Sprintf("goValue: unsupported %T", a))
}

func newSource(t testing.TB, client *Client, def definitions.TrinoSource, f offline.Fields) *Source {
	t.Helper()
	s, err := New(&definitions.Source{Name: "events", Trino: &def, TimestampField: f.Timestamp, CreatedTimestampField: f.Created}, client, Options{BatchSize: 5})
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T, data arrow.RecordBatch, f offline.Fields) offline.Source {
		_, client := loadEvents(t, data)
		return newSource(t, client, definitions.TrinoSource{Query: "SELECT * FROM events"}, f)
	})
}

func TestTableAndParameters(t *testing.T) {
	ctx := context.Background()
	rows := sourcetest.Rows()
	data := sourcetest.SourceBatch(memory.DefaultAllocator, rows)
	defer data.Release()
	tr, client := loadEvents(t, data)
	s := newSource(t, client, definitions.TrinoSource{Table: "public.events"}, sourcetest.Fields())
	r := offline.Range{Start: sourcetest.Base.Add(24 * time.Hour), End: sourcetest.Base.Add(48 * time.Hour)}
	st, err := s.Read(ctx, sourcetest.View(), r)
	require.NoError(t, err)
	tbl, err := offline.ReadAll(ctx, st)
	require.NoError(t, err)
	defer tbl.Release()
	require.Equal(t, sourcetest.Expected(rows, r, true), sourcetest.RowStrings(t, tbl))

	// The bounds travelled as typed parameters, not inside the SQL text.
	stmts := tr.Statements()
	require.NotEmpty(t, stmts)
	last := stmts[len(stmts)-1]
	require.True(t, strings.HasPrefix(last, "EXECUTE "), last)
	require.Contains(t, last, "USING TIMESTAMP '2024-03-02 00:00:00 Z', TIMESTAMP '2024-03-03 00:00:00 Z'")

	// An engine error is reported with the source's name.
	bad := newSource(t, client, definitions.TrinoSource{Table: "public.missing"}, sourcetest.Fields())
	_, err = bad.Read(ctx, sourcetest.View(), r)
	require.ErrorContains(t, err, `trino source "events"`)
	require.ErrorContains(t, err, "missing")
}

func TestGoldenSQL(t *testing.T) {
	vs := sourcetest.View()
	weird := offline.ViewSchema{
		View:     "w",
		JoinKeys: []offline.Column{{Name: `we"ird key`, Type: definitions.MustType("string")}, {Name: "Shop", Type: definitions.MustType("int64")}},
		Features: []offline.Column{{Name: "select", Type: definitions.MustType("float64")}},
	}
	cases := []struct {
		name   string
		def    definitions.TrinoSource
		fields offline.Fields
		vs     offline.ViewSchema
	}{
		{"query", definitions.TrinoSource{Query: "SELECT user_id, ts, created, clicks, spend, name, tags, active, payload, last_seen\nFROM hive.web.activity;\n"}, sourcetest.Fields(), vs},
		{"table", definitions.TrinoSource{Table: "iceberg.features.user_activity"}, offline.Fields{Timestamp: "ts"}, vs},
		{"quoted_identifiers", definitions.TrinoSource{Table: `cat.sch."odd"`}, offline.Fields{Timestamp: "event time", Created: "Shop"}, weird},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			read, err := BuildSQL(tc.def, tc.fields, tc.vs)
			require.NoError(t, err)
			probe, err := BuildProbeSQL(tc.def)
			require.NoError(t, err)
			got := "-- columns probe\n" + probe + "\n\n-- read, parameters: start (inclusive), end (exclusive)\n" + read
			path := filepath.Join("testdata", tc.name+".sql")
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(got+"\n"), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -update to create it")
			require.Equal(t, string(want), got+"\n")
		})
	}
	for _, def := range []definitions.TrinoSource{{}, {Query: " ; "}, {Table: "a..b"}, {Query: "x", Table: "y"}} {
		_, err := BuildSQL(def, sourcetest.Fields(), vs)
		require.ErrorIs(t, err, offline.ErrInvalidSource)
	}
}

func TestArrowType(t *testing.T) {
	cases := map[string]string{
		"bigint": "int64", "integer": "int32", "smallint": "int16", "tinyint": "int8", "real": "float32",
		"double": "float64", "boolean": "bool", "varchar": "utf8", "varchar(10)": "utf8", "char(3)": "utf8",
		"varbinary": "binary", "timestamp(6)": "timestamp[us, tz=UTC]", "timestamp(3) with time zone": "timestamp[us, tz=UTC]",
		"TIMESTAMP WITH TIME ZONE": "timestamp[us, tz=UTC]", "VARCHAR": "utf8",
		"array(bigint)": "list<item: int64, nullable>", "array(array(varchar))": "list<item: list<item: utf8, nullable>, nullable>",
	}
	for in, want := range cases {
		dt, err := arrowType(in)
		require.NoError(t, err, in)
		require.Equal(t, want, dt.String(), in)
	}
	for _, in := range []string{"map(varchar, bigint)", "decimal(10,2)", "array(bigint", "row(a bigint)"} {
		_, err := arrowType(in)
		require.Error(t, err, in)
	}
}

// TestQueryWithQuotes runs a query holding quotes and a question mark in a literal: only the
// two time-bound placeholders are parameters.
func TestQueryWithQuotes(t *testing.T) {
	ctx := context.Background()
	rows := sourcetest.Rows()
	data := sourcetest.SourceBatch(memory.DefaultAllocator, rows)
	defer data.Release()
	_, client := loadEvents(t, data)
	s := newSource(t, client, definitions.TrinoSource{Query: `SELECT * FROM "events" WHERE coalesce(name, '') <> 'it''s a "what?"';`}, sourcetest.Fields())
	r := offline.Range{Start: sourcetest.Base, End: sourcetest.Base.Add(10 * 24 * time.Hour)}
	st, err := s.Read(ctx, sourcetest.View(), r)
	require.NoError(t, err)
	tbl, err := offline.ReadAll(ctx, st)
	require.NoError(t, err)
	defer tbl.Release()
	require.Equal(t, sourcetest.Expected(rows, r, true), sourcetest.RowStrings(t, tbl))
}
