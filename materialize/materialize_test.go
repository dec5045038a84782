package materialize_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/offline/parquet"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/embedded"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/sqlite"
)

const project = "shop"

var day0 = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

func day(n int) time.Time { return day0.Add(time.Duration(n) * 24 * time.Hour) }

var (
	userEntity = definitions.Entity{Name: "user", JoinKeys: []definitions.Field{{Name: "user_id", Type: definitions.MustType("int64")}}}
	statsView  = &definitions.FeatureView{
		Name: "user_stats", Entities: []string{"user"}, Source: "activity", Online: true,
		Features: []definitions.Field{
			{Name: "clicks", Type: definitions.MustType("int64")},
			{Name: "score", Type: definitions.MustType("float64")},
			{Name: "tags", Type: definitions.MustType("array<string>")},
		},
	}
)

// srcRow is one generated source row.
type srcRow struct {
	user           int64
	event, created time.Time
	clicks         *int64
	score          float64
	tags           []string
}

// genRows makes rows for users over days 0..days-1, with exact duplicates of
// (user, event, created) carrying different values, ties on event_ts and nulls.
func genRows(seed uint64, users, days int) []srcRow {
	rng := rand.New(rand.NewPCG(seed, 7))
	var rows []srcRow
	for u := int64(1); u <= int64(users); u++ {
		for d := 0; d < days; d++ {
			if rng.IntN(4) == 0 {
				continue // gaps
			}
			ev := day(d).Add(time.Duration(rng.IntN(86400)) * time.Second)
			cr := ev.Add(time.Minute)
			c := int64(rng.IntN(100))
			r := srcRow{user: u, event: ev, created: cr, clicks: &c, score: rng.Float64(), tags: []string{fmt.Sprint("t", rng.IntN(5))}}
			if rng.IntN(10) == 0 {
				r.clicks = nil
			}
			rows = append(rows, r)
			switch rng.IntN(6) {
			case 0: // exact duplicate, different values: the later one must win
				dup := r
				c2 := c + 1000
				dup.clicks = &c2
				rows = append(rows, dup)
			case 1: // tie on event_ts, later created_ts wins
				tie := r
				tie.created = cr.Add(time.Second)
				c3 := c + 2000
				tie.clicks = &c3
				rows = append(rows, tie)
			}
		}
	}
	return rows
}

var srcSchema = arrow.NewSchema([]arrow.Field{
	{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "created", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "clicks", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
}, nil)

func writeParquet(t testing.TB, path string, rows []srcRow) {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, srcSchema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int64Builder).Append(r.user)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(r.event.UnixMicro()))
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(r.created.UnixMicro()))
		if r.clicks == nil {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.Int64Builder).Append(*r.clicks)
		}
		b.Field(4).(*array.Float64Builder).Append(r.score)
		lb := b.Field(5).(*array.ListBuilder)
		lb.Append(true)
		for _, tag := range r.tags {
			lb.ValueBuilder().(*array.StringBuilder).Append(tag)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := pqarrow.NewFileWriter(srcSchema, f, nil, pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())
}

// env is a full set of real stores in a temp dir: SQLite registry, Iceberg offline store
// (SQL catalog in SQLite), embedded online store, and a Parquet source.
type env struct {
	dir     string
	reg     registry.Store
	offline *iceberg.Store
	online  online.Store
	job     materialize.Job
}

func openEnv(t testing.TB, dir string, batchSize int64) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{dir: dir}
	var err error
	e.reg, err = sqlite.Open(ctx, filepath.Join(dir, "registry.db"))
	require.NoError(t, err)
	t.Cleanup(func() { e.reg.Close() })
	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: "sqlite://" + filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")})
	require.NoError(t, err)
	t.Cleanup(func() { cat.Close() })
	e.offline, err = iceberg.NewStore(ctx, cat, iceberg.StoreOptions{SpillDir: dir})
	require.NoError(t, err)
	e.online, err = embedded.Open(ctx, filepath.Join(dir, "online.db"), embedded.Options{})
	require.NoError(t, err)
	store := e.online // tests may swap e.online; this one is closed all the same
	t.Cleanup(func() { store.Close() })

	srcDef := &definitions.Source{Name: "activity", Parquet: &definitions.ParquetSource{Path: "activity.parquet"}, TimestampField: "ts", CreatedTimestampField: "created"}
	src, err := parquet.New(srcDef, parquet.Options{BaseDir: dir, BatchSize: batchSize})
	require.NoError(t, err)
	vs, err := offline.NewViewSchema(statsView, map[string]*definitions.Entity{"user": &userEntity})
	require.NoError(t, err)
	ov, err := online.NewView(project, statsView, []definitions.Entity{userEntity})
	require.NoError(t, err)
	e.job = materialize.Job{Project: project, Schema: vs, Source: src, Offline: e.offline, Online: e.online, OnlineView: ov}
	return e
}

// expectOffline is the brute-force count of distinct (user, event, created) in [start, end).
func expectOffline(rows []srcRow, start, end time.Time) int64 {
	seen := map[string]bool{}
	for _, r := range rows {
		if !r.event.Before(start) && r.event.Before(end) {
			seen[fmt.Sprint(r.user, r.event.UnixMicro(), r.created.UnixMicro())] = true
		}
	}
	return int64(len(seen))
}

// expectOnline is the brute-force latest row per user in [start, end): greatest (event,
// created), the last of exact duplicates.
func expectOnline(rows []srcRow, start, end time.Time) map[int64]srcRow {
	out := map[int64]srcRow{}
	for _, r := range rows {
		if r.event.Before(start) || !r.event.Before(end) {
			continue
		}
		cur, ok := out[r.user]
		if !ok || r.event.After(cur.event) || (r.event.Equal(cur.event) && !r.created.Before(cur.created)) {
			out[r.user] = r
		}
	}
	return out
}

func checkOnline(t *testing.T, e *env, users int, want map[int64]srcRow) {
	t.Helper()
	keys := make([]online.EntityKey, users)
	for i := range keys {
		k, err := e.job.OnlineView.Key(online.Int64(int64(i + 1)))
		require.NoError(t, err)
		keys[i] = k
	}
	res, err := e.online.Read(context.Background(), online.ReadRequest{Views: []online.ViewRead{{View: e.job.OnlineView, Keys: keys}}})
	require.NoError(t, err)
	clicks, score, tags := res.Columns[0], res.Columns[1], res.Columns[2]
	for i := 0; i < users; i++ {
		w, ok := want[int64(i+1)]
		if !ok {
			require.Equal(t, online.NotFound, clicks.Statuses[i], "user %d", i+1)
			continue
		}
		require.True(t, w.event.Equal(clicks.EventTS[i]), "user %d: event %v, want %v", i+1, clicks.EventTS[i], w.event)
		if w.clicks == nil {
			require.Equal(t, online.NullValue, clicks.Statuses[i], "user %d", i+1)
		} else {
			require.Equal(t, online.Present, clicks.Statuses[i], "user %d", i+1)
			require.Equal(t, *w.clicks, clicks.Values[i].Int64(), "user %d", i+1)
		}
		require.Equal(t, w.score, score.Values[i].Float64())
		require.Equal(t, w.tags, tags.Values[i].Strings())
	}
}

func TestRunIsIdempotentAndAdvancesWatermark(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := genRows(1, 40, 20)
	writeParquet(t, filepath.Join(dir, "activity.parquet"), rows)
	e := openEnv(t, dir, 64)

	res, err := materialize.Run(ctx, e.reg, e.job, day(0), day(10), materialize.Options{})
	require.NoError(t, err)
	want := expectOffline(rows, day(0), day(10))
	require.Equal(t, want, res.OfflineRows)
	require.Equal(t, day(10), res.Watermark)
	n, err := e.offline.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	require.Equal(t, want, n, "rows in the Iceberg table read back through iceberg-go")
	checkOnline(t, e, 40, expectOnline(rows, day(0), day(10)))
	run, err := e.reg.GetRun(ctx, res.RunID)
	require.NoError(t, err)
	require.Equal(t, registry.RunSucceeded, run.Status)
	require.Equal(t, int64(len(filterRows(rows, day(0), day(10)))), run.RowsRead)

	// The same interval again: same rows, same values, no duplicates.
	res2, err := materialize.Run(ctx, e.reg, e.job, day(0), day(10), materialize.Options{})
	require.NoError(t, err)
	require.NotEqual(t, res.SnapshotID, res2.SnapshotID)
	n, err = e.offline.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	require.Equal(t, want, n)
	checkOnline(t, e, 40, expectOnline(rows, day(0), day(10)))

	// Continue incrementally, with a tiny online buffer so flushes happen mid-stream: the
	// online store still ends with exactly the latest row per entity.
	iv, err := materialize.IncrementalInterval(ctx, e.reg, project, "user_stats", 0, day(20))
	require.NoError(t, err)
	require.Equal(t, day(10), iv.Start)
	_, err = materialize.Run(ctx, e.reg, e.job, iv.Start, iv.End, materialize.Options{OnlineMaxEntities: 3, OnlineBatch: 2})
	require.NoError(t, err)
	n, err = e.offline.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	require.Equal(t, expectOffline(rows, day(0), day(20)), n)
	checkOnline(t, e, 40, expectOnline(rows, day(0), day(20)))

	iv, err = materialize.IncrementalInterval(ctx, e.reg, project, "user_stats", 0, day(20))
	require.NoError(t, err)
	require.True(t, iv.UpToDate)

	// A backfill of an earlier interval leaves newer online values alone and the watermark put.
	res, err = materialize.Run(ctx, e.reg, e.job, day(0), day(5), materialize.Options{})
	require.NoError(t, err)
	require.Equal(t, day(20), res.Watermark)
	checkOnline(t, e, 40, expectOnline(rows, day(0), day(20)))
}

func filterRows(rows []srcRow, start, end time.Time) []srcRow {
	var out []srcRow
	for _, r := range rows {
		if !r.event.Before(start) && r.event.Before(end) {
			out = append(out, r)
		}
	}
	return out
}

// failingSource fails after its first batch, like a source whose server dies mid-read.
type failingSource struct{ offline.Source }

func (f failingSource) Read(ctx context.Context, vs offline.ViewSchema, r offline.Range) (offline.Stream, error) {
	s, err := f.Source.Read(ctx, vs, r)
	if err != nil {
		return nil, err
	}
	n := 0
	return offline.NewFuncStream(s.Schema(), func(ctx context.Context) (arrow.RecordBatch, error) {
		if n++; n > 1 {
			return nil, errors.New("connection reset by peer")
		}
		return s.Next(ctx)
	}, s.Close), nil
}

func TestFailingSourceLeavesStoresAndWatermark(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := genRows(2, 30, 10)
	writeParquet(t, filepath.Join(dir, "activity.parquet"), rows)
	e := openEnv(t, dir, 16)
	_, err := materialize.Run(ctx, e.reg, e.job, day(0), day(5), materialize.Options{})
	require.NoError(t, err)
	before, err := e.offline.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)

	bad := e.job
	bad.Source = failingSource{e.job.Source}
	res, err := materialize.Run(ctx, e.reg, bad, day(0), day(10), materialize.Options{})
	require.ErrorContains(t, err, "connection reset by peer")

	run, gerr := e.reg.GetRun(ctx, res.RunID)
	require.NoError(t, gerr)
	require.Equal(t, registry.RunFailed, run.Status)
	require.Contains(t, run.Error, "connection reset by peer")
	wm, gerr := e.reg.Watermark(ctx, project, "user_stats")
	require.NoError(t, gerr)
	require.Equal(t, day(5), wm.Time, "a failed run must not move the watermark")
	after, gerr := e.offline.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, gerr)
	require.Equal(t, before, after, "a failed run must not change the offline rows")
}

// slowSource sleeps before every batch and, in the child process, tells the parent when
// the first batch has gone through.
type slowSource struct {
	offline.Source
	delay  time.Duration
	signal func()
}

func (s slowSource) Read(ctx context.Context, vs offline.ViewSchema, r offline.Range) (offline.Stream, error) {
	in, err := s.Source.Read(ctx, vs, r)
	if err != nil {
		return nil, err
	}
	n := 0
	return offline.NewFuncStream(in.Schema(), func(ctx context.Context) (arrow.RecordBatch, error) {
		time.Sleep(s.delay)
		rec, err := in.Next(ctx)
		if n++; n == 3 && s.signal != nil {
			s.signal()
		}
		return rec, err
	}, in.Close), nil
}

const childEnv = "QUIVER_MATERIALIZE_KILL_CHILD"

// TestMain lets the kill test re-execute this test binary as the process to kill.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		runChild(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

func runChild(dir string) {
	t := &childTB{}
	e := openEnv(t, dir, 8)
	e.job.Source = slowSource{Source: e.job.Source, delay: 20 * time.Millisecond, signal: func() { fmt.Println("READING") }}
	_, err := materialize.Run(context.Background(), e.reg, e.job, day(0), day(10), materialize.Options{OnlineMaxEntities: 2})
	fmt.Println("FINISHED", err)
	t.cleanup()
	os.Exit(0)
}

// TestKillNineMidRun kills a materializing process with SIGKILL while it streams, then checks
// that no partial offline data is visible, the watermark did not move, and a re-run gives
// exactly the right rows and values.
func TestKillNineMidRun(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := genRows(3, 30, 10)
	writeParquet(t, filepath.Join(dir, "activity.parquet"), rows)

	// An earlier, successful run of the first days.
	e := openEnv(t, dir, 8)
	_, err := materialize.Run(ctx, e.reg, e.job, day(0), day(3), materialize.Options{})
	require.NoError(t, err)
	before, err := e.offline.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)

	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(out)
	require.True(t, lines.Scan(), "child said nothing")
	require.Equal(t, "READING", lines.Text())
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	_, _ = io.Copy(io.Discard, out)

	n, err := e.offline.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	require.Equal(t, before, n, "a killed run must leave no half-visible offline rows")
	wm, err := e.reg.Watermark(ctx, project, "user_stats")
	require.NoError(t, err)
	require.Equal(t, day(3), wm.Time, "a killed run must not move the watermark")
	runs, err := e.reg.ListRuns(ctx, registry.RunFilter{Project: project, View: "user_stats"})
	require.NoError(t, err)
	require.Equal(t, registry.RunRunning, runs[0].Status, "the killed run is left RUNNING: nothing could mark it")

	// Re-run the killed interval: exactly right.
	res, err := materialize.Run(ctx, e.reg, e.job, day(0), day(10), materialize.Options{})
	require.NoError(t, err)
	require.Equal(t, expectOffline(rows, day(0), day(10)), res.OfflineRows)
	n, err = e.offline.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	require.Equal(t, expectOffline(rows, day(0), day(10)), n)
	checkOnline(t, e, 30, expectOnline(rows, day(0), day(10)))
	require.Equal(t, day(10), res.Watermark)
}

// childTB lets openEnv run outside a test, in the child process.
type childTB struct {
	testing.TB
	cleanups []func()
}

func (c *childTB) Helper()                      {}
func (c *childTB) Cleanup(f func())             { c.cleanups = append(c.cleanups, f) }
func (c *childTB) Errorf(f string, args ...any) { fmt.Fprintf(os.Stderr, f+"\n", args...) }
func (c *childTB) FailNow()                     { os.Exit(3) }
func (c *childTB) cleanup() {
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
}
