package ingest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
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

func repo(t testing.TB) *definitions.Repo { return repoFrom(t, defs) }

func repoFrom(t testing.TB, defs string) *definitions.Repo {
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
	// A torn frame at the end of the last segment, as a kill during a write leaves it: the
	// first bytes of a frame (frames start after the segment's 8-byte header).
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	require.NotEmpty(t, segs)
	seg, err := os.ReadFile(segs[len(segs)-1])
	require.NoError(t, err)
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write(seg[8:60])
	require.NoError(t, err)
	require.NoError(t, f.Close())
	firstLog := in.LogID()

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
	// New pushes are logged under a new log id, so their sequence numbers cannot be taken for
	// the old ones, and are committed.
	require.NotEqual(t, firstLog, in.LogID())
	_, err = in.Push(ctx, "user_clicks", batch(7, 0, t0.Add(time.Hour)))
	require.NoError(t, err)
	_, err = in.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(507), offlineCount(t, e))
	require.NoDirExists(t, filepath.Join(dir, "quarantine"), "a torn last frame is no damage")
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

// logTo returns a logger writing JSON lines to buf.
func logTo(buf *bytes.Buffer) *slog.Logger { return slog.New(slog.NewJSONHandler(buf, nil)) }

func segments(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	require.NoError(t, err)
	return segs
}

// TestCleanRestartCommitsNewPushes is issue 22 item 1 in one process: after a clean shutdown
// the log holds no segment; the next Open must not hand out sequence numbers the offline
// table already records for its log, or the committer skips the new batches.
func TestCleanRestartCommitsNewPushes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, openEmbedded(t))
	dir := t.TempDir()
	var logs bytes.Buffer
	for round := range 3 {
		in, err := ingest.Open(e.views, e.on, e.off, ingest.Options{LogDir: dir, Logger: logTo(&logs)})
		require.NoError(t, err)
		for i := range 2 {
			_, err := in.Push(ctx, "user_clicks", batch(50, 0, t0.Add(time.Duration(round*10+i)*time.Minute)))
			require.NoError(t, err)
		}
		cr, err := in.Commit(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, cr.Batches, "round %d", round)
		require.NoError(t, in.Close())
		require.Empty(t, segments(t, dir), "a clean shutdown leaves no segment")
	}
	require.Equal(t, int64(300), offlineCount(t, e))
	require.NotContains(t, logs.String(), "not committing logged batches again")
}

// TestCorruptFrameInTheMiddle is issue 22 item 4: one byte flipped in the middle of a real
// segment of ten logged batches. Replay commits the nine valid batches, logs an error naming
// the segment and the damaged offset, and moves the segment into quarantine instead of
// deleting it.
func TestCorruptFrameInTheMiddle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, openEmbedded(t))
	dir := t.TempDir()
	in, err := ingest.Open(e.views, e.on, e.off, ingest.Options{LogDir: dir})
	require.NoError(t, err)
	for i := range 10 {
		_, err := in.Push(ctx, "user_clicks", batch(100, int64(i*1000), t0.Add(time.Duration(i)*time.Minute)))
		require.NoError(t, err)
	}
	require.NoError(t, in.Close()) // a crash: nothing committed
	segs := segments(t, dir)
	require.Len(t, segs, 1)
	b, err := os.ReadFile(segs[0])
	require.NoError(t, err)
	b[len(b)/2] ^= 0xFF
	require.NoError(t, os.WriteFile(segs[0], b, 0o644))

	var logs bytes.Buffer
	in, err = ingest.Open(e.views, e.on, e.off, ingest.Options{LogDir: dir, Logger: logTo(&logs)})
	require.NoError(t, err)
	defer in.Close()
	cr, err := in.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, 9, cr.Batches, "every valid frame, also those after the damaged one")
	require.Equal(t, int64(900), offlineCount(t, e))
	require.Contains(t, logs.String(), `"level":"ERROR"`)
	require.Contains(t, logs.String(), "push log segment damaged")
	require.Contains(t, logs.String(), segs[0], "the error names the segment")
	require.Contains(t, logs.String(), `"damaged_at":"`, "and the offset")
	quarantined := filepath.Join(dir, "quarantine", filepath.Base(segs[0]))
	require.Equal(t, []string{quarantined}, cr.Quarantined)
	got, err := os.ReadFile(quarantined)
	require.NoError(t, err, "the segment is kept in quarantine")
	require.Equal(t, b, got)
	require.NotContains(t, segments(t, dir), segs[0])
}

// TestRandomSegmentIsQuarantined is issue 22 item 4: segments of random bytes, of the current
// and of the first format, are moved into quarantine with a logged error, never deleted
// without a word; the log goes on.
func TestRandomSegmentIsQuarantined(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, openEmbedded(t))
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(22, 4))
	junk := func() []byte {
		b := make([]byte, 4096)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	names := []string{"00000000000000000042.wal", "00000000000000000043-0123456789abcdef01234567.wal"}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "log-id"), []byte("00aa11bb22cc33dd\n"), 0o644))
	for _, n := range names {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), junk(), 0o644))
	}
	var logs bytes.Buffer
	in, err := ingest.Open(e.views, e.on, e.off, ingest.Options{LogDir: dir, Logger: logTo(&logs)})
	require.NoError(t, err)
	defer in.Close()
	_, err = in.Push(ctx, "user_clicks", batch(10, 0, t0))
	require.NoError(t, err)
	cr, err := in.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, cr.Batches)
	require.Equal(t, int64(10), offlineCount(t, e))
	require.Len(t, cr.Quarantined, 2)
	for _, n := range names {
		require.Contains(t, logs.String(), filepath.Join(dir, n))
		require.NoFileExists(t, filepath.Join(dir, n))
	}
	q, err := os.ReadDir(filepath.Join(dir, "quarantine"))
	require.NoError(t, err)
	require.Len(t, q, 2)
	require.Equal(t, 2, strings.Count(logs.String(), `"level":"ERROR"`), logs.String())
}

// TestFirstFormatSegmentIsCommitted: a segment written before frames had markers (length,
// CRC-32C, payload; its log id in the file log-id) is committed after an upgrade, and not
// twice when the log is replayed again.
func TestFirstFormatSegmentIsCommitted(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, openEmbedded(t))
	dir := t.TempDir()
	var seg []byte
	for i := range 3 {
		rec, err := e.view.Build(batch(20, int64(i*100), t0.Add(time.Duration(i)*time.Hour)), nil)
		require.NoError(t, err)
		var body bytes.Buffer
		w := ipc.NewWriter(&body, ipc.WithSchema(rec.Schema()))
		require.NoError(t, w.Write(rec))
		require.NoError(t, w.Close())
		rec.Release()
		hdr := fmt.Sprintf(`{"seq":%d,"view":"user_clicks","generation":1,"rows":20,"acked_micros":1}`, i+1)
		payload := binary.BigEndian.AppendUint32(nil, uint32(len(hdr)))
		payload = append(append(payload, hdr...), body.Bytes()...)
		seg = binary.BigEndian.AppendUint32(seg, uint32(len(payload)))
		seg = binary.BigEndian.AppendUint32(seg, crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
		seg = append(seg, payload...)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "log-id"), []byte("00aa11bb22cc33dd\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "00000000000000000001.wal"), seg, 0o644))
	saved := t.TempDir()
	copyDir(t, dir, saved)
	for range 2 {
		in, err := ingest.Open(e.views, e.on, e.off, ingest.Options{LogDir: dir})
		require.NoError(t, err)
		_, err = in.Commit(ctx)
		require.NoError(t, err)
		require.NoError(t, in.Close())
		require.Equal(t, int64(60), offlineCount(t, e))
		require.Empty(t, segments(t, dir))
		require.NoFileExists(t, filepath.Join(dir, "log-id"), "no first-format segment is left")
		copyDir(t, saved, dir) // a crash before the truncation: replayed, not committed twice
	}
}

const widenedDefs = `
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
      - { name: clicks, type: int32 }
      - { name: score, type: float64 }
      - { name: tags, type: "array<string>" }
`

// TestCompatibleChangeWithLoggedRows: batches logged before a compatible change of the view
// (a feature added, int32 widened to int64; the generation stays) are committed after it, the
// new feature null and the narrower column widened, instead of failing forever.
func TestCompatibleChangeWithLoggedRows(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, openEmbedded(t))
	dir := t.TempDir()
	old := repoFrom(t, widenedDefs)
	oldSet, err := ingest.NewViewSet("shop", old, func(string) int { return 1 })
	require.NoError(t, err)
	in, err := ingest.Open(oldSet, e.on, e.off, ingest.Options{LogDir: dir})
	require.NoError(t, err)
	defer in.Close()
	_, err = in.Push(ctx, "user_clicks", batch(10, 0, t0))
	require.NoError(t, err)
	added := repoFrom(t, defs+"      - { name: extra, type: string }\n")
	set, err := ingest.NewViewSet("shop", added, func(string) int { return 1 })
	require.NoError(t, err)
	in.SetViews(set)
	cr, err := in.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, cr.Batches)
	require.Equal(t, int64(10), offlineCount(t, e))
}
