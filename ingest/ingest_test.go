package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/embedded"
	"github.com/quiverfs/quiver/online/redis"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const defs = `
entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: clicks_push
    push: {}
    timestamp_field: ts
    created_timestamp_field: created
feature_views:
  - name: user_clicks
    entities: [user]
    source: clicks_push
    features:
      - { name: clicks, type: int64 }
      - { name: score, type: float64 }
      - { name: tags, type: "array<string>" }
`

func repo(t testing.TB) *definitions.Repo {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "features.yaml"), []byte(defs), 0o644))
	r, err := definitions.Load(dir)
	require.NoError(t, err)
	return r
}

type env struct {
	views *ingest.ViewSet
	view  *ingest.View
	off   *iceberg.Store
	on    online.Store
}

func newEnv(t *testing.T, on online.Store) *env {
	t.Helper()
	dir := t.TempDir()
	cat, err := iceberg.OpenCatalog(context.Background(), iceberg.CatalogConfig{URI: "sqlite://" + filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")})
	require.NoError(t, err)
	t.Cleanup(func() { cat.Close() })
	off, err := iceberg.NewStore(context.Background(), cat, iceberg.StoreOptions{Namespace: "shop"})
	require.NoError(t, err)
	set, err := ingest.NewViewSet("shop", repo(t), func(string) int { return 1 })
	require.NoError(t, err)
	v, err := set.View("user_clicks")
	require.NoError(t, err)
	return &env{views: set, view: v, off: off, on: on}
}

func openEmbedded(t *testing.T) online.Store {
	s, err := embedded.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "online.db"), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func openRedis(t *testing.T) online.Store {
	r := testenv.StartRedis(t)
	s, err := redis.Open(context.Background(), "redis://"+r.Addr+"/0", redis.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// batch makes n rows for users 0..n-1 with clicks = base+i at event time at.
func batch(n int, base int64, at time.Time) ingest.Batch {
	b := ingest.Batch{Columns: map[string][]online.Value{}}
	for i := range n {
		b.Columns["user_id"] = append(b.Columns["user_id"], online.Int64(int64(i)))
		b.Columns["clicks"] = append(b.Columns["clicks"], online.Int64(base+int64(i)))
		b.Columns["score"] = append(b.Columns["score"], online.Float64(float64(i)/2))
		b.Columns["tags"] = append(b.Columns["tags"], online.Strings([]string{"a", "b"}))
		b.EventTS = append(b.EventTS, at)
	}
	return b
}

func readClicks(t *testing.T, e *env, users ...int64) ([]int64, []online.Status) {
	t.Helper()
	keys := make([]online.EntityKey, len(users))
	for i, u := range users {
		k, err := e.view.Online.Key(online.Int64(u))
		require.NoError(t, err)
		keys[i] = k
	}
	idx, err := e.view.Online.FeatureIndexes("clicks")
	require.NoError(t, err)
	res, err := e.on.Read(context.Background(), online.ReadRequest{Views: []online.ViewRead{{View: e.view.Online, Features: idx, Keys: keys}}})
	require.NoError(t, err)
	out := make([]int64, len(users))
	for i := range users {
		out[i] = res.Columns[0].Values[i].Int64()
	}
	return out, res.Columns[0].Statuses
}

func offlineCount(t *testing.T, e *env) int64 {
	t.Helper()
	n, err := e.off.Count(context.Background(), "user_clicks", offline.ScanRequest{})
	require.NoError(t, err)
	return n
}

func TestPushServedAtOnceAndCommitted(t *testing.T) {
	for name, open := range map[string]func(*testing.T) online.Store{"embedded": openEmbedded, "redis": openRedis} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, open(t))
			in, err := ingest.Open(e.views, e.on, e.off, ingest.Options{LogDir: t.TempDir()})
			require.NoError(t, err)
			defer in.Close()

			res, err := in.Push(ctx, "user_clicks", batch(10, 100, t0))
			require.NoError(t, err)
			require.Equal(t, int64(10), res.Rows)
			got, st := readClicks(t, e, 3, 9)
			require.Equal(t, []int64{103, 109}, got, "served at once, before any offline commit")
			require.Equal(t, online.Present, st[0])

			// An older event for the same entity does not overwrite the newer value.
			_, err = in.Push(ctx, "user_clicks", batch(10, 500, t0.Add(-time.Hour)))
			require.NoError(t, err)
			got, _ = readClicks(t, e, 3)
			require.Equal(t, []int64{103}, got)

			_, err = e.off.Count(ctx, "user_clicks", offline.ScanRequest{})
			require.ErrorIs(t, err, offline.ErrTableNotFound, "nothing offline before the commit")
			cr, err := in.Commit(ctx)
			require.NoError(t, err)
			require.Equal(t, 2, cr.Batches)
			require.Equal(t, int64(20), offlineCount(t, e))
			require.False(t, in.Pending())

			// A second commit has nothing to do.
			cr, err = in.Commit(ctx)
			require.NoError(t, err)
			require.Equal(t, 0, cr.Batches)
			require.Equal(t, int64(20), offlineCount(t, e))
		})
	}
}

func TestPushRefusesBadBatchWhole(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, openEmbedded(t))
	in, err := ingest.Open(e.views, e.on, e.off, ingest.Options{LogDir: t.TempDir()})
	require.NoError(t, err)
	defer in.Close()

	cases := []struct {
		name string
		edit func(b *ingest.Batch)
		want []string
	}{
		{"wrong type", func(b *ingest.Batch) { b.Columns["clicks"][2] = online.String("many") }, []string{`column "clicks"`, "row 2", "string", "int64"}},
		{"null join key", func(b *ingest.Batch) { b.Columns["user_id"][3] = online.Null() }, []string{`column "user_id"`, "row 3", "join key is null"}},
		{"missing event time", func(b *ingest.Batch) { b.EventTS[1] = time.Time{} }, []string{"row 1", "event timestamp missing"}},
		{"unknown column", func(b *ingest.Batch) { b.Columns["clickz"] = b.Columns["clicks"] }, []string{`unknown column "clickz"`, "clicks"}},
		{"missing feature", func(b *ingest.Batch) { delete(b.Columns, "score") }, []string{`feature column "score" missing`}},
		{"missing join key", func(b *ingest.Batch) { delete(b.Columns, "user_id") }, []string{`join key column "user_id" missing`}},
		{"ragged", func(b *ingest.Batch) { b.Columns["score"] = b.Columns["score"][:4] }, []string{`column "score" has 4 values for 5 rows`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := batch(5, 100, t0)
			c.edit(&b)
			_, err := in.Push(ctx, "user_clicks", b)
			require.ErrorIs(t, err, ingest.ErrInvalidBatch)
			require.ErrorIs(t, err, definitions.ErrInvalid)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
	_, st := readClicks(t, e, 0, 1, 4)
	require.Equal(t, []online.Status{online.NotFound, online.NotFound, online.NotFound}, st, "no row of a refused batch is written")
	require.False(t, in.Pending(), "no refused batch is logged")

	_, err = in.Push(ctx, "nope", batch(1, 0, t0))
	require.ErrorIs(t, err, ingest.ErrUnknownView)
	require.True(t, strings.Contains(err.Error(), "user_clicks"), err.Error())
}

// TestRecoveryCommitsOnceAfterCrash: batches logged by a process that died before its commit
// are committed by the next; a crash after the commit but before the log was truncated does
// not commit them twice; a torn last frame (never acknowledged) is ignored.
func TestRecoveryCommitsOnceAfterCrash(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, openEmbedded(t))
	dir := t.TempDir()
	in, err := ingest.Open(e.views, e.on, e.off, ingest.Options{LogDir: dir})
	require.NoError(t, err)
	for i := range 5 {
		_, err := in.Push(ctx, "user_clicks", batch(100, int64(i*1000), t0.Add(time.Duration(i)*time.Minute)))
		require.NoError(t, err)
	}
	require.NoError(t, in.Close()) // "crash": nothing committed
	// A torn frame at the end of the last segment, as a kill during a write leaves it.
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	require.NotEmpty(t, segs)
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{0, 0, 1, 0, 9, 9, 9})
	require.NoError(t, err)
	require.NoError(t, f.Close())

	// Keep a copy of the log to bring back after the commit: a crash between the Iceberg
	// commit and the log's truncation.
	saved := t.TempDir()
	copyDir(t, dir, saved)

	in, err = ingest.Open(e.views, e.on, e.off, ingest.Options{LogDir: dir})
	require.NoError(t, err)
	cr, err := in.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, 5, cr.Batches)
	require.Equal(t, int64(500), offlineCount(t, e))
	require.NoError(t, in.Close())

	copyDir(t, saved, dir)
	in, err = ingest.Open(e.views, e.on, e.off, ingest.Options{LogDir: dir})
	require.NoError(t, err)
	cr, err = in.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, cr.Batches, "the table records the log's last committed sequence number")
	require.Equal(t, int64(500), offlineCount(t, e))
	// New pushes continue after the old sequence numbers and are committed.
	res, err := in.Push(ctx, "user_clicks", batch(7, 0, t0.Add(time.Hour)))
	require.NoError(t, err)
	require.Greater(t, res.Seq, uint64(5))
	_, err = in.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(507), offlineCount(t, e))
	require.NoError(t, in.Close())
}

func TestLogLockedByOneProcess(t *testing.T) {
	e := newEnv(t, openEmbedded(t))
	dir := t.TempDir()
	in, err := ingest.Open(e.views, e.on, e.off, ingest.Options{LogDir: dir})
	require.NoError(t, err)
	defer in.Close()
	_, err = ingest.Open(e.views, e.on, e.off, ingest.Options{LogDir: dir})
	require.ErrorIs(t, err, ingest.ErrLogLocked)
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, en := range ents {
		if en.Name() == "lock" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, en.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, en.Name()), b, 0o644))
	}
}
