package pitjoin

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
)

// The oracle: a brute-force point-in-time join over Go slices, written from DESIGN.md's
// definition and sharing no code with the engine. For each entity row and view it scans every
// feature row.

type oracleView struct {
	name     string
	keys     []string // entity-side names; feature side uses the same names
	ttl      time.Duration
	features []string
	rows     table // join keys, event_ts, created_ts, features
}

func col(s *arrow.Schema, name string) int {
	idx := s.FieldIndices(name)
	if len(idx) == 0 {
		panic("no column " + name)
	}
	return idx[0]
}

func asInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case int32:
		return int64(v), true
	}
	return 0, false
}

func keyEqual(a, b any) bool {
	if a == nil || b == nil {
		return false
	}
	if x, ok := asInt(a); ok {
		y, ok := asInt(b)
		return ok && x == y
	}
	return a == b
}

func oracleJoin(ent table, views []oracleView, tsCol string, cutoff, full bool) table {
	fields := append([]arrow.Field(nil), ent.schema.Fields()...)
	for _, v := range views {
		for _, f := range v.features {
			name := f
			if full {
				name = v.name + "__" + f
			}
			fields = append(fields, arrow.Field{Name: name, Type: v.rows.schema.Field(col(v.rows.schema, f)).Type, Nullable: true})
		}
	}
	out := table{schema: arrow.NewSchema(fields, nil)}
	tIdx := col(ent.schema, tsCol)
	for _, er := range ent.rows {
		row := append([]any(nil), er...)
		for _, v := range views {
			fs := v.rows.schema
			evIdx, crIdx := col(fs, "event_ts"), col(fs, "created_ts")
			best := -1
			var bestEv, bestCr int64
			if er[tIdx] != nil {
				t := er[tIdx].(int64)
				for i, fr := range v.rows.rows {
					match := true
					for _, k := range v.keys {
						if !keyEqual(er[col(ent.schema, k)], fr[col(fs, k)]) {
							match = false
						}
					}
					if !match || fr[evIdx] == nil {
						continue
					}
					ev := fr[evIdx].(int64)
					cr := int64(math.MinInt64)
					if fr[crIdx] != nil {
						cr = fr[crIdx].(int64)
					}
					if ev > t {
						continue
					}
					if v.ttl > 0 && ev < t-v.ttl.Microseconds() {
						continue
					}
					if cutoff && fr[crIdx] != nil && cr > t {
						continue
					}
					// Greater event_ts wins, then greater created_ts, then the row read last.
					if best < 0 || ev > bestEv || (ev == bestEv && cr >= bestCr) {
						best, bestEv, bestCr = i, ev, cr
					}
				}
			}
			for _, f := range v.features {
				if best < 0 {
					row = append(row, nil)
				} else {
					row = append(row, v.rows.rows[best][col(fs, f)])
				}
			}
		}
		out.rows = append(out.rows, row)
	}
	return out
}

// Random cases.

var (
	listF32 = arrow.ListOf(arrow.PrimitiveTypes.Float32)
	i64     = arrow.PrimitiveTypes.Int64
	i32     = arrow.PrimitiveTypes.Int32
	f64     = arrow.PrimitiveTypes.Float64
	f32     = arrow.PrimitiveTypes.Float32
	str     = arrow.BinaryTypes.String
	bin     = arrow.BinaryTypes.Binary
	boolean = arrow.FixedWidthTypes.Boolean
)

func randValue(r *rand.Rand, dt arrow.DataType, nullP float64) any {
	if r.Float64() < nullP {
		return nil
	}
	switch dt.ID() {
	case arrow.INT64:
		return r.Int64N(1000) - 500
	case arrow.INT32:
		return int32(r.IntN(1000) - 500)
	case arrow.FLOAT64:
		return float64(r.IntN(10000)) / 8
	case arrow.FLOAT32:
		return float32(r.IntN(10000)) / 4
	case arrow.BOOL:
		return r.IntN(2) == 0
	case arrow.STRING:
		return fmt.Sprintf("s%d", r.IntN(100))
	case arrow.BINARY:
		return []byte{byte(r.IntN(256)), byte(r.IntN(256))}
	case arrow.TIMESTAMP:
		return r.Int64N(1e12)
	case arrow.LIST:
		n := r.IntN(4)
		out := []any{}
		for range n {
			out = append(out, randValue(r, dt.(*arrow.ListType).Elem(), 0.1))
		}
		return out
	}
	panic("randValue: " + dt.String())
}

const sec = int64(time.Second / time.Microsecond)

// randTS is a time in [0, 20] s, mostly on whole seconds so ties and TTL edges are common, with
// microsecond offsets now and then.
func randTS(r *rand.Rand) int64 {
	t := r.Int64N(21) * sec
	switch r.IntN(8) {
	case 0:
		t++
	case 1:
		t--
	}
	return t
}

type viewTemplate struct {
	name     string
	keys     []arrow.Field // feature-side key columns (entity side has id:int64, name:string)
	features []arrow.Field
}

var templates = []viewTemplate{
	{"a", []arrow.Field{{Name: "id", Type: i64}}, []arrow.Field{
		{Name: "a_i64", Type: i64}, {Name: "a_f64", Type: f64}, {Name: "a_str", Type: str}, {Name: "a_list", Type: listF32}}},
	{"b", []arrow.Field{{Name: "id", Type: i64}, {Name: "name", Type: str}}, []arrow.Field{
		{Name: "b_bool", Type: boolean}, {Name: "b_bytes", Type: bin}, {Name: "b_ts", Type: tsType}, {Name: "b_i32", Type: i32}, {Name: "b_f32", Type: f32}}},
	{"c", []arrow.Field{{Name: "name", Type: str}}, []arrow.Field{{Name: "c_i64", Type: i64}}},
	{"d", []arrow.Field{{Name: "id", Type: i32}}, []arrow.Field{{Name: "d_str", Type: str}, {Name: "d_list", Type: listF32}}},
}

var names = []string{"x", "y", "zz", ""}

type randCase struct {
	prune  bool // feature readers drop rows outside the EventRange they are given
	ent    table
	views  []oracleView
	cutoff bool
	full   bool
	sizes  []int
}

func genCase(r *rand.Rand) randCase {
	c := randCase{cutoff: r.IntN(3) == 0, full: r.IntN(4) == 0, prune: r.IntN(2) == 0}
	entSchema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: i64, Nullable: true},
		{Name: "event_timestamp", Type: tsType, Nullable: true},
		{Name: "name", Type: str, Nullable: true},
		{Name: "label", Type: f64, Nullable: true},
	}, nil)
	c.ent.schema = entSchema
	k := 1 + r.IntN(6)
	// Sparse ids (far apart, negative) take the hash-table lookup; dense ones the direct array.
	idMul := []int64{1, 1 << 20, -(1 << 20)}[r.IntN(3)]
	nEnt := r.IntN(31)
	for range nEnt {
		row := []any{int64(1+r.IntN(k)) * idMul, randTS(r), names[r.IntN(len(names))], randValue(r, f64, 0.2)}
		if r.IntN(20) == 0 {
			row[0] = nil
		}
		if r.IntN(30) == 0 {
			row[1] = nil
		}
		if r.IntN(20) == 0 {
			row[2] = nil
		}
		c.ent.rows = append(c.ent.rows, row)
	}
	for _, tpl := range templates {
		if r.IntN(3) == 0 {
			continue
		}
		v := oracleView{name: tpl.name}
		switch r.IntN(3) {
		case 1:
			v.ttl = 3 * time.Second
		case 2:
			v.ttl = 5 * time.Second
		}
		fields := append([]arrow.Field(nil), tpl.keys...)
		for _, f := range tpl.keys {
			v.keys = append(v.keys, f.Name)
		}
		fields = append(fields, arrow.Field{Name: "event_ts", Type: tsType, Nullable: true}, arrow.Field{Name: "created_ts", Type: tsType, Nullable: true})
		fields = append(fields, tpl.features...)
		for _, f := range tpl.features {
			if r.IntN(5) != 0 {
				v.features = append(v.features, f.Name)
			}
		}
		r.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
		v.rows.schema = arrow.NewSchema(fields, nil)
		nRows := r.IntN(41)
		for range nRows {
			row := make([]any, len(fields))
			ev := randTS(r)
			for i, f := range fields {
				switch f.Name {
				case "id":
					id := int64(1+r.IntN(k+2)) * idMul
					if f.Type.ID() == arrow.INT32 {
						row[i] = int32(id)
					} else {
						row[i] = id
					}
					if r.IntN(30) == 0 {
						row[i] = nil
					}
				case "name":
					row[i] = names[r.IntN(len(names))]
				case "event_ts":
					row[i] = ev
					if r.IntN(30) == 0 {
						row[i] = nil
					}
				case "created_ts":
					row[i] = ev + (r.Int64N(6)-2)*sec
					if r.IntN(5) == 0 {
						row[i] = nil
					}
				default:
					row[i] = randValue(r, f.Type, 0.15)
				}
			}
			// Exact duplicates of (keys, event_ts, created_ts) with other values: the later row wins.
			if len(v.rows.rows) > 0 && r.IntN(5) == 0 {
				prev := v.rows.rows[r.IntN(len(v.rows.rows))]
				for i, f := range fields {
					switch f.Name {
					case "id", "name", "event_ts", "created_ts":
						row[i] = prev[i]
					}
				}
			}
			v.rows.rows = append(v.rows.rows, row)
		}
		c.views = append(c.views, v)
	}
	r.Shuffle(len(c.views), func(i, j int) { c.views[i], c.views[j] = c.views[j], c.views[i] })
	for n := 0; n < 50; n += 1 + r.IntN(8) {
		c.sizes = append(c.sizes, 1+r.IntN(8))
	}
	return c
}

// pruningOpen is a reader that skips the rows the engine says cannot match, as a source with
// time-range pruning would; the result must not change.
func pruningOpen(mem memory.Allocator, t table, sizes []int) OpenFunc {
	return func(_ context.Context, er EventRange) (array.RecordReader, error) {
		ev := col(t.schema, "event_ts")
		kept := table{schema: t.schema}
		for _, row := range t.rows {
			if row[ev] != nil {
				us := row[ev].(int64)
				if er.Empty || us > er.To.UnixMicro() || (!er.From.IsZero() && us < er.From.UnixMicro()) {
					continue
				}
			}
			kept.rows = append(kept.rows, row)
		}
		return kept.reader(mem, sizes), nil
	}
}

// runEngineStats runs the engine on a random case and returns its rows and what it did.
func runEngineStats(t *testing.T, c randCase, opts Options) (table, Stats) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	opts.Allocator = mem
	opts.CreatedCutoff = c.cutoff
	opts.FullFeatureNames = c.full
	opts.TempDir = t.TempDir()
	views := make([]View, len(c.views))
	for i, v := range c.views {
		views[i] = View{Name: v.name, JoinKeys: v.keys, TTL: v.ttl, Features: v.features, Open: v.rows.open(mem, c.sizes)}
		if c.prune {
			views[i].Open = pruningOpen(mem, v.rows, c.sizes)
		}
	}
	ent := c.ent.reader(mem, c.sizes)
	defer ent.Release()
	res, err := Join(t.Context(), ent, views, opts)
	require.NoError(t, err)
	defer res.Release()
	return collect(t, res), res.Stats()
}

func runEngine(t *testing.T, c randCase, opts Options) table {
	t.Helper()
	tbl, _ := runEngineStats(t, c, opts)
	return tbl
}

func TestOracle(t *testing.T) {
	n := 600
	if testing.Short() {
		n = 100
	}
	for seed := range n {
		r := rand.New(rand.NewPCG(uint64(seed), 42))
		c := genCase(r)
		want := oracleJoin(c.ent, c.views, "event_timestamp", c.cutoff, c.full)
		opts := Options{Parallelism: 1 + r.IntN(3)}
		spill := seed%4 == 3
		if spill {
			opts.MemoryBudget = 1 // everything spills
		}
		got := runEngine(t, c, opts)
		if !got.schema.Equal(want.schema) {
			t.Fatalf("seed %d: schema\n got %s\nwant %s", seed, got.schema, want.schema)
		}
		for i := range want.rows {
			if i >= len(got.rows) {
				break
			}
			require.Equal(t, want.rows[i], got.rows[i], "seed %d (spill %v, cutoff %v) row %d", seed, spill, c.cutoff, i)
		}
		require.Len(t, got.rows, len(want.rows), "seed %d", seed)
		if spill || seed%8 != 0 {
			continue
		}
		// The same case with everything spilled must give the same rows.
		opts.MemoryBudget = 1
		require.Equal(t, want.rows, runEngine(t, c, opts).rows, "seed %d spilled", seed)
	}
}
