// Command loadgen is the second gRPC load generator of scripts/bench.sh, beside ghz. ghz
// decodes every response through dynamic protobuf messages, which costs it ~700 µs of CPU per
// 30-column GetOnlineFeatures response: pinned to its one core it cannot offer more than
// ~1,500 calls/s, so the server never sees 32 calls in flight and "p99 at 5,000 calls/s"
// cannot be measured with it. loadgen sends the same requests (a ghz data file: a JSON array
// of requests, sent round robin) through the generated client.
//
// Closed loop (-c calls in flight) or open loop (-rps: calls are started on a fixed schedule
// whatever the server does, and each latency is measured from the call's scheduled start, so
// a stalled server shows in the percentiles instead of slowing the generator down — no
// coordinated omission). It prints one JSON object: count, errors, rps, p50_us, p90_us,
// p99_us, p999_us, max_us.
//
//	loadgen -addr 127.0.0.1:6566 -method GetOnlineFeatures -data get1.json -c 32 -n 20000
//	loadgen -addr 127.0.0.1:6566 -method GetOnlineFeatures -data get1.json -rps 5000 -n 20000
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

type result struct {
	Count  int     `json:"count"`
	Errors int64   `json:"errors"`
	First  string  `json:"first_error,omitempty"`
	RPS    float64 `json:"rps"`
	P50    float64 `json:"p50_us"`
	P90    float64 `json:"p90_us"`
	P99    float64 `json:"p99_us"`
	P999   float64 `json:"p999_us"`
	Max    float64 `json:"max_us"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6566", "the server's host:port")
	method := flag.String("method", "GetOnlineFeatures", "GetOnlineFeatures or Predict")
	data := flag.String("data", "", "a ghz data file: a JSON array of requests")
	conc := flag.Int("c", 32, "calls in flight (closed loop); with -rps, the most in flight")
	n := flag.Int("n", 10000, "calls to make")
	rps := flag.Int("rps", 0, "open loop: start this many calls per second")
	conns := flag.Int("connections", 4, "HTTP/2 connections, calls spread round robin")
	warm := flag.Int("warmup", 500, "calls made first and not measured")
	flag.Parse()
	if err := run(*addr, *method, *data, *conc, *n, *rps, *conns, *warm); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(addr, method, data string, conc, n, rps, nconns, warm int) error {
	call, err := caller(method, data)
	if err != nil {
		return err
	}
	clients := make([]pb.FeatureServingClient, max(nconns, 1))
	for i := range clients {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		clients[i] = pb.NewFeatureServingClient(conn)
	}
	ctx := context.Background()
	for i := range warm {
		if err := call(ctx, clients[i%len(clients)], i); err != nil {
			return fmt.Errorf("warm-up call: %w", err)
		}
	}

	lat := make([]time.Duration, n)
	var errs atomic.Int64
	var firstErr atomic.Value
	do := func(i int, start time.Time) {
		if err := call(ctx, clients[i%len(clients)], i); err != nil {
			if errs.Add(1) == 1 {
				firstErr.Store(err.Error())
			}
		}
		lat[i] = time.Since(start)
	}
	begin := time.Now()
	var wg sync.WaitGroup
	if rps > 0 {
		// Open loop: call i starts at begin + i/rps. At most conc calls in flight; a call
		// that must wait for a slot still counts its latency from its scheduled start.
		slots := make(chan struct{}, conc)
		interval := time.Second / time.Duration(rps)
		for i := range n {
			at := begin.Add(time.Duration(i) * interval)
			if d := time.Until(at); d > 0 {
				time.Sleep(d)
			}
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				do(i, at)
			})
		}
	} else {
		var next atomic.Int64
		for range conc {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					do(i, time.Now())
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(begin)

	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := min(int(p*float64(n)), n-1)
		return float64(lat[i].Microseconds())
	}
	r := result{Count: n, Errors: errs.Load(), RPS: float64(n) / elapsed.Seconds(),
		P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), P999: pct(0.999), Max: float64(lat[n-1].Microseconds())}
	if s, ok := firstErr.Load().(string); ok {
		r.First = s
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// caller decodes the data file into typed requests and returns a function making call i with
// request i modulo their number.
func caller(method, path string) (func(context.Context, pb.FeatureServingClient, int) error, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%s: want a JSON array of requests: %w", path, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: no requests", path)
	}
	switch method {
	case "GetOnlineFeatures":
		reqs := make([]*pb.GetOnlineFeaturesRequest, len(items))
		for i, it := range items {
			reqs[i] = &pb.GetOnlineFeaturesRequest{}
			if err := protojson.Unmarshal(it, reqs[i]); err != nil {
				return nil, fmt.Errorf("%s: request %d: %w", path, i, err)
			}
		}
		return func(ctx context.Context, c pb.FeatureServingClient, i int) error {
			_, err := c.GetOnlineFeatures(ctx, reqs[i%len(reqs)])
			return err
		}, nil
	case "Predict":
		reqs := make([]*pb.PredictRequest, len(items))
		for i, it := range items {
			reqs[i] = &pb.PredictRequest{}
			if err := protojson.Unmarshal(it, reqs[i]); err != nil {
				return nil, fmt.Errorf("%s: request %d: %w", path, i, err)
			}
		}
		return func(ctx context.Context, c pb.FeatureServingClient, i int) error {
			_, err := c.Predict(ctx, reqs[i%len(reqs)])
			return err
		}, nil
	}
	return nil, errors.New("-method: want GetOnlineFeatures or Predict, got " + method)
}
