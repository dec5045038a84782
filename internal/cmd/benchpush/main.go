// Command benchpush measures push and stream ingestion for docs/BENCHMARKS.md (run by
// scripts/bench-push.sh):
//
//	benchpush push -server ADDR -view V -rows N -batch B -concurrency C
//	    PushFeatures of N rows in requests of B rows from C goroutines: rows/s and ack latency.
//	benchpush stream -quiver BIN -dir REPO -port P -rate R -seconds S
//	    runs an in-process Kafka-protocol server (franz-go kfake) on 127.0.0.1:P and
//	    `BIN -C REPO stream`, produces R messages/s for S seconds stamped with their send time,
//	    and reads event-to-online latency from the consumer's histogram.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchpush push|stream [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "push":
		err = push(os.Args[2:])
	case "stream":
		err = stream(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchpush:", err)
		os.Exit(1)
	}
}

func push(args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	server := fs.String("server", "127.0.0.1:6566", "quiver serve")
	view := fs.String("view", "user_live", "push view (user_id int64, clicks int64, page string)")
	rows := fs.Int("rows", 200_000, "rows in all")
	batch := fs.Int("batch", 1000, "rows per request")
	conc := fs.Int("concurrency", 4, "concurrent requests")
	_ = fs.Parse(args) // ExitOnError
	conn, err := grpc.NewClient(*server, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := pb.NewFeatureServingClient(conn)
	requests := *rows / *batch
	reqs := make([]*pb.PushFeaturesRequest, requests)
	base := time.Now()
	for r := range requests {
		req := &pb.PushFeaturesRequest{FeatureView: *view, Columns: map[string]*pb.RepeatedValue{"user_id": {}, "clicks": {}, "page": {}}}
		for i := range *batch {
			n := int64(r**batch + i)
			req.Columns["user_id"].Val = append(req.Columns["user_id"].Val, &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: n % 100_000}})
			req.Columns["clicks"].Val = append(req.Columns["clicks"].Val, &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: n}})
			req.Columns["page"].Val = append(req.Columns["page"].Val, &pb.Value{Kind: &pb.Value_StringVal{StringVal: "page-" + strconv.Itoa(int(n%50))}})
			req.EventTimestampsMicros = append(req.EventTimestampsMicros, base.Add(time.Duration(n)*time.Microsecond).UnixMicro())
		}
		reqs[r] = req
	}
	lat := make([]time.Duration, requests)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for range *conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= requests {
					return
				}
				t0 := time.Now()
				if _, err := client.PushFeatures(context.Background(), reqs[i]); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	if e := firstErr.Load(); e != nil {
		return e.(error)
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(math.Ceil(p*float64(len(lat))))-1)] }
	fmt.Printf("push: %d rows in %d requests of %d, concurrency %d: %.0f rows/s; ack latency p50 %s, p99 %s, max %s\n",
		requests**batch, requests, *batch, *conc, float64(requests**batch)/el.Seconds(), q(.5).Round(10*time.Microsecond), q(.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
	return nil
}

func stream(args []string) error {
	fs := flag.NewFlagSet("stream", flag.ExitOnError)
	bin := fs.String("quiver", "quiver", "quiver binary")
	dir := fs.String("dir", ".", "feature repo with a kafka view user_stream on topic clicks at 127.0.0.1:PORT")
	port := fs.Int("port", 19092, "Kafka-protocol port")
	metricsPort := fs.Int("metrics-port", 19465, "quiver stream metrics port")
	rate := fs.Int("rate", 5000, "messages per second")
	seconds := fs.Int("seconds", 20, "seconds of production")
	cpu := fs.String("cpu", "", "pin quiver stream to this CPU (taskset -c)")
	_ = fs.Parse(args) // ExitOnError
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(*port), kfake.SeedTopics(4, "clicks"))
	if err != nil {
		return err
	}
	defer cluster.Close()
	metricsAddr := "127.0.0.1:" + strconv.Itoa(*metricsPort)
	argv := []string{*bin, "-C", *dir, "stream", "user_stream", "--metrics-addr", metricsAddr, "--commit-interval", "1s"}
	if *cpu != "" {
		argv = append([]string{"taskset", "-c", *cpu}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		return err
	}
	defer producer.Close()
	time.Sleep(3 * time.Second) // the consumer joins its group
	ctx := context.Background()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	perTick := max(*rate/100, 1)
	n := 0
	end := time.Now().Add(time.Duration(*seconds) * time.Second)
	for time.Now().Before(end) {
		<-tick.C
		now := time.Now().UTC().Format(time.RFC3339Nano)
		for range perTick {
			u := n % 10_000
			producer.Produce(ctx, &kgo.Record{Topic: "clicks", Key: []byte(strconv.Itoa(u)),
				Value: fmt.Appendf(nil, `{"uid": %d, "clicks": %d, "page": "p", "ts": %q}`, u, n, now)}, nil)
			n++
		}
	}
	if err := producer.Flush(ctx); err != nil {
		return err
	}
	time.Sleep(3 * time.Second)
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	count, p50, p99 := histogram(string(body), `quiver_ingest_event_to_online_seconds_bucket{path="stream",le="`)
	fmt.Printf("stream: %d messages at %d/s over 4 partitions; %d rows online; event-to-online p50 ≤ %s, p99 ≤ %s (histogram bucket bounds)\n",
		n, *rate, count, p50, p99)
	return nil
}

// histogram reads a Prometheus histogram's cumulative buckets and returns the count and the
// upper bounds of the buckets holding the 50th and 99th percentiles.
func histogram(text, prefix string) (int64, string, string) {
	type bucket struct {
		le    float64
		count int64
	}
	var bs []bucket
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		rest := strings.TrimPrefix(line, prefix)
		le, val, _ := strings.Cut(rest, `"} `)
		f, err := strconv.ParseFloat(le, 64)
		if le == "+Inf" {
			f, err = math.Inf(1), nil
		}
		c, err2 := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err == nil && err2 == nil {
			bs = append(bs, bucket{f, int64(c)})
		}
	}
	if len(bs) == 0 {
		return 0, "?", "?"
	}
	total := bs[len(bs)-1].count
	at := func(p float64) string {
		for _, b := range bs {
			if float64(b.count) >= p*float64(total) {
				return (time.Duration(b.le * float64(time.Second))).String()
			}
		}
		return "+Inf"
	}
	return total, at(.5), at(.99)
}
