package iceberg

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

const day = 24 * time.Hour

var base = sourcetest.Base

func newStore(t testing.TB, opts StoreOptions) (*Store, *Catalog) {
	t.Helper()
	cat := openCatalog(t)
	s, err := NewStore(context.Background(), cat, opts)
	require.NoError(t, err)
	return s, cat
}

// canonical maps suite rows to one canonical batch of sourcetest.View().
func canonical(t testing.TB, mem memory.Allocator, rows []sourcetest.Row) arrow.RecordBatch {
	t.Helper()
	src := sourcetest.SourceBatch(mem, rows)
	defer src.Release()
	m, err := offline.NewMapper("test", src.Schema(), sourcetest.View(), sourcetest.Fields(),
		offline.Range{Start: time.Unix(0, 0), End: time.Unix(1<<40, 0)}, mem)
	require.NoError(t, err)
	out, err := m.Map(context.Background(), src)
	require.NoError(t, err)
	return out
}

// stream returns a stream of canonical batches, one per group of rows.
func stream(t testing.TB, mem memory.Allocator, groups ...[]sourcetest.Row) offline.Stream {
	var recs []arrow.RecordBatch
	for _, g := range groups {
		recs = append(recs, canonical(t, mem, g))
	}
	return offline.NewSliceStream(sourcetest.View().Arrow(), recs...)
}

func scanAll(t testing.TB, s *Store, req offline.ScanRequest) []string {
	t.Helper()
	ctx := context.Background()
	st, err := s.Scan(ctx, "user_stats", req)
	require.NoError(t, err)
	tbl, err := offline.ReadAll(ctx, st)
	require.NoError(t, err)
	defer tbl.Release()
	return sourcetest.RowStrings(t, tbl)
}

// latest keeps, per (user, ts, created), the last row: what the store must hold.
func latest(rows []sourcetest.Row) []sourcetest.Row {
	type key struct {
		u      int64
		ts, cr int64
	}
	idx := map[key]int{}
	var out []sourcetest.Row
	for _, r := range rows {
		k := key{r.UserID, r.TS.UnixMicro(), r.Created.UnixMicro()}
		if i, ok := idx[k]; ok {
			out[i] = r
			continue
		}
		idx[k] = len(out)
		out = append(out, r)
	}
	return out
}

func TestWriteIntervalIsIdempotent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  StoreOptions
		spill bool
	}{
		{"in memory", StoreOptions{}, false},
		{"spilled", StoreOptions{MemoryBudget: 1, SpillBuckets: 3}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			tc.opts.Allocator = mem
			s, _ := newStore(t, tc.opts)
			rows := sourcetest.Rows()
			all := offline.Range{Start: base, End: base.Add(5 * day)}
			want := sourcetest.Expected(rows, all, true)

			for run := range 2 {
				res, err := s.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows[:5], rows[5:]), "run-"+string(rune('1'+run)))
				require.NoError(t, err)
				require.Equal(t, int64(len(rows)), res.RowsIn)
				require.Equal(t, int64(len(rows)), res.RowsWritten)
				require.Equal(t, tc.spill, res.Spilled)
				require.NotZero(t, res.SnapshotID)
				require.Equal(t, want, scanAll(t, s, offline.ScanRequest{}))
				n, err := s.Count(ctx, "user_stats", offline.ScanRequest{})
				require.NoError(t, err)
				require.Equal(t, int64(len(rows)), n)
			}
			snaps, err := s.Snapshots(ctx, "user_stats", 1)
			require.NoError(t, err)
			require.Len(t, snaps, 2)
			for i, sn := range snaps {
				require.Equal(t, "run-"+string(rune('1'+i)), sn.RunID)
				require.True(t, sn.Interval.Start.Equal(all.Start), sn.Interval.Start)
				require.True(t, sn.Interval.End.Equal(all.End))
			}
			require.Equal(t, snaps[0].ID, snaps[1].ParentID)
		})
	}
}

func TestWriteIntervalCollapsesDuplicates(t *testing.T) {
	for _, opts := range []StoreOptions{{}, {MemoryBudget: 1, SpillBuckets: 2}} {
		ctx := context.Background()
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		opts.Allocator = mem
		s, _ := newStore(t, opts)
		rows := sourcetest.Rows()
		v2 := slices.Clone(rows)
		for i := range v2 {
			v2[i].Spend += 1000 // same keys and timestamps, new values: must win
		}
		all := offline.Range{Start: base, End: base.Add(5 * day)}
		// Duplicates within a batch and across batches; the later batches win.
		res, err := s.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, append(slices.Clone(rows), rows...), v2[:4], v2[4:]), "dups")
		require.NoError(t, err)
		require.Equal(t, int64(3*len(rows)), res.RowsIn)
		require.Equal(t, int64(len(rows)), res.RowsWritten)
		require.Equal(t, sourcetest.Expected(latest(append(rows, v2...)), all, true), scanAll(t, s, offline.ScanRequest{}))
		mem.AssertSize(t, 0)
	}
}

// TestWriteIntervalCountsConflictingDuplicates is issue 22 item 25: distinct events with the
// same (join keys, event_ts, created_ts) collapsed without a word. A write counts the
// collapsed rows whose feature values differ from the row kept, and names one; identical
// duplicates (a source read twice) are not counted. In memory and spilled alike.
func TestWriteIntervalCountsConflictingDuplicates(t *testing.T) {
	for _, opts := range []StoreOptions{{}, {MemoryBudget: 1, SpillBuckets: 2}} {
		ctx := context.Background()
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		opts.Allocator = mem
		s, _ := newStore(t, opts)
		rows := sourcetest.Rows()
		all := offline.Range{Start: base, End: base.Add(5 * day)}

		res, err := s.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows, rows), "same")
		require.NoError(t, err)
		require.Equal(t, int64(len(rows)), res.RowsWritten)
		require.Zero(t, res.Conflicts, "identical duplicates are no conflict")
		require.Empty(t, res.ConflictExample)

		v2 := slices.Clone(rows)
		v2[4].Spend += 1000 // user 2 on day 1: same keys and times, another value
		v2[7].Clicks = nil  // user 2 on day 2: a value became null
		res, err = s.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows, v2), "conflicting")
		require.NoError(t, err)
		require.Equal(t, int64(len(rows)), res.RowsWritten)
		require.EqualValues(t, 2, res.Conflicts)
		require.Contains(t, []string{
			"user_id=2 event_ts=2024-03-02T02:00:00Z created_ts=2024-03-02T02:01:00Z",
			"user_id=2 event_ts=2024-03-03T02:00:00Z created_ts=2024-03-03T02:01:00Z",
		}, res.ConflictExample)
		require.Equal(t, sourcetest.Expected(latest(append(slices.Clone(rows), v2...)), all, true), scanAll(t, s, offline.ScanRequest{}), "the last row still wins")
		mem.AssertSize(t, 0)
	}
}

func TestWriteIntervalReplacesOnlyItsInterval(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	s, _ := newStore(t, StoreOptions{Allocator: mem})
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	_, err := s.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows), "full")
	require.NoError(t, err)
	first, err := s.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)

	// Re-materialize part of day 1 (a partial partition) and all of day 2 with new values.
	part := offline.Range{Start: base.Add(day + 90*time.Minute), End: base.Add(3 * day)}
	var inPart, outside []sourcetest.Row
	for _, r := range rows {
		if !r.TS.Before(part.Start) && r.TS.Before(part.End) {
			r.Spend = -r.Spend - 7
			inPart = append(inPart, r)
		} else {
			outside = append(outside, r)
		}
	}
	require.NotEmpty(t, inPart)
	res, err := s.WriteInterval(ctx, sourcetest.View(), part, stream(t, mem, inPart[1:]), "part") // one row gone
	require.NoError(t, err)
	require.Equal(t, sourcetest.Expected(append(slices.Clone(outside), inPart[1:]...), all, true), scanAll(t, s, offline.ScanRequest{}))

	// An empty write clears the interval.
	_, err = s.WriteInterval(ctx, sourcetest.View(), part, offline.NewSliceStream(sourcetest.View().Arrow()), "clear")
	require.NoError(t, err)
	require.Equal(t, sourcetest.Expected(outside, all, true), scanAll(t, s, offline.ScanRequest{}))

	// Time travel: the first snapshot still holds everything; the range restricts rows.
	require.Equal(t, sourcetest.Expected(rows, all, true), scanAll(t, s, offline.ScanRequest{SnapshotID: first[0].ID}))
	require.Equal(t, sourcetest.Expected(inPart[1:], part, true), scanAll(t, s, offline.ScanRequest{SnapshotID: res.SnapshotID, Range: part}))
	n, err := s.Count(ctx, "user_stats", offline.ScanRequest{SnapshotID: res.SnapshotID, Range: part})
	require.NoError(t, err)
	require.Equal(t, int64(len(inPart)-1), n)

	// Column projection.
	got := scanAll(t, s, offline.ScanRequest{Columns: []string{"spend", "user_id"}, Range: offline.Range{Start: base.Add(3 * day), End: base.Add(4 * day)}})
	require.Equal(t, []string{"3.25|1", "3.5|2", "3.75|3"}, got)
}

func TestWriteIntervalRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	s, _ := newStore(t, StoreOptions{Allocator: mem, MemoryBudget: 1, SpillBuckets: 2})
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	_, err := s.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows), "ok")
	require.NoError(t, err)

	failing := offline.NewFuncStream(sourcetest.View().Arrow(), func() func(context.Context) (arrow.RecordBatch, error) {
		n := 0
		return func(context.Context) (arrow.RecordBatch, error) {
			n++
			if n == 1 {
				return canonical(t, mem, rows[:3]), nil
			}
			return nil, errors.New("source broke")
		}
	}(), nil)
	wrongType := offline.NewSliceStream(arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: arrow.BinaryTypes.String}}, nil))

	cases := []struct {
		name string
		r    offline.Range
		in   offline.Stream
		is   error
		mesg string
	}{
		{"row before interval", offline.Range{Start: base.Add(day), End: base.Add(5 * day)}, stream(t, mem, rows), offline.ErrOutsideInterval, "2024-03-01T01:00:00Z"},
		{"row at end", offline.Range{Start: base, End: base.Add(day)}, stream(t, mem, rows), offline.ErrOutsideInterval, "event_ts"},
		{"source fails halfway", all, failing, nil, "source broke"},
		{"wrong column type", all, wrongType, offline.ErrTypeMismatch, `"user_id"`},
		{"invalid range", offline.Range{Start: base, End: base}, stream(t, mem, rows), offline.ErrInvalidRange, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.WriteInterval(ctx, sourcetest.View(), tc.r, tc.in, "bad")
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Contains(t, err.Error(), tc.mesg)
			require.Contains(t, err.Error(), "quiver.user_stats")
			// Nothing was committed.
			snaps, err := s.Snapshots(ctx, "user_stats", 1)
			require.NoError(t, err)
			require.Len(t, snaps, 1)
			require.Equal(t, sourcetest.Expected(rows, all, true), scanAll(t, s, offline.ScanRequest{}))
		})
	}
	// Spill files are gone.
	left, _ := filepath.Glob(filepath.Join(s.opts.SpillDir, "quiver-write-*"))
	for _, l := range left {
		require.NotContains(t, l, t.TempDir())
	}
}

func TestEnsureTableEvolves(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	s, _ := newStore(t, StoreOptions{Allocator: mem})
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	_, err := s.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows), "v1")
	require.NoError(t, err)

	v2 := sourcetest.View()
	v2.Features = append(slices.Clone(v2.Features),
		offline.Column{Name: "score", Type: definitions.MustType("float32")},
		offline.Column{Name: "embedding", Type: definitions.MustType("array<float32>")},
	)
	require.NoError(t, s.EnsureTable(ctx, v2))
	require.NoError(t, s.EnsureTable(ctx, v2)) // no-op the second time
	got := scanAll(t, s, offline.ScanRequest{Columns: []string{"user_id", "score", "embedding"}, Range: offline.Range{Start: base, End: base.Add(time.Hour + time.Second)}})
	require.Equal(t, []string{"1|null|null", "1|null|null"}, got)

	// The old definition can still write: the new columns are written as null.
	_, err = s.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows[:2]), "old-def")
	require.NoError(t, err)
	n, err := s.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	require.Equal(t, int64(2), n)

	cases := []struct {
		name   string
		change func(*offline.ViewSchema)
		mesg   []string
	}{
		{"feature type", func(v *offline.ViewSchema) { v.Features[1].Type = definitions.MustType("float32") }, []string{`"spend"`, "double", "float32"}},
		{"scalar to array", func(v *offline.ViewSchema) { v.Features[0].Type = definitions.MustType("array<int64>") }, []string{`"clicks"`, "long", "array<int64>"}},
		{"join key type", func(v *offline.ViewSchema) { v.JoinKeys[0].Type = definitions.MustType("string") }, []string{`"user_id"`, "long", "string"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := sourcetest.View()
			v.Features = slices.Clone(v.Features)
			v.JoinKeys = slices.Clone(v.JoinKeys)
			tc.change(&v)
			err := s.EnsureTable(ctx, v)
			require.ErrorIs(t, err, offline.ErrSchemaConflict)
			for _, m := range tc.mesg {
				require.Contains(t, err.Error(), m)
			}
		})
	}
}

func TestTableLayout(t *testing.T) {
	ctx := context.Background()
	s, cat := newStore(t, StoreOptions{Namespace: "shop.features"})
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	rows := sourcetest.Rows()
	_, err := s.WriteInterval(ctx, sourcetest.View(), offline.Range{Start: base, End: base.Add(5 * day)}, stream(t, mem, rows), "r")
	require.NoError(t, err)
	tbl, err := cat.cat.LoadTable(ctx, s.Identifier("user_stats", 1))
	require.NoError(t, err)
	require.Equal(t, "shop.features.user_stats", strings.Join(tbl.Identifier(), "."))
	spec := tbl.Spec()
	require.Equal(t, 1, spec.NumFields())
	require.Equal(t, PartitionField, spec.Field(0).Name)
	require.Equal(t, "day", spec.Field(0).Transform.String())
	var names []string
	for _, f := range tbl.Schema().Fields() {
		names = append(names, f.Name)
	}
	require.Equal(t, []string{"user_id", "event_ts", "created_ts", "clicks", "spend", "name", "tags", "active", "payload", "last_seen"}, names)

	// Data files sit in one directory per day.
	days := map[string]bool{}
	loc := strings.TrimPrefix(tbl.Location(), "file://")
	require.NoError(t, filepath.WalkDir(loc, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") {
			days[filepath.Base(filepath.Dir(p))] = true
		}
		return err
	}))
	require.Equal(t, map[string]bool{
		PartitionField + "=2024-03-01": true, PartitionField + "=2024-03-02": true,
		PartitionField + "=2024-03-03": true, PartitionField + "=2024-03-04": true,
	}, days)

	_, err = s.Scan(ctx, "nope", offline.ScanRequest{})
	require.ErrorIs(t, err, offline.ErrTableNotFound)
	_, err = s.Scan(ctx, "user_stats", offline.ScanRequest{SnapshotID: 42})
	require.ErrorIs(t, err, offline.ErrSnapshotNotFound)
	_, err = s.Scan(ctx, "user_stats", offline.ScanRequest{Columns: []string{"nope"}})
	require.ErrorIs(t, err, offline.ErrColumnNotFound)
	_, err = s.Snapshots(ctx, "nope", 1)
	require.ErrorIs(t, err, offline.ErrTableNotFound)
}

func TestCatalogConfig(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  CatalogConfig
		mesg string
	}{
		{"unknown scheme", CatalogConfig{URI: "mysql://x", Warehouse: "w"}, "want sqlite://PATH"},
		{"no warehouse", CatalogConfig{URI: "sqlite://" + filepath.Join(t.TempDir(), "c.db")}, "no warehouse"},
		{"no path", CatalogConfig{URI: "sqlite://", Warehouse: t.TempDir()}, "no database path"},
		{"password redacted", CatalogConfig{URI: "ftp://u:secret@h/x"}, "[redacted]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenCatalog(ctx, tc.cfg)
			require.ErrorIs(t, err, offline.ErrInvalidSource)
			require.Contains(t, err.Error(), tc.mesg)
			require.NotContains(t, err.Error(), "secret")
		})
	}
	// Two opens of one catalog file see each other's tables.
	dir := t.TempDir()
	cfg := CatalogConfig{URI: "sqlite://" + filepath.Join(dir, "c.db"), Warehouse: filepath.Join(dir, "w")}
	c1, err := OpenCatalog(ctx, cfg)
	require.NoError(t, err)
	defer c1.Close()
	s1, err := NewStore(ctx, c1, StoreOptions{})
	require.NoError(t, err)
	require.NoError(t, s1.EnsureTable(ctx, sourcetest.View()))
	c2, err := OpenCatalog(ctx, cfg)
	require.NoError(t, err)
	defer c2.Close()
	s2, err := NewStore(ctx, c2, StoreOptions{})
	require.NoError(t, err)
	snaps, err := s2.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Empty(t, snaps)
	n, err := s2.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestCanceledWriteCommitsNothing cancels the context once the input is fully read, while the
// rows are being written, and checks no snapshot appears.
func TestCanceledWriteCommitsNothing(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	for _, opts := range []StoreOptions{{Allocator: mem}, {Allocator: mem, MemoryBudget: 1, SpillBuckets: 2}} {
		s, _ := newStore(t, opts)
		rows := sourcetest.Rows()
		all := offline.Range{Start: base, End: base.Add(5 * day)}
		ctx, cancel := context.WithCancel(context.Background())
		in := stream(t, mem, rows)
		cancelling := offline.NewFuncStream(in.Schema(), func(ctx context.Context) (arrow.RecordBatch, error) {
			rec, err := in.Next(ctx)
			if err != nil {
				cancel()
			}
			return rec, err
		}, in.Close)
		_, err := s.WriteInterval(ctx, sourcetest.View(), all, cancelling, "canceled")
		require.ErrorIs(t, err, context.Canceled)
		snaps, err := s.Snapshots(context.Background(), "user_stats", 1)
		require.NoError(t, err)
		require.Empty(t, snaps)
	}
}

// TestGenerationsAndPromotion: each definition generation of a view has its own table; a
// dropped table's files are gone; int32/float32 columns widen in place.
func TestGenerationsAndPromotion(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	s, cat := newStore(t, StoreOptions{Allocator: mem})
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	_, err := s.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows), "g1")
	require.NoError(t, err)

	g2 := sourcetest.View()
	g2.Generation = 2
	g2.Features = slices.Clone(g2.Features)
	g2.Features[1].Type = definitions.MustType("string") // incompatible with generation 1
	require.NoError(t, s.EnsureTable(ctx, g2))
	snaps, err := s.Snapshots(ctx, "user_stats", 2)
	require.NoError(t, err)
	require.Empty(t, snaps, "a new generation starts with an empty table")
	n, err := s.Count(ctx, "user_stats", offline.ScanRequest{Generation: 2})
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = s.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	require.NotZero(t, n, "generation 1 is untouched")
	require.Equal(t, "user_stats-g2", TableName("user_stats", 2))
	require.Equal(t, "user_stats", TableName("user_stats", 1))

	tbl, err := cat.cat.LoadTable(ctx, s.Identifier("user_stats", 1))
	require.NoError(t, err)
	loc := strings.TrimPrefix(tbl.Location(), "file://")
	require.NoError(t, s.DropTable(ctx, "user_stats", 1))
	require.NoError(t, s.DropTable(ctx, "user_stats", 1), "dropping a dropped table is a no-op")
	_, err = s.Snapshots(ctx, "user_stats", 1)
	require.ErrorIs(t, err, offline.ErrTableNotFound)
	var files []string
	_ = filepath.WalkDir(loc, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	require.Empty(t, files, "the dropped table's files are deleted")
	_, err = s.Snapshots(ctx, "user_stats", 2)
	require.NoError(t, err, "generation 2 is untouched")

	// Widening promotions evolve the table in place.
	p := sourcetest.View()
	p.Generation = 3
	p.Features = append(slices.Clone(p.Features), offline.Column{Name: "score", Type: definitions.MustType("float32")},
		offline.Column{Name: "count32", Type: definitions.MustType("int32")})
	require.NoError(t, s.EnsureTable(ctx, p))
	p.Features[len(p.Features)-2].Type = definitions.MustType("float64")
	p.Features[len(p.Features)-1].Type = definitions.MustType("int64")
	require.NoError(t, s.EnsureTable(ctx, p))
	tbl, err = cat.cat.LoadTable(ctx, s.Identifier("user_stats", 3))
	require.NoError(t, err)
	f, ok := tbl.Schema().FindFieldByName("score")
	require.True(t, ok)
	require.Equal(t, "double", f.Type.String())
	f, ok = tbl.Schema().FindFieldByName("count32")
	require.True(t, ok)
	require.Equal(t, "long", f.Type.String())
	// Narrowing back is refused, naming the way out.
	p.Features[len(p.Features)-1].Type = definitions.MustType("int32")
	err = s.EnsureTable(ctx, p)
	require.ErrorIs(t, err, offline.ErrSchemaConflict)
	require.ErrorContains(t, err, "--allow-breaking")
}

// TestMaterializedFrom: a table records where its materialized history begins — the earliest
// interval start ever written, kept when later writes start later and when gc expires the
// snapshot that wrote it; appends (pushed rows) record none.
func TestMaterializedFrom(t *testing.T) {
	ctx := context.Background()
	mem := memory.DefaultAllocator
	s, _ := newStore(t, StoreOptions{})
	_, _, err := s.MaterializedFrom(ctx, "user_stats", 1)
	require.ErrorIs(t, err, offline.ErrTableNotFound)
	rows := sourcetest.Rows()
	late := offline.Range{Start: base.Add(2 * day), End: base.Add(5 * day)}
	var lateRows []sourcetest.Row
	for _, r := range rows {
		if !r.TS.Before(late.Start) && r.TS.Before(late.End) {
			lateRows = append(lateRows, r)
		}
	}
	_, err = s.WriteInterval(ctx, sourcetest.View(), late, stream(t, mem, lateRows), "1")
	require.NoError(t, err)
	from, ok, err := s.MaterializedFrom(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, late.Start, from)

	all := offline.Range{Start: base, End: base.Add(5 * day)}
	_, err = s.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows), "2")
	require.NoError(t, err)
	_, err = s.WriteInterval(ctx, sourcetest.View(), late, stream(t, mem, lateRows), "3")
	require.NoError(t, err)
	from, _, err = s.MaterializedFrom(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Equal(t, base, from, "the earliest start, not the latest write's")
	_, err = s.CollectGarbage(ctx, "user_stats", GCOptions{Now: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	snaps, err := s.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Len(t, snaps, 1, "only the current snapshot (interval starting 2 days in) is left")
	from, _, err = s.MaterializedFrom(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Equal(t, base, from, "kept when the snapshot that wrote it is expired")

	pushed := sourcetest.View()
	pushed.View = "pushed"
	_, err = s.Append(ctx, pushed, stream(t, mem, rows), nil)
	require.NoError(t, err)
	_, ok, err = s.MaterializedFrom(ctx, "pushed", 1)
	require.NoError(t, err)
	require.False(t, ok, "appended rows arrive at any time: no materialized history")
}
