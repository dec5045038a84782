package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline/iceberg"
)

// TestRealKafka is issue 30's Kafka acceptance (item 5) against the real broker, Kafka 4.4 in
// KRaft mode (internal/testenv, shared by the test run), with the registry and the Iceberg
// catalog on PostgreSQL and the online store on Redis: 100,000 messages over 4 partitions,
// consumed by real quiver stream processes that are killed with SIGKILL mid-stream.
func TestRealKafka(t *testing.T) {
	k := testenv.SharedKafka(t)
	pg := testenv.StartPostgres(t)
	t.Run("KilledTwice", func(t *testing.T) { testRealKafkaKilledTwice(t, newKafkaLake(t, k, pg)) })
	t.Run("TwoProcessesOneGroup", func(t *testing.T) { testRealKafkaTwoProcesses(t, newKafkaLake(t, k, pg)) })
}

const (
	rkUsers      = 1000
	rkMessages   = 100_000
	rkPartitions = 4
)

// kafkaLake is one subtest's topic, consumer group, feature repo and stores.
type kafkaLake struct {
	k        *testenv.Kafka
	topic    string
	group    string
	dir      string
	env      map[string]string
	dbURL    string
	wh       string
	producer *kgo.Client
	adm      *kadm.Client
}

func newKafkaLake(t *testing.T, k *testenv.Kafka, pg *testenv.Postgres) *kafkaLake {
	t.Helper()
	l := &kafkaLake{k: k, topic: k.NewTopic(t, rkPartitions), dbURL: pg.NewDatabase(t), wh: filepath.Join(t.TempDir(), "warehouse")}
	l.group = "quiver-" + l.topic
	l.producer = k.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	l.adm = kadm.NewClient(l.producer)
	l.dir = filepath.Join(t.TempDir(), "shop")
	l.env = map[string]string{
		"QUIVER_REGISTRY":  l.dbURL,
		"QUIVER_WAREHOUSE": l.wh,
		"QUIVER_ONLINE":    "redis://" + testenv.StartRedis(t).Addr + "/0",
	}
	writeFile(t, filepath.Join(l.dir, "quiver.yaml"), "project: shop\ndefinitions: [features]\n")
	writeFile(t, filepath.Join(l.dir, "features", "stream.yaml"), fmt.Sprintf(`entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: clicks_stream
    kafka:
      brokers: [%s]
      topic: %s
      group: %s
      fields: { user_id: uid }
    timestamp_field: ts
feature_views:
  - name: user_stream
    entities: [user]
    source: clicks_stream
    online: true
    features:
      - { name: clicks, type: int64 }
      - { name: page, type: string }
`, k.Addr, l.topic, l.group))
	r := quiver(t, l.env, "-C", l.dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	return l
}

// produce sends messages [from, to): message i is user i%1000, clicks i, event time t0 + i ms,
// on partition user%4; the latest row of user u is the one with the greatest i.
func (l *kafkaLake) produce(t *testing.T, from, to int) {
	t.Helper()
	recs := make([]*kgo.Record, 0, to-from)
	for i := from; i < to; i++ {
		u := i % rkUsers
		v := fmt.Sprintf(`{"uid": %d, "clicks": %d, "page": "p%d", "ts": %q}`, u, i, i%13, streamT0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano))
		recs = append(recs, &kgo.Record{Topic: l.topic, Partition: int32(u % rkPartitions), Key: []byte(strconv.Itoa(u)), Value: []byte(v)})
	}
	require.NoError(t, l.producer.ProduceSync(context.Background(), recs...).FirstErr())
}

// stream starts a real quiver stream (this test binary as the CLI) serving /metrics on
// metricsAddr.
func (l *kafkaLake) stream(t *testing.T, metricsAddr string) *osProcess {
	t.Helper()
	cmd, _ := quiverProcess(t, l.env, "-C", l.dir, "stream", "user_stream", "--commit-interval", "200ms", "--session-timeout", "6s", "--metrics-addr", metricsAddr)
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // a failed test leaves no consumer behind
	return &osProcess{cmd.Process.Pid, cmd.Wait}
}

func (l *kafkaLake) table(t *testing.T) (*table.Table, func()) {
	t.Helper()
	ctx := context.Background()
	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: l.dbURL, Warehouse: l.wh})
	require.NoError(t, err)
	tbl, err := cat.Iceberg().LoadTable(ctx, table.Identifier{iceberg.ProjectNamespace("shop"), "user_stream"})
	if err != nil {
		cat.Close()
		return nil, nil
	}
	return tbl, func() { cat.Close() }
}

// committedRows is the row count the table's current snapshot records (cheap: no scan); -1
// before the first commit.
func (l *kafkaLake) committedRows(t *testing.T) int {
	t.Helper()
	tbl, done := l.table(t)
	if tbl == nil {
		return -1
	}
	defer done()
	snap := tbl.CurrentSnapshot()
	if snap == nil || snap.Summary == nil {
		return 0
	}
	n, err := strconv.Atoi(snap.Summary.Properties["total-records"])
	require.NoError(t, err)
	return n
}

// offlineRows scans the whole table and returns its rows' clicks (each message's i), sorted;
// a (user_id, event_ts) found twice fails the test.
func (l *kafkaLake) offlineRows(t *testing.T) []int64 {
	t.Helper()
	tbl, done := l.table(t)
	require.NotNil(t, tbl, "the offline table exists")
	defer done()
	at, err := tbl.Scan(table.WithSelectedFields("user_id", "event_ts", "clicks")).ToArrowTable(context.Background())
	require.NoError(t, err)
	defer at.Release()
	seen := map[string]bool{}
	var clicks []int64
	tr := array.NewTableReader(at, 0)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := range int(rec.NumRows()) {
			key := rec.Column(0).ValueStr(i) + "/" + rec.Column(1).ValueStr(i)
			require.False(t, seen[key], "row %s is in the offline table twice", key)
			seen[key] = true
			clicks = append(clicks, rec.Column(2).(*array.Int64).Value(i))
		}
	}
	sort.Slice(clicks, func(a, b int) bool { return clicks[a] < clicks[b] })
	return clicks
}

// waitRows polls the table's committed row count until it reaches n.
func (l *kafkaLake) waitRows(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := l.committedRows(t)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %d rows offline (%d)", d, n, got)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// checkStores asserts what the stores and the group hold once every message was consumed:
// every row offline exactly once, the group's offsets committed to the end of every partition,
// and the latest row of every user online.
func (l *kafkaLake) checkStores(t *testing.T) {
	t.Helper()
	clicks := l.offlineRows(t)
	require.Len(t, clicks, rkMessages, "every message is one row offline")
	for i, c := range clicks {
		if int64(i) != c {
			t.Fatalf("offline rows: the %dth smallest clicks is %d: a message is missing", i, c)
		}
	}

	ctx := context.Background()
	ends, err := l.adm.ListEndOffsets(ctx, l.topic)
	require.NoError(t, err)
	committed, err := l.adm.FetchOffsets(ctx, l.group)
	require.NoError(t, err)
	for p := range int32(rkPartitions) {
		end, ok := ends.Lookup(l.topic, p)
		require.True(t, ok)
		c, ok := committed.Lookup(l.topic, p)
		require.True(t, ok, "partition %d has a committed offset", p)
		require.Equal(t, end.Offset, c.At, "partition %d: committed offset at the end", p)
	}

	args := []string{"-C", l.dir, "-o", "json", "get-online", "--feature", "user_stream:clicks"}
	for u := range rkUsers {
		args = append(args, "--entity", "user_id="+strconv.Itoa(u))
	}
	r := quiver(t, l.env, args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var out struct {
		Features []struct {
			Values struct {
				Int64 struct {
					Val []string `json:"val"`
				} `json:"int64_values"`
			} `json:"values"`
		} `json:"features"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	got := out.Features[0].Values.Int64.Val
	require.Len(t, got, rkUsers)
	for u := range rkUsers {
		require.Equal(t, strconv.Itoa(rkMessages-rkUsers+u), got[u], "user %d online", u)
	}
}

// waitCommitted waits until the group's committed offsets reach the end of every partition.
func (l *kafkaLake) waitCommitted(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ends, err := l.adm.ListEndOffsets(ctx, l.topic)
	require.NoError(t, err)
	waitFor(t, "offsets committed to the end", 60*time.Second, func() bool {
		committed, err := l.adm.FetchOffsets(ctx, l.group)
		if err != nil {
			return false
		}
		for p := range int32(rkPartitions) {
			end, _ := ends.Lookup(l.topic, p)
			c, ok := committed.Lookup(l.topic, p)
			if !ok || c.At != end.Offset {
				return false
			}
		}
		return true
	})
}

// assignments is the group's members and the partitions each is assigned, by member id.
func (l *kafkaLake) assignments(t *testing.T) map[string][]int32 {
	t.Helper()
	described, err := l.adm.DescribeGroups(context.Background(), l.group)
	require.NoError(t, err)
	out := map[string][]int32{}
	g, ok := described[l.group]
	if !ok || g.Err != nil || g.State != "Stable" {
		return out
	}
	for _, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		var ps []int32
		for _, tp := range a.Topics {
			if tp.Topic == l.topic {
				ps = append(ps, tp.Partitions...)
			}
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		out[m.MemberID] = ps
	}
	return out
}

var rowsConsumed = regexp.MustCompile(`quiver_stream_messages_total\{result="row",view="user_stream"\} (\d+)`)

// consumedRows is the rows a quiver stream says it consumed (its /metrics); 0 before any, or
// before it serves /metrics.
func consumedRows(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := rowsConsumed.FindStringSubmatch(string(body))
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

func metricsAddr(t *testing.T) string {
	t.Helper()
	port, err := testenv.FreePort()
	require.NoError(t, err)
	return "127.0.0.1:" + strconv.Itoa(port)
}

// testRealKafkaKilledTwice: one quiver stream killed with SIGKILL twice mid-stream (after its
// first offline commit, with most of the topic still to consume; then as soon as the restarted
// one consumed rows) and restarted: afterwards
// every message is one row offline, the latest row per user online, and the offsets committed.
func testRealKafkaKilledTwice(t *testing.T, l *kafkaLake) {
	addr := metricsAddr(t)
	kill := func(p *osProcess, atLeast int) int {
		l.waitRows(t, atLeast, 90*time.Second)
		require.NoError(t, syscall.Kill(p.pid, syscall.SIGKILL))
		_ = p.wait()
		return l.committedRows(t)
	}
	l.produce(t, 0, 90_000)
	first := kill(l.stream(t, addr), 1)
	// The second is killed as soon as it consumed rows, before or around its first commit.
	p := l.stream(t, addr)
	waitFor(t, "the second quiver stream consumed rows", 60*time.Second, func() bool { return consumedRows(t, addr) > 0 })
	require.NoError(t, syscall.Kill(p.pid, syscall.SIGKILL))
	_ = p.wait()
	second := l.committedRows(t)
	t.Logf("killed twice: %d rows offline at the first kill, %d at the second (of 90,000 produced)", first, second)
	l.produce(t, 90_000, rkMessages)
	last := l.stream(t, addr)
	l.waitRows(t, rkMessages, 120*time.Second)
	l.waitCommitted(t)
	require.NoError(t, syscall.Kill(last.pid, syscall.SIGTERM))
	require.NoError(t, last.wait())
	l.checkStores(t)
}

// testRealKafkaTwoProcesses: two quiver stream processes in one consumer group share the
// partitions (each consumes); one is killed with SIGKILL, the other takes over its partitions;
// every message is still one row offline.
func testRealKafkaTwoProcesses(t *testing.T, l *kafkaLake) {
	addrA, addrB := metricsAddr(t), metricsAddr(t)
	a := l.stream(t, addrA)
	b := l.stream(t, addrB)
	waitFor(t, "two members sharing the 4 partitions", 60*time.Second, func() bool {
		as := l.assignments(t)
		if len(as) != 2 {
			return false
		}
		n := 0
		for _, ps := range as {
			if len(ps) == 0 {
				return false
			}
			n += len(ps)
		}
		return n == rkPartitions
	})
	t.Logf("assignments: %v", l.assignments(t))
	l.produce(t, 0, 60_000)
	waitFor(t, "both processes consumed rows", 60*time.Second, func() bool {
		return consumedRows(t, addrA) > 0 && consumedRows(t, addrB) > 0
	})
	l.waitRows(t, 20_000, 90*time.Second)
	t.Logf("before the kill: A consumed %d rows, B %d; %d rows offline", consumedRows(t, addrA), consumedRows(t, addrB), l.committedRows(t))
	require.NoError(t, syscall.Kill(a.pid, syscall.SIGKILL))
	_ = a.wait()
	l.produce(t, 60_000, rkMessages)
	waitFor(t, "the survivor assigned every partition", 60*time.Second, func() bool {
		as := l.assignments(t)
		for _, ps := range as {
			return len(as) == 1 && len(ps) == rkPartitions
		}
		return false
	})
	l.waitRows(t, rkMessages, 120*time.Second)
	l.waitCommitted(t)
	t.Logf("B consumed %d rows in all", consumedRows(t, addrB))
	require.NoError(t, syscall.Kill(b.pid, syscall.SIGTERM))
	require.NoError(t, b.wait())
	l.checkStores(t)
}
