package pitjoin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"
)

// DuckDBScript is the reference engine's runner; `npm ci` in its directory installs DuckDB
// (make test and .ci/run do).
func duckDBScript(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../scripts/duckdb")
	require.NoError(t, err)
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: the aggregation reference test runs DuckDB through node (scripts/duckdb)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err != nil {
		t.Fatalf("DuckDB is not installed for the reference test: run `npm ci --prefix scripts/duckdb` (make test does): %v", err)
	}
	return filepath.Join(dir, "query.mjs")
}

// runDuckDB runs a SQL script and returns the last statement's rows.
func runDuckDB(t *testing.T, script, sql string) [][]any {
	t.Helper()
	f := filepath.Join(t.TempDir(), "q.sql")
	require.NoError(t, os.WriteFile(f, []byte(sql), 0o644))
	cmd := exec.Command("node", script, f)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "duckdb: %s\n%s", stderr.String(), sql)
	var rows [][]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var row []any
		d := json.NewDecoder(strings.NewReader(sc.Text()))
		d.UseNumber()
		require.NoError(t, d.Decode(&row))
		rows = append(rows, row)
	}
	return rows
}

func writeAggParquet(t *testing.T, path string, tb table) {
	t.Helper()
	mem := memory.NewGoAllocator()
	recs := tb.batches(mem, nil)
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := pqarrow.NewFileWriter(tb.schema, f, nil, pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	for _, r := range recs {
		require.NoError(t, w.WriteBuffered(r))
		r.Release()
	}
	require.NoError(t, w.Close())
}

// aggCase is random events and entity rows for the aggregation reference test.
type aggCase struct {
	events, ents table
	aggs         []Aggregation
}

var aggWindows = []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

func genAggCase(r *rand.Rand, nEvents, nEnts, nUsers int) aggCase {
	const base = int64(1_700_000_000_000_000) // µs
	span := int64(10 * 24 * time.Hour / time.Microsecond)
	evSchema := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "event_ts", Type: tsType, Nullable: true},
		{Name: "created_ts", Type: tsType, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "qty", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "merchant", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "seq", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	c := aggCase{events: table{schema: evSchema}}
	var evTimes []int64
	null := func(p float64, v any) any {
		if r.Float64() < p {
			return nil
		}
		return v
	}
	for i := range nEvents {
		var ev int64
		switch {
		case i > 0 && r.IntN(10) == 0: // a duplicate (keys, event_ts, created_ts) or same-time event
			prev := c.events.rows[r.IntN(len(c.events.rows))]
			row := []any{prev[0], prev[1], prev[2], null(0.2, r.NormFloat64()*100), null(0.2, int32(r.IntN(50)-10)), null(0.2, fmt.Sprintf("m%d", r.IntN(6))), int64(i)}
			if r.IntN(2) == 0 {
				row[2] = null(0.3, base+r.Int64N(span))
			}
			c.events.rows = append(c.events.rows, row)
			continue
		default:
			ev = base + r.Int64N(span)
			if r.IntN(4) == 0 {
				ev -= ev % int64(time.Minute/time.Microsecond) // on a minute boundary
			}
		}
		var cr any
		switch r.IntN(4) {
		case 0: // no created_ts
		case 1: // late: created long after the event
			cr = ev + r.Int64N(int64(3*24*time.Hour/time.Microsecond))
		default:
			cr = ev + r.Int64N(int64(time.Minute/time.Microsecond))
		}
		user := any(int64(r.IntN(nUsers)))
		if r.IntN(50) == 0 {
			user = nil
		}
		var evv any = ev
		if r.IntN(100) == 0 {
			evv = nil
		}
		c.events.rows = append(c.events.rows, []any{user, evv, cr,
			null(0.15, math.Round(r.NormFloat64()*10000)/100), null(0.15, int32(r.IntN(1000)-100)), null(0.15, fmt.Sprintf("m%d", r.IntN(20))), int64(i)})
		evTimes = append(evTimes, ev)
	}
	entSchema := arrow.NewSchema([]arrow.Field{
		{Name: "rid", Type: arrow.PrimitiveTypes.Int64},
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "event_timestamp", Type: tsType, Nullable: true},
		{Name: "label", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	c.ents = table{schema: entSchema}
	for i := range nEnts {
		var t int64
		switch r.IntN(5) {
		case 0: // exactly at an event, or exactly one window after it (the open lower bound)
			t = evTimes[r.IntN(len(evTimes))] + []int64{0, 0, int64(time.Hour / time.Microsecond), int64(24 * time.Hour / time.Microsecond), int64(7 * 24 * time.Hour / time.Microsecond), 1, -1}[r.IntN(7)]
		default:
			t = base + r.Int64N(span+int64(2*24*time.Hour/time.Microsecond))
		}
		c.ents.rows = append(c.ents.rows, []any{int64(i), int64(r.IntN(nUsers + 3)), t, int64(r.IntN(2))})
	}
	for _, w := range aggWindows {
		ws := strings.TrimSuffix(map[time.Duration]string{time.Hour: "1h", 24 * time.Hour: "1d", 7 * 24 * time.Hour: "7d"}[w], "")
		add := func(col, fn string) {
			c.aggs = append(c.aggs, Aggregation{Name: col + "_" + fn + "_" + ws, Column: col, Function: fn, Window: w})
		}
		for _, fn := range []string{AggCount, AggSum, AggMean, AggMin, AggMax, AggLast} {
			add("amount", fn)
		}
		for _, fn := range []string{AggCount, AggSum, AggMean, AggMin, AggMax, AggLast, AggCountDistinct} {
			add("qty", fn)
		}
		for _, fn := range []string{AggCount, AggCountDistinct, AggLast} { // last of a string: issue 27
			add("merchant", fn)
		}
	}
	return c
}

// duckAggExpr is one aggregation in DuckDB SQL over rows named x with a FILTER or window.
func duckAggExpr(a Aggregation, col string) string {
	switch a.Function {
	case AggCount:
		return "count(" + col + ")"
	case AggSum:
		return "sum(" + col + ")"
	case AggMean:
		return "avg(" + col + ")"
	case AggMin:
		return "min(" + col + ")"
	case AggMax:
		return "max(" + col + ")"
	case AggCountDistinct:
		return "count(DISTINCT " + col + ")"
	case AggLast: // the latest non-null value by (event_ts, created_ts), null created_ts first
		return "max({'t': t, 'c': coalesce(epoch_us(cr), -9223372036854775807), 'v': " + col + "})"
	}
	panic(a.Function)
}

// duckReferenceSQL computes the aggregations for every entity row in DuckDB. Without the cutoff
// it is a window query over entity rows and events together, partitioned by key and ordered by
// time with RANGE BETWEEN INTERVAL (w - 1µs) PRECEDING AND CURRENT ROW: event_ts in (T-w, T].
// With the cutoff it is a join and GROUP BY with per-window FILTERs, created_ts <= T.
func duckReferenceSQL(evPath, entPath string, aggs []Aggregation, cutoff bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE ev AS SELECT user_id, event_ts AS t, created_ts AS cr, amount, qty, merchant FROM read_parquet('%s') WHERE user_id IS NOT NULL AND event_ts IS NOT NULL QUALIFY row_number() OVER (PARTITION BY user_id, event_ts, created_ts ORDER BY seq DESC) = 1;\n", evPath)
	fmt.Fprintf(&b, "CREATE TABLE ent AS SELECT rid, user_id, event_timestamp FROM read_parquet('%s');\n", entPath)
	if !cutoff {
		b.WriteString("CREATE TABLE u AS SELECT user_id, t, cr, amount, qty, merchant, NULL::BIGINT AS rid FROM ev UNION ALL SELECT user_id, event_timestamp, NULL, NULL, NULL, NULL, rid FROM ent;\n")
		b.WriteString("SELECT rid")
		for _, a := range aggs {
			w := fmt.Sprintf("(PARTITION BY user_id ORDER BY t RANGE BETWEEN INTERVAL '%d microseconds' PRECEDING AND CURRENT ROW)", a.Window.Microseconds()-1)
			e := duckAggExpr(a, a.Column)
			if a.Function == AggLast {
				e = fmt.Sprintf("struct_extract(%s FILTER (WHERE %s IS NOT NULL) OVER %s, 'v')", e, a.Column, w)
			} else {
				e += " OVER " + w
			}
			fmt.Fprintf(&b, ",\n  %s AS %s", e, a.Name)
		}
		b.WriteString("\nFROM u QUALIFY rid IS NOT NULL ORDER BY rid;\n")
		return b.String()
	}
	maxW := int64(0)
	for _, a := range aggs {
		maxW = max(maxW, a.Window.Microseconds())
	}
	b.WriteString("SELECT e.rid")
	for _, a := range aggs {
		in := fmt.Sprintf("x.t > e.event_timestamp - INTERVAL '%d microseconds'", a.Window.Microseconds())
		e := duckAggExpr(a, "x."+a.Column)
		e = strings.ReplaceAll(e, "'t': t", "'t': x.t")
		e = strings.ReplaceAll(e, "epoch_us(cr)", "epoch_us(x.cr)")
		if a.Function == AggLast {
			e = fmt.Sprintf("struct_extract(%s FILTER (WHERE %s AND x.%s IS NOT NULL), 'v')", e, in, a.Column)
		} else {
			e = fmt.Sprintf("%s FILTER (WHERE %s)", e, in)
		}
		fmt.Fprintf(&b, ",\n  %s AS %s", e, a.Name)
	}
	fmt.Fprintf(&b, "\nFROM ent e LEFT JOIN ev x ON x.user_id = e.user_id AND x.t <= e.event_timestamp AND x.t > e.event_timestamp - INTERVAL '%d microseconds' AND (x.cr IS NULL OR x.cr <= e.event_timestamp)\nGROUP BY e.rid ORDER BY e.rid;\n", maxW)
	return b.String()
}

// aggEqual compares an engine value with DuckDB's JSON value. Integers, counts, min, max and
// last are exact; float sums and means agree to 1e-9 relative (summation order differs).
func aggEqual(a Aggregation, got any, want any) bool {
	if want == nil || got == nil {
		if (a.Function == AggCount || a.Function == AggCountDistinct) && want == nil {
			return got == int64(0)
		}
		return want == nil && got == nil
	}
	num, _ := want.(json.Number)
	switch g := got.(type) {
	case string:
		w, ok := want.(string)
		return ok && g == w
	case int64:
		w, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil { // DuckDB's sum of integers is a HUGEINT, printed as a string
			s, _ := want.(string)
			w, err = strconv.ParseInt(s, 10, 64)
		}
		return err == nil && g == w
	case int32:
		w, err := strconv.ParseInt(string(num), 10, 64)
		return err == nil && int64(g) == w
	case float64:
		w, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			return false
		}
		if a.Function == AggSum || a.Function == AggMean {
			return math.Abs(g-w) <= 1e-9*math.Max(1, math.Abs(w))
		}
		return g == w
	}
	return false
}

func runAgg(t *testing.T, c aggCase, opts Options) table {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	opts.Allocator = mem
	opts.TempDir = t.TempDir()
	views := []View{{Name: "txn", JoinKeys: []string{"user_id"}, Aggregations: c.aggs, Open: c.events.open(mem, []int{97, 13, 500})}}
	ent := c.ents.reader(mem, []int{64, 7, 300})
	defer ent.Release()
	res, err := Join(context.Background(), ent, views, opts)
	require.NoError(t, err)
	defer res.Release()
	return collect(t, res)
}

// TestAggregationsMatchDuckDB: on random events with duplicates, nulls, late rows, boundary
// timestamps and unknown keys, every aggregation of every entity row equals DuckDB's, in memory
// and spilled, with and without the created cutoff.
func TestAggregationsMatchDuckDB(t *testing.T) {
	script := duckDBScript(t)
	for seed := range 3 {
		r := rand.New(rand.NewPCG(uint64(seed), 15))
		c := genAggCase(r, 3000, 1500, 12+seed*20)
		dir := t.TempDir()
		evPath, entPath := filepath.Join(dir, "events.parquet"), filepath.Join(dir, "entities.parquet")
		writeAggParquet(t, evPath, c.events)
		writeAggParquet(t, entPath, c.ents)
		for _, cutoff := range []bool{false, true} {
			want := runDuckDB(t, script, duckReferenceSQL(evPath, entPath, c.aggs, cutoff))
			require.Len(t, want, len(c.ents.rows))
			for _, budget := range []int64{0, 1} {
				got := runAgg(t, c, Options{CreatedCutoff: cutoff, MemoryBudget: budget, Parallelism: 1 + seed})
				require.Len(t, got.rows, len(c.ents.rows))
				base := len(c.ents.schema.Fields())
				checked := 0
				for i, row := range got.rows {
					require.Equal(t, c.ents.rows[i], row[:base], "entity columns of row %d", i)
					for k, a := range c.aggs {
						if !aggEqual(a, row[base+k], want[i][1+k]) {
							t.Fatalf("seed %d cutoff %v budget %d: entity row %d (user %v, T %v) %s: engine %v, DuckDB %v",
								seed, cutoff, budget, i, row[1], row[2], a.Name, row[base+k], want[i][1+k])
						}
						checked++
					}
				}
				require.Equal(t, len(c.ents.rows)*len(c.aggs), checked)
			}
		}
	}
}
