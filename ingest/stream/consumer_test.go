package stream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
)

// crashAfterCommit is an offline store whose next Append, once armed, commits for real and
// then fails: the state a consumer killed between its offline commit and its offset commit
// leaves behind (the rows in the table, the group's offsets not moved).
type crashAfterCommit struct {
	ingest.Offline
	armed atomic.Bool
}

func (c *crashAfterCommit) Append(ctx context.Context, vs offline.ViewSchema, rows offline.Stream, props map[string]string) (offline.WriteResult, error) {
	res, err := c.Offline.Append(ctx, vs, rows, props)
	if err == nil && c.armed.CompareAndSwap(true, false) {
		return res, errors.New("killed after the offline commit")
	}
	return res, err
}

// TestTwoConsumersOneGroupTakeOverCommittedRows: two consumers of one group on the real Kafka
// broker share a topic's partitions. One commits its rows offline and dies before committing
// the offsets; the other takes its partitions over, gets those messages again from the
// group's offsets, and must not append them a second time: it reads what the table records
// of the partitions it is assigned, not only what it knew when it started.
func TestTwoConsumersOneGroupTakeOverCommittedRows(t *testing.T) {
	k := testenv.SharedKafka(t)
	topic := k.NewTopic(t, 2)
	group := "g-" + topic
	ctx := context.Background()

	v, src, store := clicksView(t, k, topic, group)

	crashing := &crashAfterCommit{Offline: store}
	crashing.armed.Store(true)
	opts := Options{CommitInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second}
	a, err := New(v, src, &ingest.Writer{Offline: crashing}, opts)
	require.NoError(t, err)
	b, err := New(v, src, &ingest.Writer{Offline: store}, opts)
	require.NoError(t, err)

	bctx, stopB := context.WithCancel(ctx)
	aDone, bDone := make(chan error, 1), make(chan error, 1)
	go func() { aDone <- a.Run(ctx) }()
	go func() { bDone <- b.Run(bctx) }()
	defer func() {
		stopB()
		<-bDone
	}()

	cl := k.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	waitUntil(t, "both consumers in the group, one partition each", func() bool {
		d, err := adm.DescribeGroups(ctx, group)
		if err != nil || d[group].State != "Stable" || len(d[group].Members) != 2 {
			return false
		}
		for _, m := range d[group].Members {
			if c, ok := m.Assigned.AsConsumer(); !ok || len(c.Topics) != 1 || len(c.Topics[0].Partitions) != 1 {
				return false
			}
		}
		return true
	})

	const n = 2000
	var recs []*kgo.Record
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: fmt.Appendf(nil, `{"uid": %d, "clicks": %d, "ts": %q}`, i%100, i, t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339))})
	}
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())

	select {
	case err := <-aDone:
		require.ErrorContains(t, err, "killed after the offline commit")
	case <-time.After(60 * time.Second):
		t.Fatal("the crashing consumer did not stop")
	}
	require.False(t, crashing.armed.Load(), "the crashing consumer committed offline once")

	ends, err := adm.ListEndOffsets(ctx, topic)
	require.NoError(t, err)
	waitUntil(t, "the group's offsets at the end of both partitions", func() bool {
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		for p := range int32(2) {
			end, _ := ends.Lookup(topic, p)
			if c, ok := committed.Lookup(topic, p); !ok || c.At != end.Offset {
				return false
			}
		}
		return true
	})

	st, err := store.Scan(ctx, "v", offline.ScanRequest{Columns: []string{"user_id", "event_ts"}})
	require.NoError(t, err)
	tbl, err := offline.ReadAll(ctx, st)
	require.NoError(t, err)
	defer tbl.Release()
	require.EqualValues(t, n, tbl.NumRows(), "every message is one row offline, none twice")
}

// clicksView is a view v of user clicks on a kafka source s (topic, group of k), and its
// offline store in a fresh SQLite catalog and warehouse.
func clicksView(t *testing.T, k *testenv.Kafka, topic, group string) (*ingest.View, *definitions.Source, *iceberg.Store) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	yaml := fmt.Sprintf(`entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: s
    kafka: { brokers: [%s], topic: %s, group: %s, fields: { user_id: uid } }
    timestamp_field: ts
feature_views:
  - name: v
    entities: [user]
    source: s
    features:
      - { name: clicks, type: int64 }
`, k.Addr, topic, group)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f.yaml"), []byte(yaml), 0o644))
	repo, err := definitions.Load(dir)
	require.NoError(t, err)
	v, err := ingest.NewView("p", repo, repo.FeatureView("v"), 1)
	require.NoError(t, err)
	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: "sqlite://" + filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cat.Close() })
	store, err := iceberg.NewStore(ctx, cat, iceberg.StoreOptions{Namespace: "p"})
	require.NoError(t, err)
	return v, repo.Source("s"), store
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopAfterCommit is an offline store whose first Append commits for real and then cancels
// the consumer's context: a SIGTERM arriving between the offline commit and the offset commit.
type stopAfterCommit struct {
	ingest.Offline
	stop func()
	once atomic.Bool
}

func (s *stopAfterCommit) Append(ctx context.Context, vs offline.ViewSchema, rows offline.Stream, props map[string]string) (offline.WriteResult, error) {
	res, err := s.Offline.Append(ctx, vs, rows, props)
	if err == nil && s.once.CompareAndSwap(false, true) {
		s.stop()
	}
	return res, err
}

// TestStopBetweenOfflineAndOffsetCommit: a consumer told to stop while it commits ends
// cleanly (not "commit offsets: context canceled", exit 4 from quiver stream) and commits the
// offsets of the rows it committed offline, so the next start does not consume them again.
func TestStopBetweenOfflineAndOffsetCommit(t *testing.T) {
	k := testenv.SharedKafka(t)
	topic := k.NewTopic(t, 1)
	group := "g-" + topic
	ctx := context.Background()

	v, src, store := clicksView(t, k, topic, group)

	const n = 500
	cl := k.Client(t)
	var recs []*kgo.Record
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, `{"uid": %d, "clicks": %d, "ts": %q}`, i%50, i, t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339))})
	}
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	c, err := New(v, src, &ingest.Writer{Offline: &stopAfterCommit{Offline: store, stop: stop}}, Options{CommitInterval: 100 * time.Millisecond, MaxPending: n})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	select {
	case err := <-done:
		require.NoError(t, err, "a stop during a commit is a clean stop")
	case <-time.After(60 * time.Second):
		t.Fatal("the consumer did not stop")
	}

	snaps, err := store.Snapshots(ctx, "v", 1)
	require.NoError(t, err)
	next, err := offline.StreamOffsets(snaps, group, topic)
	require.NoError(t, err)
	require.NotEmpty(t, next, "the consumer committed rows offline")
	committed, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	require.NoError(t, err)
	o, ok := committed.Lookup(topic, 0)
	require.True(t, ok, "the group committed its offsets")
	require.Equal(t, next[0], o.At, "the group's offset is where the offline commit left it")
}
