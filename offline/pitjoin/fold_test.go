package pitjoin

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
)

// The fold gives the oracle's rows: the randomized cases of TestOracle with Options.Fold, half
// of them with only the fixed-width features requested so that every view folds.
func TestOracleFold(t *testing.T) {
	n := 600
	if testing.Short() {
		n = 100
	}
	folded := 0
	for seed := range n {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		c := genCase(r)
		if seed%2 == 0 {
			for i := range c.views {
				var dense []string
				for _, f := range c.views[i].features {
					if fi := c.views[i].rows.schema.FieldIndices(f); denseWidth(c.views[i].rows.schema.Field(fi[0]).Type) > 0 {
						dense = append(dense, f)
					}
				}
				c.views[i].features = dense
			}
		}
		want := oracleJoin(c.ent, c.views, "event_timestamp", c.cutoff, c.full)
		opts := Options{Parallelism: 1 + r.IntN(3), Fold: true}
		got, st := runEngineStats(t, c, opts)
		folded += st.FoldedViews
		require.True(t, got.schema.Equal(want.schema), "seed %d: schema\n got %s\nwant %s", seed, got.schema, want.schema)
		require.Equal(t, want.rows, got.rows, "seed %d (cutoff %v)", seed, c.cutoff)
	}
	require.Greater(t, folded, n/2, "views folded")
}

// A fold worker reuses its key, timestamp and group buffers from batch to batch: a smaller batch
// after a larger one must see only its own rows. Here the second batch's one row (time 50) is
// the only match for the entity row at time 60; a buffer that kept the first batch's timestamps
// (100, 200, 300) would leave it unmatched.
func TestFoldScratchReuse(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ts := &arrow.TimestampType{Unit: arrow.Second}
	ent := table{schema: arrow.NewSchema([]arrow.Field{{Name: "id", Type: i64}, {Name: "event_timestamp", Type: ts}}, nil)}
	ent.rows = [][]any{{int64(1), int64(60)}, {int64(1), int64(250)}, {int64(2), int64(10)}}
	feat := table{schema: arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: i64}, {Name: "event_ts", Type: ts}, {Name: "x", Type: i64, Nullable: true}, {Name: "y", Type: f64, Nullable: true},
	}, nil)}
	feat.rows = [][]any{
		{int64(1), int64(100), int64(1), 1.5}, {int64(1), int64(200), int64(2), nil}, {int64(1), int64(300), int64(3), 3.5},
		{int64(1), int64(50), int64(4), 4.5},
		{int64(2), int64(10), nil, 5.5},
	}
	for _, sizes := range [][]int{{3, 1, 1}, {4, 1}, {1, 1, 1, 1, 1}} {
		rdr := ent.reader(mem, nil)
		res, err := Join(t.Context(), rdr, []View{{Name: "v", JoinKeys: []string{"id"}, TTL: time.Hour, Features: []string{"x", "y"}, Open: feat.open(mem, sizes)}},
			Options{Allocator: mem, TempDir: t.TempDir(), Fold: true, Parallelism: 1})
		require.NoError(t, err)
		got := collect(t, res)
		require.Equal(t, 1, res.Stats().FoldedViews)
		res.Release()
		rdr.Release()
		require.Equal(t, [][]any{
			{int64(1), int64(60), int64(4), 4.5},
			{int64(1), int64(250), int64(2), nil},
			{int64(2), int64(10), nil, 5.5},
		}, got.rows, "batches %v", sizes)
	}
}

// The fold holds no candidates, so a budget that makes the candidate path spill leaves it in
// memory; a key with more entity rows than foldMaxGroup takes the candidate path.
func TestFoldChoice(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	spec := smallSpec()
	d := genBench(mem, spec)
	defer d.release()
	want, _ := joinAll(t, d, Options{Allocator: mem, TempDir: t.TempDir(), FullFeatureNames: true})
	got, st := joinAll(t, d, Options{Allocator: mem, TempDir: t.TempDir(), FullFeatureNames: true, Fold: true, MemoryBudget: 3 << 20})
	require.Equal(t, 2, st.FoldedViews)
	require.Zero(t, st.SpilledViews)
	require.Equal(t, want.rows, got.rows)

	ts := &arrow.TimestampType{Unit: arrow.Second}
	ent := table{schema: arrow.NewSchema([]arrow.Field{{Name: "id", Type: i64}, {Name: "event_timestamp", Type: ts}}, nil)}
	feat := table{schema: arrow.NewSchema([]arrow.Field{{Name: "id", Type: i64}, {Name: "event_ts", Type: ts}, {Name: "x", Type: i64}}, nil)}
	for i := range foldMaxGroup + 1 {
		ent.rows = append(ent.rows, []any{int64(1), int64(10 * i)})
		feat.rows = append(feat.rows, []any{int64(1), int64(10*i - 5), int64(i)})
	}
	rdr := ent.reader(mem, nil)
	defer rdr.Release()
	res, err := Join(t.Context(), rdr, []View{{Name: "v", JoinKeys: []string{"id"}, Features: []string{"x"}, Open: feat.open(mem, nil)}},
		Options{Allocator: mem, TempDir: t.TempDir(), Fold: true})
	require.NoError(t, err)
	defer res.Release()
	got = collect(t, res)
	require.Zero(t, res.Stats().FoldedViews)
	require.Len(t, got.rows, foldMaxGroup+1)
	for i := range foldMaxGroup + 1 {
		require.Equal(t, int64(i), got.rows[i][2])
	}
}
