package trino

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline/pitjoin"
)

func TestBuildJoinSQLGolden(t *testing.T) {
	cases := map[string]JoinSpec{
		"join_two_views.sql": {
			Entities:      `SELECT user_id, merchant_id, event_timestamp, label FROM hive.ml.churn_labels`,
			EntityColumns: []string{"user_id", "merchant_id", "event_timestamp", "label"},
			Views: []JoinView{
				{Name: "user_stats", Table: "quiver.user_stats", SnapshotID: 6860063553876728467, JoinKeys: []string{"user_id"}, TTL: 7 * 24 * time.Hour, Features: []string{"clicks_7d", "spend_30d"}},
				{Name: "user_merchant", Table: "iceberg.quiver.user_merchant", JoinKeys: []string{"user_id", "merchant_id"}, Features: []string{"visits"}},
			},
		},
		"join_cutoff_full_names.sql": {
			Entities:      "SELECT * FROM labels;",
			EntityColumns: []string{"user_id", "event_timestamp"},
			Views:         []JoinView{{Name: "user_stats", Table: "quiver.user_stats", JoinKeys: []string{"user_id"}, TTL: 12 * time.Hour, Features: []string{"clicks_7d"}}},
			CreatedCutoff: true, FullFeatureNames: true,
		},
	}
	for name, spec := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := BuildJoinSQL(spec)
			require.NoError(t, err)
			path := filepath.Join("testdata", name)
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(got+"\n"), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, strings.TrimSuffix(string(want), "\n"), got)
		})
	}
	_, err := BuildJoinSQL(JoinSpec{Entities: "SELECT 1", EntityColumns: []string{"user_id"}, Views: cases["join_cutoff_full_names.sql"].Views})
	require.ErrorContains(t, err, `entity query has no "event_timestamp" column`)
	spec := cases["join_cutoff_full_names.sql"]
	spec.EntityColumns = []string{"uid", "event_timestamp"}
	_, err = BuildJoinSQL(spec)
	require.ErrorContains(t, err, `no join key "user_id" of view "user_stats"`)
}

// joinCase is one random point-in-time join: entity rows and two views' feature rows, one view
// keyed by (user_id), one by (user_id, shop).
type joinCase struct {
	ents  []entRow
	views [2][]featRow
	ttl   [2]time.Duration
	cut   bool
}

type entRow struct {
	user  int64
	shop  string
	ts    int64 // µs
	label int64
}

type featRow struct {
	user    int64
	shop    string
	ts      int64
	created *int64
	fInt    *int64
	fStr    *string
}

var base = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

func genJoinCase(seed uint64) joinCase {
	r := rand.New(rand.NewPCG(seed, 3))
	users, shops := 1+r.IntN(5), []string{"a", "b", "c"}[:1+r.IntN(3)]
	at := func() int64 { return base + int64(r.IntN(20))*3_600_000_000 } // hour granularity: many ties
	var c joinCase
	c.ttl = [2]time.Duration{time.Duration(r.IntN(3)) * 5 * time.Hour, 0}
	c.cut = r.IntN(3) == 0
	for i, n := 0, 1+r.IntN(15); i < n; i++ {
		c.ents = append(c.ents, entRow{user: int64(1 + r.IntN(users+1)), shop: shops[r.IntN(len(shops))], ts: at(), label: int64(r.IntN(2))})
	}
	for v := range c.views {
		seen := map[string]int{}
		for i, n := 0, r.IntN(25); i < n; i++ {
			f := featRow{user: int64(1 + r.IntN(users)), ts: at()}
			if v == 1 {
				f.shop = shops[r.IntN(len(shops))]
			}
			if r.IntN(4) > 0 {
				cr := f.ts + int64(r.IntN(3))*3_600_000_000
				f.created = &cr
			}
			if r.IntN(5) > 0 {
				x := int64(r.IntN(1000))
				f.fInt = &x
			}
			if r.IntN(5) > 0 {
				s := fmt.Sprint("s", r.IntN(100))
				f.fStr = &s
			}
			// The offline store holds one row per (keys, event_ts, created_ts): keep the last.
			key := fmt.Sprint(f.user, f.shop, f.ts, ptrStr(f.created))
			if j, ok := seen[key]; ok {
				c.views[v][j] = f
				continue
			}
			seen[key] = len(c.views[v])
			c.views[v] = append(c.views[v], f)
		}
	}
	return c
}

func ptrStr[T any](p *T) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprint(*p)
}

var tsType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

func (c joinCase) entityReader() array.RecordReader {
	schema := arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "shop", Type: arrow.BinaryTypes.String},
		{Name: "event_timestamp", Type: tsType}, {Name: "label", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, e := range c.ents {
		b.Field(0).(*array.Int64Builder).Append(e.user)
		b.Field(1).(*array.StringBuilder).Append(e.shop)
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(e.ts))
		b.Field(3).(*array.Int64Builder).Append(e.label)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	rr, _ := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
	return rr
}

func (c joinCase) viewReader(v int) array.RecordReader {
	fields := []arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}}
	if v == 1 {
		fields = append(fields, arrow.Field{Name: "shop", Type: arrow.BinaryTypes.String})
	}
	fields = append(fields, arrow.Field{Name: "event_ts", Type: tsType}, arrow.Field{Name: "created_ts", Type: tsType, Nullable: true},
		arrow.Field{Name: fmt.Sprintf("v%d_int", v), Type: arrow.PrimitiveTypes.Int64, Nullable: true}, arrow.Field{Name: fmt.Sprintf("v%d_str", v), Type: arrow.BinaryTypes.String, Nullable: true})
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, f := range c.views[v] {
		i := 0
		b.Field(i).(*array.Int64Builder).Append(f.user)
		if v == 1 {
			i++
			b.Field(i).(*array.StringBuilder).Append(f.shop)
		}
		b.Field(i + 1).(*array.TimestampBuilder).Append(arrow.Timestamp(f.ts))
		if f.created == nil {
			b.Field(i + 2).AppendNull()
		} else {
			b.Field(i + 2).(*array.TimestampBuilder).Append(arrow.Timestamp(*f.created))
		}
		if f.fInt == nil {
			b.Field(i + 3).AppendNull()
		} else {
			b.Field(i + 3).(*array.Int64Builder).Append(*f.fInt)
		}
		if f.fStr == nil {
			b.Field(i + 4).AppendNull()
		} else {
			b.Field(i + 4).(*array.StringBuilder).Append(*f.fStr)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	rr, _ := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
	return rr
}

func (c joinCase) joinViews() []JoinView {
	return []JoinView{
		{Name: "v0", Table: "quiver.v0", JoinKeys: []string{"user_id"}, TTL: c.ttl[0], Features: []string{"v0_int", "v0_str"}},
		{Name: "v1", Table: "quiver.v1", JoinKeys: []string{"user_id", "shop"}, TTL: c.ttl[1], Features: []string{"v1_int", "v1_str"}},
	}
}

// rowStrings renders result rows as text, one string per row, for comparison.
func rowStrings(t *testing.T, schema *arrow.Schema, next func() (arrow.RecordBatch, bool)) []string {
	var out []string
	for {
		rec, ok := next()
		if !ok {
			return out
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			var cells []string
			for c := 0; c < int(rec.NumCols()); c++ {
				col := rec.Column(c)
				switch {
				case col.IsNull(r):
					cells = append(cells, "NULL")
				case col.DataType().ID() == arrow.TIMESTAMP:
					a := col.(*array.Timestamp)
					cells = append(cells, a.Value(r).ToTime(a.DataType().(*arrow.TimestampType).Unit).UTC().Format(time.RFC3339Nano))
				default:
					cells = append(cells, col.ValueStr(r))
				}
			}
			out = append(out, strings.Join(cells, "|"))
		}
	}
}

func loadCase(t *testing.T, ctx context.Context, conn *pgx.Conn, c joinCase) {
	t.Helper()
	_, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS quiver CASCADE; CREATE SCHEMA quiver;
		DROP TABLE IF EXISTS ents; CREATE TABLE ents (user_id bigint, shop text, event_timestamp timestamptz, label bigint);
		CREATE TABLE quiver.v0 (user_id bigint, event_ts timestamptz, created_ts timestamptz, v0_int bigint, v0_str text);
		CREATE TABLE quiver.v1 (user_id bigint, shop text, event_ts timestamptz, created_ts timestamptz, v1_int bigint, v1_str text);`)
	require.NoError(t, err)
	tm := func(us int64) time.Time { return time.UnixMicro(us).UTC() }
	tmp := func(us *int64) any {
		if us == nil {
			return nil
		}
		return tm(*us)
	}
	for _, e := range c.ents {
		_, err := conn.Exec(ctx, `INSERT INTO ents VALUES ($1, $2, $3, $4)`, e.user, e.shop, tm(e.ts), e.label)
		require.NoError(t, err)
	}
	for _, f := range c.views[0] {
		_, err := conn.Exec(ctx, `INSERT INTO quiver.v0 VALUES ($1, $2, $3, $4, $5)`, f.user, tm(f.ts), tmp(f.created), f.fInt, f.fStr)
		require.NoError(t, err)
	}
	for _, f := range c.views[1] {
		_, err := conn.Exec(ctx, `INSERT INTO quiver.v1 VALUES ($1, $2, $3, $4, $5, $6)`, f.user, f.shop, tm(f.ts), tmp(f.created), f.fInt, f.fStr)
		require.NoError(t, err)
	}
}

// TestPushdownJoinMatchesInProcessEngine runs random cases through the real trino-go-client
// against the Trino-protocol test server (executing on PostgreSQL) and through the in-process
// engine, and requires the same rows.
func TestPushdownJoinMatchesInProcessEngine(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	db := pg.NewDatabase(t)
	srv := testenv.StartTrino(t, db)
	client, err := Open(srv.DSN("quiver", "iceberg", "public"))
	require.NoError(t, err)
	defer client.Close()
	conn, err := pgx.Connect(ctx, db)
	require.NoError(t, err)
	defer conn.Close(ctx)

	cases := 60
	if testing.Short() {
		cases = 10
	}
	for seed := uint64(1); seed <= uint64(cases); seed++ {
		c := genJoinCase(seed)
		loadCase(t, ctx, conn, c)
		entityQuery := `SELECT user_id, shop, event_timestamp, label FROM ents`
		cols, err := client.Columns(ctx, entityQuery)
		require.NoError(t, err)
		q, err := BuildJoinSQL(JoinSpec{Entities: entityQuery, EntityColumns: cols, Views: c.joinViews(), CreatedCutoff: c.cut})
		require.NoError(t, err)
		stream, err := client.Query(ctx, q, 0, nil)
		require.NoError(t, err, q)
		got := rowStrings(t, stream.Schema(), func() (arrow.RecordBatch, bool) {
			rec, err := stream.Next(ctx)
			if errors.Is(err, io.EOF) {
				return nil, false
			}
			require.NoError(t, err)
			return rec, true
		})
		stream.Close()

		views := make([]pitjoin.View, 2)
		for i, jv := range c.joinViews() {
			i := i
			views[i] = pitjoin.View{Name: jv.Name, JoinKeys: jv.JoinKeys, TTL: jv.TTL, Features: jv.Features,
				Open: func(context.Context, pitjoin.EventRange) (array.RecordReader, error) { return c.viewReader(i), nil }}
		}
		res, err := pitjoin.Join(ctx, c.entityReader(), views, pitjoin.Options{CreatedCutoff: c.cut, TempDir: t.TempDir()})
		require.NoError(t, err)
		want := rowStrings(t, res.Schema(), func() (arrow.RecordBatch, bool) {
			if !res.Next() {
				require.NoError(t, res.Err())
				return nil, false
			}
			return res.RecordBatch(), true
		})
		res.Release()
		// SQL entity rows have no order of their own; the pushdown orders them by all entity
		// columns, the in-process engine keeps the input's order: compare sorted.
		sort.Strings(want)
		sort.Strings(got)
		require.Equal(t, want, got, "seed %d (ttl %v, cutoff %v)\n%s", seed, c.ttl, c.cut, q)
	}
	require.NotEmpty(t, srv.Statements())
}
