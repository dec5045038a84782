package pitjoin

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
)

func smallSpec() benchSpec {
	return benchSpec{featureRows: 20_000, entities: 1_500, entityRows: 3_000, views: 2, features: 3}
}

// joinAll runs a join over generated data and reads the whole result.
func joinAll(t *testing.T, d benchData, opts Options) (table, Stats) {
	t.Helper()
	rdr, err := array.NewRecordReader(d.entSchema, d.ent)
	require.NoError(t, err)
	defer rdr.Release()
	res, err := Join(context.Background(), rdr, d.views, opts)
	require.NoError(t, err)
	defer res.Release()
	return collect(t, res), res.Stats()
}

func dirEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "spill files left in %s", dir)
}

// With a budget far below the input, entity rows and candidates spill, partitions are split
// again, and the rows are the same as in memory.
func TestSpillMatchesInMemory(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := genBench(mem, smallSpec())
	defer d.release()
	want, st := joinAll(t, d, Options{Allocator: mem, TempDir: t.TempDir(), FullFeatureNames: true})
	require.Zero(t, st.SpilledViews)
	require.Greater(t, st.CandidateRows, int64(0))

	for _, budget := range []int64{200 << 10, 3 << 20} {
		tmp := t.TempDir()
		got, st := joinAll(t, d, Options{Allocator: mem, TempDir: tmp, MemoryBudget: budget, FullFeatureNames: true, Parallelism: 2})
		require.Equal(t, 2, st.SpilledViews, "budget %d", budget)
		require.Equal(t, budget < 1<<20, st.EntitiesSpilled)
		require.Greater(t, st.SpilledBytes, int64(0))
		require.Equal(t, want.schema, got.schema)
		require.Equal(t, want.rows, got.rows, "budget %d", budget)
		dirEmpty(t, tmp)
	}

	// Partitions still over budget are split again.
	defer func(v int64) { minPartitionBytes = v }(minPartitionBytes)
	minPartitionBytes = 0
	tmp := t.TempDir()
	got, st := joinAll(t, d, Options{Allocator: mem, TempDir: tmp, MemoryBudget: 600 << 10, FullFeatureNames: true})
	require.Greater(t, st.SpillFiles, 2*spillFanout, "repartitioned")
	require.Equal(t, want.rows, got.rows)
	dirEmpty(t, tmp)
}

func TestSpillFilesRemovedOnRelease(t *testing.T) {
	d := genBench(memory.DefaultAllocator, smallSpec())
	defer d.release()
	tmp := t.TempDir()
	rdr, err := array.NewRecordReader(d.entSchema, d.ent)
	require.NoError(t, err)
	defer rdr.Release()
	res, err := Join(t.Context(), rdr, d.views, Options{TempDir: tmp, MemoryBudget: 1, FullFeatureNames: true})
	require.NoError(t, err)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Len(t, entries, 1, "one spill directory while the result is alive")
	require.True(t, res.Next())
	res.Release()
	dirEmpty(t, tmp)
}

// cancelReader cancels the context after a few batches.
type cancelReader struct {
	array.RecordReader
	cancel func()
	n      int
}

func (r *cancelReader) Next() bool {
	r.n++
	if r.n == 3 {
		r.cancel()
	}
	return r.RecordReader.Next()
}

func TestCancel(t *testing.T) {
	spec := smallSpec()
	spec.featureRows = 200_000
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := genBench(mem, spec)
	defer d.release()
	for _, budget := range []int64{0, 1 << 20} {
		tmp := t.TempDir()
		ctx, cancel := context.WithCancel(t.Context())
		views := append([]View(nil), d.views...)
		for i := range views {
			open := views[i].Open
			views[i].Open = func(ctx context.Context, er EventRange) (array.RecordReader, error) {
				r, err := open(ctx, er)
				return &cancelReader{RecordReader: r, cancel: cancel}, err
			}
		}
		rdr, err := array.NewRecordReader(d.entSchema, d.ent)
		require.NoError(t, err)
		res, err := Join(ctx, rdr, views, Options{Allocator: mem, TempDir: tmp, MemoryBudget: budget, FullFeatureNames: true})
		rdr.Release()
		cancel()
		if res != nil {
			res.Release()
		}
		require.ErrorIs(t, err, context.Canceled, "budget %d", budget)
		dirEmpty(t, tmp)
	}

	// Cancelled before the start.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rdr, err := array.NewRecordReader(d.entSchema, d.ent)
	require.NoError(t, err)
	defer rdr.Release()
	_, err = Join(ctx, rdr, d.views, Options{Allocator: mem, TempDir: t.TempDir(), FullFeatureNames: true})
	require.ErrorIs(t, err, context.Canceled)
}

// errReader fails after its first batch.
type errReader struct {
	array.RecordReader
	n int
}

func (r *errReader) Next() bool {
	r.n++
	return r.n < 2 && r.RecordReader.Next()
}

func (r *errReader) Err() error { return errors.New("disk on fire") }

func TestFeatureReadErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := genBench(mem, smallSpec())
	defer d.release()
	run := func(open OpenFunc) error {
		views := append([]View(nil), d.views...)
		views[1].Open = open
		rdr, err := array.NewRecordReader(d.entSchema, d.ent)
		require.NoError(t, err)
		defer rdr.Release()
		tmp := t.TempDir()
		res, err := Join(t.Context(), rdr, views, Options{Allocator: mem, TempDir: tmp, FullFeatureNames: true})
		if res != nil {
			res.Release()
		}
		dirEmpty(t, tmp)
		return err
	}
	err := run(func(context.Context, EventRange) (array.RecordReader, error) { return nil, errors.New("no such table") })
	require.ErrorContains(t, err, `view "v1": open feature rows: no such table`)
	open := d.views[1].Open
	err = run(func(ctx context.Context, er EventRange) (array.RecordReader, error) {
		r, err := open(ctx, er)
		return &errReader{RecordReader: r}, err
	})
	require.ErrorContains(t, err, `view "v1": read feature rows: disk on fire`)
	err = run(nil)
	require.ErrorIs(t, err, ErrInvalidInput)
}

// Timestamps of any unit are compared as UTC microseconds.
func TestTimestampUnits(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ns := &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}
	ms := &arrow.TimestampType{Unit: arrow.Millisecond}
	ent := table{schema: arrow.NewSchema([]arrow.Field{{Name: "id", Type: i64}, {Name: "event_timestamp", Type: ns}}, nil)}
	ent.rows = [][]any{{int64(1), int64(10_000_000_999)}, {int64(1), int64(9_999_999_999)}} // 10.000000999s, 9.999999999s
	feat := table{schema: arrow.NewSchema([]arrow.Field{{Name: "id", Type: i64}, {Name: "event_ts", Type: ms}, {Name: "x", Type: i64}}, nil)}
	feat.rows = [][]any{{int64(1), int64(10_000), int64(7)}} // 10s
	rdr := ent.reader(mem, nil)
	defer rdr.Release()
	res, err := Join(t.Context(), rdr, []View{{Name: "v", JoinKeys: []string{"id"}, TTL: time.Second, Features: []string{"x"}, Open: feat.open(mem, nil)}}, Options{Allocator: mem, TempDir: t.TempDir()})
	require.NoError(t, err)
	got := collect(t, res)
	res.Release()
	require.Equal(t, [][]any{{int64(1), int64(10_000_000_999), int64(7)}, {int64(1), int64(9_999_999_999), nil}}, got.rows)
}

func TestDefaultMemoryBudget(t *testing.T) {
	require.Greater(t, DefaultMemoryBudget(), int64(0))
}

func TestEntityReadError(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := genBench(mem, smallSpec())
	defer d.release()
	rdr, err := array.NewRecordReader(d.entSchema, d.ent)
	require.NoError(t, err)
	defer rdr.Release()
	tmp := t.TempDir()
	_, err = Join(t.Context(), &errReader{RecordReader: rdr}, d.views, Options{Allocator: mem, TempDir: tmp, MemoryBudget: 1})
	require.ErrorContains(t, err, "read entity rows: disk on fire")
	dirEmpty(t, tmp)
}
