// Command benchaggpush measures pushes into an aggregation view beside plain pushes, for
// docs/BENCHMARKS.md (run by scripts/bench-agg-push.sh):
//
//	benchaggpush -server ADDR -redis ADDR -view V -kind plain|agg -rate R -seconds S -batch B -users U [-server-pid PID]
//
// It sends R events/s for S seconds to quiver serve's PushFeatures, open loop (a request of
// B events every B/R seconds, each event stamped with its send time, never waiting for an
// earlier ack), and reports the event-to-acknowledgement latency per event (an upper bound of
// event-to-online: the server writes online before it logs and acknowledges), Redis's CPU
// time per event (INFO cpu before and after), with -server-pid the server's, and with
// -metrics the server's own event-to-online histogram over the run (bucket upper bounds).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchaggpush:", err)
		os.Exit(1)
	}
}

func run() error {
	server := flag.String("server", "127.0.0.1:6566", "quiver serve")
	redisAddr := flag.String("redis", "", "the online store's redis-server, for its CPU time")
	view := flag.String("view", "user_live", "push view")
	kind := flag.String("kind", "plain", "plain: columns clicks int64, page string; agg: qty int64, amount float64, merchant string")
	rate := flag.Int("rate", 5000, "events per second")
	seconds := flag.Int("seconds", 20, "seconds of load")
	batch := flag.Int("batch", 50, "events per request")
	users := flag.Int("users", 10_000, "distinct entities")
	serverPID := flag.Int("server-pid", 0, "quiver serve's pid, for its CPU time")
	metrics := flag.String("metrics", "", "quiver serve's metrics address, for its event-to-online histogram")
	flag.Parse()
	conn, err := grpc.NewClient(*server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := pb.NewFeatureServingClient(conn)
	rdb := goredis.NewClient(&goredis.Options{Addr: *redisAddr})
	defer rdb.Close()
	ctx := context.Background()
	redisCPU := func() float64 {
		info, err := rdb.Info(ctx, "cpu").Result()
		if err != nil {
			return math.NaN()
		}
		var s float64
		for _, line := range strings.Split(info, "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			if k == "used_cpu_sys" || k == "used_cpu_user" {
				f, _ := strconv.ParseFloat(v, 64)
				s += f
			}
		}
		return s
	}
	r := rand.New(rand.NewPCG(27, 27))
	request := func(now time.Time) *pb.PushFeaturesRequest {
		ts := now.UnixMicro()
		req := &pb.PushFeaturesRequest{FeatureView: *view, Columns: map[string]*pb.RepeatedValue{"user_id": {}}}
		cols := []string{"clicks", "page"}
		if *kind == "agg" {
			cols = []string{"qty", "amount", "merchant"}
		}
		for _, c := range cols {
			req.Columns[c] = &pb.RepeatedValue{}
		}
		for i := range *batch {
			req.Columns["user_id"].Val = append(req.Columns["user_id"].Val, &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: int64(r.IntN(*users))}})
			n := r.Int64N(1000)
			if *kind == "agg" {
				req.Columns["qty"].Val = append(req.Columns["qty"].Val, &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: n}})
				req.Columns["amount"].Val = append(req.Columns["amount"].Val, &pb.Value{Kind: &pb.Value_DoubleVal{DoubleVal: float64(n) / 8}})
				req.Columns["merchant"].Val = append(req.Columns["merchant"].Val, &pb.Value{Kind: &pb.Value_StringVal{StringVal: "m" + strconv.Itoa(int(n%20))}})
			} else {
				req.Columns["clicks"].Val = append(req.Columns["clicks"].Val, &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: n}})
				req.Columns["page"].Val = append(req.Columns["page"].Val, &pb.Value{Kind: &pb.Value_StringVal{StringVal: "page-" + strconv.Itoa(int(n%50))}})
			}
			req.EventTimestampsMicros = append(req.EventTimestampsMicros, ts+int64(i)) // distinct identities
		}
		return req
	}
	interval := time.Duration(float64(time.Second) * float64(*batch) / float64(*rate))
	var mu sync.Mutex
	var lat []time.Duration
	var errs int
	var firstErr error
	var wg sync.WaitGroup
	cpu0, srv0, hist0 := redisCPU(), procCPU(*serverPID), scrape(*metrics)
	start := time.Now()
	end := start.Add(time.Duration(*seconds) * time.Second)
	tick := time.NewTicker(interval)
	sent := 0
	for now := range tick.C {
		if now.After(end) {
			break
		}
		req := request(time.Now())
		sent += *batch
		wg.Go(func() {
			_, err := client.PushFeatures(ctx, req)
			done := time.Now().UnixMicro()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if errs == 0 {
					firstErr = err
				}
				errs++
				return
			}
			for _, ts := range req.EventTimestampsMicros {
				lat = append(lat, time.Duration(done-ts)*time.Microsecond)
			}
		})
	}
	tick.Stop()
	wg.Wait()
	el := time.Since(start)
	cpu1, srv1, hist1 := redisCPU(), procCPU(*serverPID), scrape(*metrics)
	if errs > 0 {
		return fmt.Errorf("%d requests failed, the first: %w", errs, firstErr)
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(math.Ceil(p*float64(len(lat))))-1)] }
	fmt.Printf("%s view %s: %d events in %s (%.0f/s), requests of %d, %d entities: event-to-ack p50 %s, p99 %s, max %s; redis CPU %.2f µs/event",
		*kind, *view, len(lat), el.Round(time.Millisecond), float64(len(lat))/el.Seconds(), *batch, *users,
		q(.5).Round(10*time.Microsecond), q(.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond),
		(cpu1-cpu0)*1e6/float64(sent))
	if *serverPID != 0 {
		fmt.Printf(", server CPU %.1f µs/event", (srv1-srv0)*1e6/float64(sent))
	}
	if *metrics != "" {
		n, p50, p99 := quantiles(hist0, hist1)
		fmt.Printf("; server event-to-online (%d events) p50 ≤ %s, p99 ≤ %s", n, p50, p99)
	}
	fmt.Println()
	return nil
}

// procCPU is a process's user + system CPU time in seconds (0 for pid 0).
func procCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return math.NaN()
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks (USER_HZ 100)
}

// bucket is one cumulative bucket of a Prometheus histogram.
type bucket struct {
	le    float64
	count float64
}

// scrape reads quiver serve's event-to-online histogram of pushes (nil without an address).
func scrape(addr string) []bucket {
	if addr == "" {
		return nil
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	const prefix = `quiver_ingest_event_to_online_seconds_bucket{path="push",le="`
	var bs []bucket
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		le, val, _ := strings.Cut(rest, `"} `)
		f, err := strconv.ParseFloat(le, 64)
		if le == "+Inf" {
			f, err = math.Inf(1), nil
		}
		c, err2 := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err == nil && err2 == nil {
			bs = append(bs, bucket{f, c})
		}
	}
	return bs
}

// quantiles are the events observed between two scrapes and the upper bounds of the buckets
// holding their 50th and 99th percentiles.
func quantiles(before, after []bucket) (int64, string, string) {
	if len(after) == 0 {
		return 0, "?", "?"
	}
	diff := make([]bucket, len(after))
	for i, b := range after {
		diff[i] = b
		if i < len(before) {
			diff[i].count -= before[i].count
		}
	}
	total := diff[len(diff)-1].count
	at := func(p float64) string {
		for _, b := range diff {
			if b.count >= p*total {
				if math.IsInf(b.le, 1) {
					return "+Inf"
				}
				return time.Duration(b.le * float64(time.Second)).String()
			}
		}
		return "+Inf"
	}
	return int64(total), at(.5), at(.99)
}
