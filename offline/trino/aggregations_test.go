package trino

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline/pitjoin"
)

var aggJoinView = JoinView{Name: "txn_aggs", Table: "quiver.txn_aggs", SnapshotID: 42, JoinKeys: []string{"user_id"}, Aggregations: []JoinAggregation{
	{Name: "amount_sum_1h", Column: "amount", Function: "sum", Window: time.Hour, Float: true},
	{Name: "amount_count_1d", Column: "amount", Function: "count", Window: 24 * time.Hour, Float: true},
	{Name: "amount_mean_1d", Column: "amount", Function: "mean", Window: 24 * time.Hour, Float: true},
	{Name: "amount_min_7d", Column: "amount", Function: "min", Window: 7 * 24 * time.Hour, Float: true},
	{Name: "amount_max_7d", Column: "amount", Function: "max", Window: 7 * 24 * time.Hour, Float: true},
	{Name: "amount_last_1d", Column: "amount", Function: "last", Window: 24 * time.Hour, Float: true},
	{Name: "qty_sum_7d", Column: "qty", Function: "sum", Window: 7 * 24 * time.Hour},
	{Name: "merchant_count_distinct_1d", Column: "merchant", Function: "count_distinct", Window: 24 * time.Hour},
}}

// TestBuildAggregationSQLGolden: the pushed-down aggregation SQL, as text (no Trino server runs
// here; TestPushdownAggregationsMatchInProcessEngine runs it through the Trino protocol on
// PostgreSQL).
func TestBuildAggregationSQLGolden(t *testing.T) {
	spec := JoinSpec{Entities: "SELECT user_id, event_timestamp, label FROM labels", EntityColumns: []string{"user_id", "event_timestamp", "label"},
		Views: []JoinView{aggJoinView}, CreatedCutoff: true}
	got, err := BuildJoinSQL(spec)
	require.NoError(t, err)
	path := filepath.Join("testdata", "join_aggregations.sql")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got+"\n"), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, strings.TrimSuffix(string(want), "\n"), got)

	bad := aggJoinView
	bad.Aggregations = []JoinAggregation{{Name: "x", Column: "amount", Function: "median", Window: time.Hour}}
	_, err = BuildJoinSQL(JoinSpec{Entities: spec.Entities, EntityColumns: spec.EntityColumns, Views: []JoinView{bad}})
	require.ErrorContains(t, err, `unknown function "median"`)
}

// TestPushdownAggregationsMatchInProcessEngine runs random events (nulls, late rows, boundary
// timestamps) through the pushed-down SQL on the Trino-protocol test server (executing on
// PostgreSQL) and through the in-process engine: the same values for every entity row and
// aggregation, float sums and means to 1e-9 relative.
func TestPushdownAggregationsMatchInProcessEngine(t *testing.T) {
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
	_, err = conn.Exec(ctx, `CREATE SCHEMA quiver;
		CREATE TABLE ents (user_id bigint, event_timestamp timestamptz, label bigint);
		CREATE TABLE quiver.txn_aggs (user_id bigint, event_ts timestamptz, created_ts timestamptz, amount double precision, qty bigint, merchant text);`)
	require.NoError(t, err)

	r := rand.New(rand.NewPCG(5, 15))
	base := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	span := int64(10 * 86400e6)
	type ev struct {
		user, ts int64
		cr       *int64
		amount   *float64
		qty      *int64
		merchant *string
	}
	var evs []ev
	seen := map[[3]int64]bool{}
	for len(evs) < 1500 {
		e := ev{user: int64(r.IntN(15)), ts: base + r.Int64N(span)}
		if r.IntN(3) == 0 {
			e.ts -= e.ts % 3600e6
		}
		if r.IntN(5) > 0 {
			c := e.ts + r.Int64N(2*86400e6)*int64(r.IntN(2))
			e.cr = &c
		}
		k := [3]int64{e.user, e.ts, math.MinInt64}
		if e.cr != nil {
			k[2] = *e.cr
		}
		if seen[k] { // the offline table holds (keys, event_ts, created_ts) once
			continue
		}
		seen[k] = true
		if r.IntN(6) > 0 {
			a := math.Round(r.NormFloat64()*1e4) / 100
			e.amount = &a
		}
		if r.IntN(6) > 0 {
			q := int64(r.IntN(500) - 50)
			e.qty = &q
		}
		if r.IntN(6) > 0 {
			m := fmt.Sprintf("m%d", r.IntN(9))
			e.merchant = &m
		}
		evs = append(evs, e)
	}
	tm := func(us int64) time.Time { return time.UnixMicro(us).UTC() }
	evSchema := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "event_ts", Type: tsType}, {Name: "created_ts", Type: tsType, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true}, {Name: "qty", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "merchant", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	eb := array.NewRecordBuilder(memory.DefaultAllocator, evSchema)
	defer eb.Release()
	for _, e := range evs {
		var cr any
		if e.cr != nil {
			cr = tm(*e.cr)
			eb.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(*e.cr))
		} else {
			eb.Field(2).AppendNull()
		}
		_, err := conn.Exec(ctx, `INSERT INTO quiver.txn_aggs VALUES ($1, $2, $3, $4, $5, $6)`, e.user, tm(e.ts), cr, e.amount, e.qty, e.merchant)
		require.NoError(t, err)
		eb.Field(0).(*array.Int64Builder).Append(e.user)
		eb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(e.ts))
		if e.amount != nil {
			eb.Field(3).(*array.Float64Builder).Append(*e.amount)
		} else {
			eb.Field(3).AppendNull()
		}
		if e.qty != nil {
			eb.Field(4).(*array.Int64Builder).Append(*e.qty)
		} else {
			eb.Field(4).AppendNull()
		}
		if e.merchant != nil {
			eb.Field(5).(*array.StringBuilder).Append(*e.merchant)
		} else {
			eb.Field(5).AppendNull()
		}
	}
	events := eb.NewRecordBatch()
	defer events.Release()
	entSchema := arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "event_timestamp", Type: tsType}, {Name: "label", Type: arrow.PrimitiveTypes.Int64}}, nil)
	nb := array.NewRecordBuilder(memory.DefaultAllocator, entSchema)
	defer nb.Release()
	for i := range 400 {
		u := int64(r.IntN(18))
		ts := base + r.Int64N(span+2*86400e6)
		if i%4 == 0 {
			ts = evs[r.IntN(len(evs))].ts + []int64{0, 3600e6, 86400e6, 7 * 86400e6}[r.IntN(4)]
		}
		_, err := conn.Exec(ctx, `INSERT INTO ents VALUES ($1, $2, $3)`, u, tm(ts), int64(i))
		require.NoError(t, err)
		nb.Field(0).(*array.Int64Builder).Append(u)
		nb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
		nb.Field(2).(*array.Int64Builder).Append(int64(i))
	}
	ents := nb.NewRecordBatch()
	defer ents.Release()

	for _, cutoff := range []bool{false, true} {
		entityQuery := `SELECT user_id, event_timestamp, label FROM ents`
		cols, err := client.Columns(ctx, entityQuery)
		require.NoError(t, err)
		q, err := BuildJoinSQL(JoinSpec{Entities: entityQuery, EntityColumns: cols, Views: []JoinView{aggJoinView}, CreatedCutoff: cutoff})
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

		var aggs []pitjoin.Aggregation
		for _, a := range aggJoinView.Aggregations {
			aggs = append(aggs, pitjoin.Aggregation{Name: a.Name, Column: a.Column, Function: a.Function, Window: a.Window})
		}
		entR, _ := array.NewRecordReader(entSchema, []arrow.RecordBatch{ents})
		view := pitjoin.View{Name: "txn_aggs", JoinKeys: []string{"user_id"}, Aggregations: aggs,
			Open: func(context.Context, pitjoin.EventRange) (array.RecordReader, error) {
				return array.NewRecordReader(evSchema, []arrow.RecordBatch{events})
			}}
		res, err := pitjoin.Join(ctx, entR, []pitjoin.View{view}, pitjoin.Options{CreatedCutoff: cutoff, TempDir: t.TempDir()})
		require.NoError(t, err)
		want := rowStrings(t, res.Schema(), func() (arrow.RecordBatch, bool) {
			if !res.Next() {
				require.NoError(t, res.Err())
				return nil, false
			}
			return res.RecordBatch(), true
		})
		res.Release()
		entR.Release()
		sort.Strings(want)
		sort.Strings(got)
		require.Len(t, got, len(want))
		for i := range want {
			requireAggRowsEqual(t, want[i], got[i], cutoff)
		}
	}
}

// requireAggRowsEqual compares rendered rows cell by cell; cells that parse as floats with a
// fraction compare to 1e-9 relative (float sums and means depend on summation order).
func requireAggRowsEqual(t *testing.T, want, got string, cutoff bool) {
	t.Helper()
	w, g := strings.Split(want, "|"), strings.Split(got, "|")
	require.Len(t, g, len(w))
	for i := range w {
		if w[i] == g[i] {
			continue
		}
		wf, err1 := strconv.ParseFloat(w[i], 64)
		gf, err2 := strconv.ParseFloat(g[i], 64)
		if err1 == nil && err2 == nil && math.Abs(wf-gf) <= 1e-9*math.Max(1, math.Abs(wf)) {
			continue
		}
		t.Fatalf("cutoff %v: column %d differs\n engine %s\n    sql %s", cutoff, i, want, got)
	}
}
