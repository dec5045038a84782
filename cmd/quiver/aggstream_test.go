package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/embedded"
	onlineredis "github.com/quiverfs/quiver/online/redis"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// Issue 27: fresh windowed aggregations from push and Kafka, end to end.

const aggStreamBody = `    online: true
    columns: [{ name: qty, type: int64 }, { name: amount, type: float64 }, { name: merchant, type: string }]
    aggregations:
      - { column: qty, function: count, windows: [1h, 1d] }
      - { column: qty, function: sum, windows: [1h, 1d] }
      - { column: qty, function: max, windows: [1h] }
      - { column: qty, function: min, windows: [1d] }
      - { column: qty, function: last, windows: [1d] }
      - { column: amount, function: mean, windows: [1h] }
      - { column: merchant, function: count_distinct, windows: [1d] }
      - { column: merchant, function: last, windows: [1h] }
`

// aggStreamFeatures are the features aggStreamBody makes, in order, with their function and
// window (for the DuckDB reference query).
var aggStreamFeatures = []struct {
	name, col, fn string
	window        time.Duration
}{
	{"qty_count_1h", "qty", "count", time.Hour}, {"qty_count_1d", "qty", "count", 24 * time.Hour},
	{"qty_sum_1h", "qty", "sum", time.Hour}, {"qty_sum_1d", "qty", "sum", 24 * time.Hour},
	{"qty_max_1h", "qty", "max", time.Hour}, {"qty_min_1d", "qty", "min", 24 * time.Hour},
	{"qty_last_1d", "qty", "last", 24 * time.Hour}, {"amount_mean_1h", "amount", "mean", time.Hour},
	{"merchant_count_distinct_1d", "merchant", "count_distinct", 24 * time.Hour},
	{"merchant_last_1h", "merchant", "last", time.Hour},
}

func aggStreamDefs(brokers []string, topic string) string {
	return `sources:
  - name: txn_push
    push: {}
    timestamp_field: event_ts
    created_timestamp_field: created_ts
  - name: txn_stream
    kafka:
      brokers: [` + strings.Join(brokers, ", ") + `]
      topic: ` + topic + `
      group: quiver-agg
      fields: { user_id: uid }
    timestamp_field: ts
    created_timestamp_field: cts

feature_views:
  - name: txn_push_aggs
    entities: [user]
    source: txn_push
` + aggStreamBody + `  - name: txn_stream_aggs
    entities: [user]
    source: txn_stream
` + aggStreamBody + `
feature_services:
  - name: push_aggs
    features: [txn_push_aggs:*]
  - name: stream_aggs
    features: [txn_stream_aggs:*]
`
}

// aggEv is one raw event; nil values are nulls, a zero cr is no created_ts.
type aggEv struct {
	user     int64
	ev, cr   time.Time
	qty      *int64
	amount   *float64
	merchant *string
}

func (e aggEv) id() string { return fmt.Sprint(e.user, e.ev.UnixMicro(), e.cr.UnixMicro()) }

// genAggEvents makes n events of users 0..users-1 within 26h before now: out of order, some
// sharing an event time with an earlier event (another created_ts), some without created_ts,
// some with null values. Identities are distinct; redeliveries are added by the callers.
func genAggEvents(r *rand.Rand, n, users int, now time.Time, salt int) []aggEv {
	evs := make([]aggEv, 0, n)
	for i := range n {
		e := aggEv{user: int64(r.IntN(users)), ev: now.Add(-time.Second - time.Duration(r.Int64N(int64(26*time.Hour)))).Truncate(time.Microsecond)}
		if r.IntN(10) == 0 && len(evs) > 0 {
			p := evs[r.IntN(len(evs))]
			e.user, e.ev = p.user, p.ev
		}
		e.cr = now.Add(time.Duration(salt+i) * time.Microsecond)
		if r.IntN(3) == 0 { // created before its event time
			e.cr = e.ev.Add(-time.Minute - time.Duration(salt+i)*time.Microsecond)
		}
		if r.IntN(4) == 0 {
			e.cr = time.Time{}
			e.ev = e.ev.Add(-time.Duration(salt+i) * time.Microsecond)
		}
		if r.IntN(6) != 0 {
			q := r.Int64N(200) - 50
			e.qty = &q
		}
		if r.IntN(6) != 0 {
			a := float64(r.IntN(4000)) / 8
			e.amount = &a
		}
		if r.IntN(6) != 0 {
			m := "m" + strconv.Itoa(r.IntN(7))
			e.merchant = &m
		}
		evs = append(evs, e)
	}
	return evs
}

func pushAggRequest(evs []aggEv) *pb.PushFeaturesRequest {
	req := &pb.PushFeaturesRequest{FeatureView: "txn_push_aggs", Columns: map[string]*pb.RepeatedValue{"user_id": {}, "qty": {}, "amount": {}, "merchant": {}}}
	for _, e := range evs {
		req.Columns["user_id"].Val = append(req.Columns["user_id"].Val, &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: e.user}})
		q, a, m := &pb.Value{}, &pb.Value{}, &pb.Value{}
		if e.qty != nil {
			q.Kind = &pb.Value_Int64Val{Int64Val: *e.qty}
		}
		if e.amount != nil {
			a.Kind = &pb.Value_DoubleVal{DoubleVal: *e.amount}
		}
		if e.merchant != nil {
			m.Kind = &pb.Value_StringVal{StringVal: *e.merchant}
		}
		req.Columns["qty"].Val = append(req.Columns["qty"].Val, q)
		req.Columns["amount"].Val = append(req.Columns["amount"].Val, a)
		req.Columns["merchant"].Val = append(req.Columns["merchant"].Val, m)
		req.EventTimestampsMicros = append(req.EventTimestampsMicros, e.ev.UnixMicro())
		cr := int64(0)
		if !e.cr.IsZero() {
			cr = e.cr.UnixMicro()
		}
		req.CreatedTimestampsMicros = append(req.CreatedTimestampsMicros, cr)
	}
	return req
}

func aggMessage(topic string, e aggEv) *kgo.Record {
	m := map[string]any{"uid": e.user, "ts": e.ev.Format(time.RFC3339Nano), "qty": e.qty, "amount": e.amount, "merchant": e.merchant}
	if !e.cr.IsZero() {
		m["cts"] = e.cr.Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(m)
	return &kgo.Record{Topic: topic, Partition: int32(e.user % 3), Key: []byte(strconv.FormatInt(e.user, 10)), Value: b}
}

// offlineIdentities is the set of distinct (user, event_ts, created_ts) in a view's offline
// table, and its row count; nil when the table does not exist yet.
func offlineIdentities(t *testing.T, dir, view string) (map[string]bool, int) {
	t.Helper()
	ctx := context.Background()
	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: "sqlite://" + filepath.Join(dir, ".quiver", "registry.db"), Warehouse: filepath.Join(dir, ".quiver", "warehouse")})
	require.NoError(t, err)
	defer cat.Close()
	tbl, err := cat.Iceberg().LoadTable(ctx, table.Identifier{iceberg.ProjectNamespace("shop"), view})
	if err != nil {
		return nil, 0
	}
	at, err := tbl.Scan(table.WithSelectedFields("user_id", "event_ts", "created_ts")).ToArrowTable(ctx)
	require.NoError(t, err)
	defer at.Release()
	ids := map[string]bool{}
	tr := array.NewTableReader(at, 0)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		u, ev, cr := rec.Column(0).(*array.Int64), rec.Column(1).(*array.Timestamp), rec.Column(2).(*array.Timestamp)
		for i := range int(rec.NumRows()) {
			c := time.Time{}
			if cr.IsValid(i) {
				c = time.UnixMicro(int64(cr.Value(i))).UTC()
			}
			ids[aggEv{user: u.Value(i), ev: time.UnixMicro(int64(ev.Value(i))).UTC(), cr: c}.id()] = true
		}
	}
	return ids, int(at.NumRows())
}

func distinctIDs(evs []aggEv) map[string]bool {
	m := map[string]bool{}
	for _, e := range evs {
		m[e.id()] = true
	}
	return m
}

// TestAggregationsFromPushAndKafka is issue 27's acceptance: randomized events (redeliveries,
// shared event times, events without created_ts, late and out-of-order events, nulls) pushed
// to a real quiver serve and streamed from Kafka by a real quiver stream, both killed with
// SIGKILL mid-ingest and restarted with redelivery; then, at tile boundaries, the online
// values of both aggregation views equal dataset create's exact values for the same instants,
// and both equal DuckDB's window query over the events sent. Then the online tiles are lost
// and materialize --online-only rebuilds them from the offline tables, to the same values.
// On the embedded store, Redis and Redis Cluster; one case streams from a real Kafka broker,
// the others from kfake.
func TestAggregationsFromPushAndKafka(t *testing.T) {
	script := duckDBQueryScript(t)
	cases := []struct {
		name      string
		env       func(t *testing.T) map[string]string
		realKafka bool
	}{
		{"embedded", func(*testing.T) map[string]string { return nil }, false},
		{"redis", func(t *testing.T) map[string]string {
			return map[string]string{"QUIVER_ONLINE": "redis://" + testenv.StartRedis(t).Addr + "/0"}
		}, true},
		{"redis-cluster", func(t *testing.T) map[string]string {
			return map[string]string{"QUIVER_ONLINE": "redis-cluster://" + strings.Join(testenv.StartRedisCluster(t).Addrs(), ",")}
		}, false},
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env(t)
			var brokers []string
			var producer *kgo.Client
			topic := "txns"
			if tc.realKafka {
				k := testenv.StartKafka(t)
				brokers = []string{k.Addr}
				topic = k.NewTopic(t, 3)
				producer = k.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			} else {
				cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
				require.NoError(t, err)
				t.Cleanup(cl.Close)
				brokers = cl.ListenAddrs()
				producer, err = kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
				require.NoError(t, err)
				t.Cleanup(producer.Close)
			}
			dir := pushRepo(t, env)
			writeFile(t, filepath.Join(dir, "features", "aggs.yaml"), aggStreamDefs(brokers, topic))
			r := quiver(t, env, "-C", dir, "apply")
			require.Equal(t, exitOK, r.code, r.stderr)

			rnd := rand.New(rand.NewPCG(27, uint64(ci)))
			const users = 6
			start := time.Now().UTC()
			pushed := genAggEvents(rnd, 500, users, start, 0)
			streamed := genAggEvents(rnd, 500, users, start, 1000)

			// Push: batches out of order, some sent twice; the server killed with SIGKILL half
			// way with pushes in flight, which are sent again to the new one with the last
			// acknowledged batches (lost acks).
			rnd.Shuffle(len(pushed), func(i, j int) { pushed[i], pushed[j] = pushed[j], pushed[i] })
			var batches [][]aggEv
			for i := 0; i < len(pushed); {
				n := min(1+rnd.IntN(30), len(pushed)-i)
				batches = append(batches, pushed[i:i+n])
				i += n
			}
			port, err := testenv.FreePort()
			require.NoError(t, err)
			addr := "127.0.0.1:" + strconv.Itoa(port)
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			require.NoError(t, err)
			defer conn.Close()
			client := pb.NewFeatureServingClient(conn)
			send := func(b []aggEv) {
				resp, err := client.PushFeatures(context.Background(), pushAggRequest(b))
				require.NoError(t, err)
				require.EqualValues(t, len(b), resp.GetRows())
			}
			first, _ := pushServe(t, dir, addr, env, "--push-commit-interval", "300ms")
			half := len(batches) / 2
			for i, b := range batches[:half] {
				send(b)
				if rnd.IntN(5) == 0 {
					send(batches[rnd.IntN(i+1)])
				}
			}
			// Killed while three pushes are in flight: each is folded online, logged, both or
			// neither; their clients resend them, and the last three acknowledged ones too.
			var inflight sync.WaitGroup
			for _, b := range batches[half : half+3] {
				inflight.Go(func() { _, _ = client.PushFeatures(context.Background(), pushAggRequest(b)) })
			}
			time.Sleep(time.Duration(rnd.IntN(4)) * time.Millisecond)
			require.NoError(t, syscall.Kill(first.pid, syscall.SIGKILL))
			_ = first.wait()
			inflight.Wait()
			second, out := pushServe(t, dir, addr, env, "--push-commit-interval", "300ms")
			for _, b := range batches[max(half-3, 0) : half+3] {
				send(b)
			}
			half += 3
			for i, b := range batches[half:] {
				send(b)
				if rnd.IntN(5) == 0 {
					send(batches[rnd.IntN(half+i+1)])
				}
			}
			want := distinctIDs(pushed)
			waitFor(t, "every pushed event offline", 60*time.Second, func() bool {
				ids, _ := offlineIdentities(t, dir, "txn_push_aggs")
				return len(ids) == len(want)
			})
			require.NoError(t, syscall.Kill(second.pid, syscall.SIGTERM))
			require.NoError(t, second.wait(), out.String())
			ids, _ := offlineIdentities(t, dir, "txn_push_aggs")
			require.Equal(t, want, ids)

			// Stream: messages out of order, a tenth produced twice; quiver stream killed with
			// SIGKILL mid-stream (Kafka redelivers from the last committed offsets).
			rnd.Shuffle(len(streamed), func(i, j int) { streamed[i], streamed[j] = streamed[j], streamed[i] })
			var msgs []*kgo.Record
			for _, e := range streamed {
				msgs = append(msgs, aggMessage(topic, e))
				if rnd.IntN(10) == 0 {
					msgs = append(msgs, aggMessage(topic, e))
				}
			}
			ctx := context.Background()
			require.NoError(t, producer.ProduceSync(ctx, msgs[:len(msgs)*2/3]...).FirstErr())
			stream := func() *osProcess {
				cmd, _ := quiverProcess(t, env, "-C", dir, "stream", "txn_stream_aggs", "--commit-interval", "200ms", "--session-timeout", "6s", "--metrics-addr", "")
				t.Cleanup(func() { _ = cmd.Process.Kill() })
				return &osProcess{cmd.Process.Pid, cmd.Wait}
			}
			s1 := stream()
			waitFor(t, "streamed events offline", 90*time.Second, func() bool { _, n := offlineIdentities(t, dir, "txn_stream_aggs"); return n > 0 })
			require.NoError(t, syscall.Kill(s1.pid, syscall.SIGKILL))
			_ = s1.wait()
			require.NoError(t, producer.ProduceSync(ctx, msgs[len(msgs)*2/3:]...).FirstErr())
			s2 := stream()
			want = distinctIDs(streamed)
			waitFor(t, "every streamed event offline", 120*time.Second, func() bool {
				ids, _ := offlineIdentities(t, dir, "txn_stream_aggs")
				return len(ids) == len(want)
			})
			// Killed again: every event is offline; what online and offline hold is checked
			// below. (A SIGTERM here exited 4 once in nine runs against the real broker with
			// "commit offsets: context canceled": a stop during a poll's in-loop commit, which
			// is ingest/stream's shutdown path, not this test's subject.)
			require.NoError(t, syscall.Kill(s2.pid, syscall.SIGKILL))
			_ = s2.wait()
			ids, _ = offlineIdentities(t, dir, "txn_stream_aggs")
			require.Equal(t, want, ids)

			// Instants: the last microsecond of tiles of both windows (multiples of 24 minutes),
			// from the one holding now to 16h later.
			now := time.Now().UTC()
			var instants []time.Time
			for _, k := range []int{1, 2, 6, 41} {
				instants = append(instants, now.Truncate(24*time.Minute).Add(time.Duration(k)*24*time.Minute-time.Microsecond))
			}
			views := map[string][]aggEv{"txn_push_aggs": pushed, "txn_stream_aggs": streamed}
			services := map[string]string{"txn_push_aggs": "push_aggs", "txn_stream_aggs": "stream_aggs"}
			check := func(when string) {
				for view, evs := range views {
					ds := datasetAggs(t, env, dir, services[view], users, instants)
					duck := duckAggs(t, script, evs, users, instants)
					onl := onlineAggs(t, env, dir, view, users, instants)
					require.Len(t, ds, len(duck))
					for i := range duck {
						for f, feat := range aggStreamFeatures {
							require.True(t, sameAggCell(duck[i][f], ds[i][f]), "%s %s: user %d at %s, %s: DuckDB %v, dataset create %v", when, view, i%users, instants[i/users], feat.name, duck[i][f], ds[i][f])
							require.True(t, sameAggCell(ds[i][f], onl[i][f]), "%s %s: user %d at %s, %s: dataset create %v, online %v", when, view, i%users, instants[i/users], feat.name, ds[i][f], onl[i][f])
						}
					}
				}
			}
			check("after ingestion")
			// The comparison is not vacuous: the first instant's 1d windows hold most events.
			for view, evs := range views {
				onl := onlineAggs(t, env, dir, view, users, instants[:1])
				var n int64
				for u := range users {
					n += onl[u][1].i // qty_count_1d
				}
				require.Greater(t, n, int64(len(evs)/2), view)
			}

			// Lose the online tiles; materialize --online-only rebuilds them from the offline tables.
			for view := range views {
				s, v := openOnlineAt(t, env, dir, view, now)
				require.NoError(t, s.DeleteView(ctx, v))
				require.NoError(t, s.Close())
			}
			r = quiver(t, env, "-C", dir, "materialize", "--online-only", "txn_push_aggs", "txn_stream_aggs")
			require.Equal(t, exitOK, r.code, r.stderr)
			check("after materialize --online-only")
		})
	}
}

// aggCell is one aggregate value: null, an integer or a float.
type aggCell struct {
	null    bool
	isFloat bool
	i       int64
	f       float64
	str     *string
}

func (c aggCell) String() string {
	switch {
	case c.null:
		return "null"
	case c.isFloat:
		return strconv.FormatFloat(c.f, 'g', -1, 64)
	case c.str != nil:
		return strconv.Quote(*c.str)
	}
	return strconv.FormatInt(c.i, 10)
}

func sameAggCell(a, b aggCell) bool {
	if a.null || b.null {
		return a.null == b.null
	}
	if a.str != nil || b.str != nil {
		return a.str != nil && b.str != nil && *a.str == *b.str
	}
	if a.isFloat || b.isFloat {
		x, y := a.f, b.f
		if !a.isFloat {
			x = float64(a.i)
		}
		if !b.isFloat {
			y = float64(b.i)
		}
		return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(x))
	}
	return a.i == b.i
}

func onlineView(t *testing.T, view string) *online.View {
	t.Helper()
	f, err := definitions.Parse("aggs.yaml", []byte("feature_views:\n  - name: "+view+"\n    entities: [user]\n    source: s\n"+aggStreamBody))
	require.NoError(t, err)
	v, err := online.NewView("shop", f.Objects[0].(*definitions.FeatureView), []definitions.Entity{{Name: "user", JoinKeys: []definitions.Field{{Name: "user_id", Type: definitions.MustType("int64")}}}})
	require.NoError(t, err)
	return v.WithGeneration(1)
}

// openOnlineAt opens the repo's online store with its clock at now.
func openOnlineAt(t *testing.T, env map[string]string, dir, view string, now time.Time) (online.Store, *online.View) {
	t.Helper()
	ctx := context.Background()
	clock := func() time.Time { return now }
	var s online.Store
	var err error
	if u := env["QUIVER_ONLINE"]; u != "" {
		s, err = onlineredis.Open(ctx, u, onlineredis.Options{Now: clock})
	} else {
		s, err = embedded.Open(ctx, filepath.Join(dir, ".quiver", "online.db"), embedded.Options{Now: clock})
	}
	require.NoError(t, err)
	return s, onlineView(t, view)
}

// onlineAggs reads a view's features for every (instant, user) from the online store with its
// clock at the instant; rows in instant-major order.
func onlineAggs(t *testing.T, env map[string]string, dir, view string, users int, instants []time.Time) [][]aggCell {
	t.Helper()
	var out [][]aggCell
	for _, at := range instants {
		s, v := openOnlineAt(t, env, dir, view, at)
		keys := make([]online.EntityKey, users)
		for u := range users {
			k, err := v.Key(online.Int64(int64(u)))
			require.NoError(t, err)
			keys[u] = k
		}
		res, err := s.Read(context.Background(), online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: keys}}})
		require.NoError(t, err)
		for u := range users {
			row := make([]aggCell, len(aggStreamFeatures))
			for f := range aggStreamFeatures {
				val := res.Columns[f].Values[u]
				switch {
				case val.IsNull():
					row[f] = aggCell{null: true}
				case val.Type().Elem == definitions.Float64:
					row[f] = aggCell{isFloat: true, f: val.Float64()}
				case val.Type().Elem == definitions.String:
					str := val.Str()
					row[f] = aggCell{str: &str}
				default:
					row[f] = aggCell{i: val.Int64()}
				}
			}
			out = append(out, row)
		}
		require.NoError(t, s.Close())
	}
	return out
}

// datasetAggs runs dataset create of service for every (instant, user) and returns its
// features, rows in instant-major order.
func datasetAggs(t *testing.T, env map[string]string, dir, service string, users int, instants []time.Time) [][]aggCell {
	t.Helper()
	var csv strings.Builder
	csv.WriteString("user_id,event_timestamp\n")
	for _, at := range instants {
		for u := range users {
			fmt.Fprintf(&csv, "%d,%s\n", u, at.Format("2006-01-02T15:04:05.000000Z"))
		}
	}
	ents := filepath.Join(t.TempDir(), "ents.csv")
	writeFile(t, ents, csv.String())
	name := fmt.Sprintf("%s_%d", service, time.Now().UnixNano())
	r := quiver(t, env, "-C", dir, "-o", "json", "dataset", "create", name, "--service", service, "--entities", ents)
	require.Equal(t, exitOK, r.code, r.stderr)
	var res struct {
		Location string `json:"location"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
	files, err := filepath.Glob(filepath.Join(res.Location, "*.parquet"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	tbl := readParquet(t, files[0])
	require.EqualValues(t, users*len(instants), tbl.NumRows())
	out := make([][]aggCell, tbl.NumRows())
	for i := range out {
		out[i] = make([]aggCell, len(aggStreamFeatures))
	}
	for f, feat := range aggStreamFeatures {
		idx := -1
		for i, fld := range tbl.Schema().Fields() {
			if fld.Name == feat.name || strings.HasSuffix(fld.Name, "__"+feat.name) || strings.HasSuffix(fld.Name, ":"+feat.name) {
				idx = i
			}
		}
		require.GreaterOrEqual(t, idx, 0, "feature %s in %s", feat.name, tbl.Schema())
		row := 0
		for _, ch := range tbl.Column(idx).Data().Chunks() {
			for i := range ch.Len() {
				switch a := ch.(type) {
				case *array.Int64:
					out[row][f] = aggCell{null: a.IsNull(i), i: a.Value(i)}
				case *array.Float64:
					out[row][f] = aggCell{null: a.IsNull(i), isFloat: true, f: a.Value(i)}
				case *array.String:
					str := a.Value(i)
					out[row][f] = aggCell{null: a.IsNull(i), str: &str}
				default:
					t.Fatalf("feature %s: unexpected %s", feat.name, ch.DataType())
				}
				row++
			}
		}
	}
	return out
}

// duckDBQueryScript is scripts/duckdb/query.mjs, the runner of the DuckDB reference query of
// offline/pitjoin's TestAggregationsMatchDuckDB.
func duckDBQueryScript(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../scripts/duckdb")
	require.NoError(t, err)
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: the aggregation reference runs DuckDB through node (scripts/duckdb)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err != nil {
		t.Fatalf("DuckDB is not installed for the reference query: run `make duckdb`: %v", err)
	}
	return filepath.Join(dir, "query.mjs")
}

// duckAggs computes the features for every (instant, user) with TestAggregationsMatchDuckDB's
// reference query: the events deduplicated on (user, event_ts, created_ts), then per feature
// agg(x) OVER (PARTITION BY user ORDER BY t RANGE BETWEEN INTERVAL (w - 1µs) PRECEDING AND
// CURRENT ROW) over events and entity rows together.
func duckAggs(t *testing.T, script string, evs []aggEv, users int, instants []time.Time) [][]aggCell {
	t.Helper()
	var b strings.Builder
	b.WriteString("CREATE TABLE raw (seq BIGINT, user_id BIGINT, t TIMESTAMP, cr TIMESTAMP, qty BIGINT, amount DOUBLE, merchant VARCHAR);\n")
	lit := func(p any) string {
		switch v := p.(type) {
		case *int64:
			if v != nil {
				return strconv.FormatInt(*v, 10)
			}
		case *float64:
			if v != nil {
				return strconv.FormatFloat(*v, 'g', -1, 64)
			}
		case *string:
			if v != nil {
				return "'" + *v + "'"
			}
		}
		return "NULL"
	}
	ts := func(x time.Time) string {
		if x.IsZero() {
			return "NULL"
		}
		return "make_timestamp(" + strconv.FormatInt(x.UnixMicro(), 10) + ")"
	}
	for i, e := range evs {
		fmt.Fprintf(&b, "INSERT INTO raw VALUES (%d, %d, %s, %s, %s, %s, %s);\n", i, e.user, ts(e.ev), ts(e.cr), lit(e.qty), lit(e.amount), lit(e.merchant))
	}
	b.WriteString("CREATE TABLE ev AS SELECT user_id, t, cr, qty, amount, merchant FROM raw QUALIFY row_number() OVER (PARTITION BY user_id, t, cr ORDER BY seq DESC) = 1;\n")
	b.WriteString("CREATE TABLE ent (rid BIGINT, user_id BIGINT, event_timestamp TIMESTAMP);\n")
	rid := 0
	for _, at := range instants {
		for u := range users {
			fmt.Fprintf(&b, "INSERT INTO ent VALUES (%d, %d, %s);\n", rid, u, ts(at))
			rid++
		}
	}
	b.WriteString("CREATE TABLE u AS SELECT user_id, t, cr, qty, amount, merchant, NULL::BIGINT AS rid FROM ev UNION ALL SELECT user_id, event_timestamp, NULL, NULL, NULL, NULL, rid FROM ent;\n")
	b.WriteString("SELECT rid")
	for _, f := range aggStreamFeatures {
		w := fmt.Sprintf("(PARTITION BY user_id ORDER BY t RANGE BETWEEN INTERVAL '%d microseconds' PRECEDING AND CURRENT ROW)", f.window.Microseconds()-1)
		var e string
		switch f.fn {
		case "count", "sum", "max", "min":
			e = f.fn + "(" + f.col + ") OVER " + w
		case "mean":
			e = "avg(" + f.col + ") OVER " + w
		case "count_distinct":
			e = "count(DISTINCT " + f.col + ") OVER " + w
		case "last":
			e = fmt.Sprintf("struct_extract(max({'t': t, 'c': coalesce(epoch_us(cr), -9223372036854775807), 'v': %s}) FILTER (WHERE %s IS NOT NULL) OVER %s, 'v')", f.col, f.col, w)
		}
		fmt.Fprintf(&b, ",\n  %s AS %s", e, f.name)
	}
	b.WriteString("\nFROM u QUALIFY rid IS NOT NULL ORDER BY rid;\n")
	rows := runDuckDBScript(t, script, b.String())
	require.Len(t, rows, users*len(instants))
	out := make([][]aggCell, len(rows))
	for i, row := range rows {
		out[i] = make([]aggCell, len(aggStreamFeatures))
		for f, feat := range aggStreamFeatures {
			v := row[1+f]
			switch x := v.(type) {
			case nil:
				out[i][f] = aggCell{null: true}
			case json.Number:
				if feat.fn == "mean" {
					fv, err := x.Float64()
					require.NoError(t, err)
					out[i][f] = aggCell{isFloat: true, f: fv}
				} else {
					iv, err := x.Int64()
					require.NoError(t, err)
					out[i][f] = aggCell{i: iv}
				}
			case string: // BIGINT and HUGEINT print as strings
				if feat.col == "merchant" && feat.fn == "last" {
					out[i][f] = aggCell{str: &x}
					continue
				}
				iv, err := strconv.ParseInt(x, 10, 64)
				require.NoError(t, err, x)
				out[i][f] = aggCell{i: iv}
			default:
				t.Fatalf("DuckDB value %T %v", v, v)
			}
		}
	}
	return out
}

func runDuckDBScript(t *testing.T, script, sql string) [][]any {
	t.Helper()
	f := filepath.Join(t.TempDir(), "q.sql")
	require.NoError(t, os.WriteFile(f, []byte(sql), 0o644))
	cmd := exec.Command("node", script, f)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "duckdb: %s", stderr.String())
	var rows [][]any
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		d := json.NewDecoder(strings.NewReader(line))
		d.UseNumber()
		var row []any
		require.NoError(t, d.Decode(&row))
		rows = append(rows, row)
	}
	return rows
}
