package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/quiverfs/quiver/internal/testenv"
)

// These fast tests use franz-go's in-process Kafka-protocol server (pkg/kfake), reached by
// quiver stream over TCP like a cluster; realkafka_test.go runs the acceptance against the
// real broker (Kafka 4.4.0).

const (
	streamUsers      = 1000
	streamPerUser    = 100 // 100,000 messages
	streamPartitions = 4
)

var streamT0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// streamMessage is message i: user i%1000, clicks i, event time t0 + i ms. Every message is
// a distinct (user, event time); the latest of user u is the one with the greatest i.
func streamMessage(i int) *kgo.Record {
	u := i % streamUsers
	v := fmt.Sprintf(`{"uid": %d, "clicks": %d, "page": "p%d", "ts": %q}`, u, i, i%13, streamT0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano))
	return &kgo.Record{Topic: "clicks", Partition: int32(u % streamPartitions), Key: []byte(strconv.Itoa(u)), Value: []byte(v)}
}

func streamDefs(brokers []string) string {
	return `sources:
  - name: clicks_stream
    kafka:
      brokers: [` + strings.Join(brokers, ", ") + `]
      topic: clicks
      group: quiver-test
      fields: { user_id: uid }
      on_error: dead_letter
      dead_letter_topic: clicks-dlq
    timestamp_field: ts

feature_views:
  - name: user_stream
    entities: [user]
    source: clicks_stream
    online: true
    features:
      - { name: clicks, type: int64 }
      - { name: page, type: string }
`
}

// TestStreamKilledTwiceHoldsEveryRowOnce: 100,000 JSON messages over 4 partitions, consumed by
// a real quiver stream killed with SIGKILL twice mid-stream: the online store holds the
// latest row per entity, the offline table every distinct row once, the group's offsets are
// committed to the end, and a malformed message is dead-lettered and counted.
func TestStreamKilledTwiceHoldsEveryRowOnce(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(streamPartitions, "clicks"), kfake.SeedTopics(1, "clicks-dlq"))
	require.NoError(t, err)
	defer cluster.Close()
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer producer.Close()
	ctx := context.Background()
	produce := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, streamMessage(i))
		}
		require.NoError(t, producer.ProduceSync(ctx, recs...).FirstErr())
	}

	dir := pushRepo(t, nil)
	writeFile(t, filepath.Join(dir, "features", "stream.yaml"), streamDefs(cluster.ListenAddrs()))
	r := quiver(t, nil, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)

	port, err := testenv.FreePort()
	require.NoError(t, err)
	metricsAddr := "127.0.0.1:" + strconv.Itoa(port)
	start := func() *osProcess {
		cmd, _ := quiverProcess(t, nil, "-C", dir, "stream", "user_stream", "--commit-interval", "200ms", "--session-timeout", "6s", "--metrics-addr", metricsAddr)
		t.Cleanup(func() { _ = cmd.Process.Kill() }) // a failed test leaves no consumer behind
		return &osProcess{cmd.Process.Pid, cmd.Wait}
	}
	killMidStream := func(p *osProcess, atLeast int) {
		waitFor(t, fmt.Sprintf("at least %d rows offline", atLeast), 90*time.Second, func() bool { return icebergRows(t, dir, "user_stream") >= atLeast })
		require.NoError(t, syscall.Kill(p.pid, syscall.SIGKILL))
		_ = p.wait()
	}

	produce(0, 40_000)
	killMidStream(start(), 1)
	produce(40_000, 70_000)
	killMidStream(start(), 40_001)
	// The last part carries a malformed message.
	require.NoError(t, producer.ProduceSync(ctx, &kgo.Record{Topic: "clicks", Partition: 2, Value: []byte(`{"uid": 7, "clicks": "not json`)}).FirstErr())
	produce(70_000, streamUsers*streamPerUser)
	last := start()

	total := streamUsers * streamPerUser
	t.Log("killed twice; waiting for the third consumer")
	waitFor(t, "every row offline", 120*time.Second, func() bool { return icebergRows(t, dir, "user_stream") >= total })

	// Offsets committed to the end of every partition.
	adm := kadm.NewClient(producer)
	ends, err := adm.ListEndOffsets(ctx, "clicks")
	require.NoError(t, err)
	waitFor(t, "offsets committed to the end", 30*time.Second, func() bool {
		committed, err := adm.FetchOffsets(ctx, "quiver-test")
		if err != nil {
			return false
		}
		for p := range int32(streamPartitions) {
			end, _ := ends.Lookup("clicks", p)
			c, ok := committed.Lookup("clicks", p)
			if !ok || c.At != end.Offset {
				return false
			}
		}
		return true
	})

	t.Log("offsets committed")
	// The malformed message: dead-lettered and counted.
	metrics := scrape(t, metricsAddr)
	require.Contains(t, metrics, `quiver_stream_messages_total{result="dead_letter",view="user_stream"} 1`)
	require.Contains(t, metrics, `quiver_stream_consumer_lag{partition="2",topic="clicks",view="user_stream"} 0`)
	require.Contains(t, metrics, `quiver_ingest_event_to_online_seconds_count{path="stream"}`)
	dlq, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("clicks-dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer dlq.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fetches := dlq.PollFetches(pctx)
	require.NoError(t, fetches.Err())
	recs := fetches.Records()
	require.NotEmpty(t, recs)
	for _, rec := range recs {
		require.Equal(t, `{"uid": 7, "clicks": "not json`, string(rec.Value))
	}

	t.Log("dead letter checked")
	require.NoError(t, syscall.Kill(last.pid, syscall.SIGTERM))
	require.NoError(t, last.wait())
	require.Equal(t, total, icebergRows(t, dir, "user_stream"), "every distinct row once")

	// quiver status: the last stream write, no lag left, the rows online.
	r = quiver(t, nil, "-C", dir, "-o", "json", "status", "user_stream")
	require.Equal(t, exitOK, r.code, r.stderr)
	var st []struct {
		Source      string           `json:"source"`
		LastStream  *time.Time       `json:"last_stream"`
		ConsumerLag map[string]int64 `json:"consumer_lag"`
		RowsOnline  *int64           `json:"rows_online"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
	require.Len(t, st, 1)
	require.Equal(t, "kafka", st[0].Source)
	require.NotNil(t, st[0].LastStream)
	require.Equal(t, map[string]int64{"0": 0, "1": 0, "2": 0, "3": 0}, st[0].ConsumerLag)
	require.NotNil(t, st[0].RowsOnline)
	require.EqualValues(t, streamUsers, *st[0].RowsOnline)

	// Online: the latest row of every user.
	args := []string{"-C", dir, "-o", "json", "get-online", "--feature", "user_stream:clicks"}
	for u := range streamUsers {
		args = append(args, "--entity", "user_id="+strconv.Itoa(u))
	}
	r = quiver(t, nil, args...)
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
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	got := out.Features[0].Values.Int64.Val
	require.Len(t, got, streamUsers)
	for u := range streamUsers {
		require.Equal(t, strconv.Itoa((streamPerUser-1)*streamUsers+u), got[u], "user %d", u)
	}
}

// TestStreamFollowsApply is issue 22 item 12: a running quiver stream notices a breaking
// apply (clicks int64 → float64, a new definition generation) through the registry's
// revision and writes the new generation's table without a restart; when the view is pruned
// it stops with an error naming the view.
func TestStreamFollowsApply(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(streamPartitions, "clicks"), kfake.SeedTopics(1, "clicks-dlq"))
	require.NoError(t, err)
	defer cluster.Close()
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer producer.Close()
	produce := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, streamMessage(i))
		}
		require.NoError(t, producer.ProduceSync(context.Background(), recs...).FirstErr())
	}
	dir := pushRepo(t, nil)
	defs := streamDefs(cluster.ListenAddrs())
	writeFile(t, filepath.Join(dir, "features", "stream.yaml"), defs)
	r := quiver(t, nil, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)

	cmd, out := quiverProcess(t, nil, "-C", dir, "stream", "--commit-interval", "200ms", "--refresh", "200ms", "--metrics-addr", "")
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	exited := make(chan int, 1)
	go func() {
		_ = cmd.Wait()
		exited <- cmd.ProcessState.ExitCode()
	}()

	produce(0, 1000)
	waitFor(t, "generation 1's rows offline", 60*time.Second, func() bool { return icebergRows(t, dir, "user_stream") == 1000 })

	writeFile(t, filepath.Join(dir, "features", "stream.yaml"), strings.Replace(defs, "{ name: clicks, type: int64 }", "{ name: clicks, type: float64 }", 1))
	r = quiver(t, nil, "-C", dir, "apply", "--allow-breaking")
	require.Equal(t, exitOK, r.code, r.stderr)
	produce(1000, 2000)
	waitFor(t, "generation 2's rows offline", 60*time.Second, func() bool { return icebergRows(t, dir, "user_stream-g2") == 1000 })
	require.Equal(t, -1, icebergRows(t, dir, "user_stream"), "generation 1's table, dropped by the apply, is not written again")
	r = quiver(t, nil, "-C", dir, "-o", "json", "get-online", "--feature", "user_stream:clicks", "--entity", "user_id=5")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "1005", "generation 2's value is served")
	require.Contains(t, r.stdout, "PRESENT")

	require.NoError(t, os.Remove(filepath.Join(dir, "features", "stream.yaml")))
	r = quiver(t, nil, "-C", dir, "apply", "--prune")
	require.Equal(t, exitOK, r.code, r.stderr)
	select {
	case code := <-exited:
		require.Equal(t, exitFailed, code, out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("quiver stream still runs after its view was pruned:\n%s", out.String())
	}
	require.Contains(t, out.String(), `feature view "user_stream" was removed`)
}

// TestStreamMetricsStayOnLoopback: quiver stream's /metrics is never authenticated, so, as for
// quiver serve, a non-loopback --metrics-addr is refused at start unless
// --allow-unauthenticated-metrics says so.
func TestStreamMetricsStayOnLoopback(t *testing.T) {
	dir := pushRepo(t, nil)
	start := time.Now()
	r := quiver(t, nil, "-C", dir, "stream", "--metrics-addr", "0.0.0.0:0")
	require.Equal(t, exitInvalid, r.code, r.stderr)
	require.Contains(t, r.stderr, "--metrics-addr 0.0.0.0:0 (every interface): /metrics is never authenticated")
	require.Contains(t, r.stderr, "--allow-unauthenticated-metrics")
	require.Less(t, time.Since(start), 10*time.Second, "fails at start, not after a hang")
}
