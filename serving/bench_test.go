package serving_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/benchdata"
	"github.com/quiverfs/quiver/online"
	onlineredis "github.com/quiverfs/quiver/online/redis"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/registry/open"
	"github.com/quiverfs/quiver/serving"
	"github.com/quiverfs/quiver/serving/model/onnx"
	"github.com/quiverfs/quiver/serving/model/onnx/onnxtest"
)

// The benchmarks run `quiver serve` as it runs in production: over TCP on loopback, backed by
// the package's redis-server, with DESIGN.md's shapes: 3 views × 10 features (30 features) per
// entity, 10,000 entities stored, and a 30-input MLP for Predict. See docs/BENCHMARKS.md.

const (
	benchViews    = 3
	benchFeatures = 10
	benchUsers    = 10000
)

func benchYAML() string { return benchdata.ServingYAML(benchViews, benchFeatures) }

type benchEnv struct {
	conns []*grpc.ClientConn
	stop  func()
	opts  serving.Options // the server's options, for variants (auth_bench_test.go)
}

var (
	benchOnce sync.Once
	benchE    *benchEnv
	benchErr  error
)

// setupBench starts one server for all benchmarks of the run.
func setupBench(b *testing.B) *benchEnv {
	benchOnce.Do(func() { benchE, benchErr = newBenchEnv(b) })
	require.NoError(b, benchErr)
	return benchE
}

func newBenchEnv(b *testing.B) (*benchEnv, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "quiver-serving-bench-")
	if err != nil {
		return nil, err
	}
	reg, err := open.Open(ctx, "sqlite://"+filepath.Join(dir, "registry.db"))
	if err != nil {
		return nil, err
	}
	project := fmt.Sprintf("bench_%d", rand.Uint32())
	repo := parseRepo(b, benchYAML())
	apply(b, reg, project, repo)
	store, err := onlineredis.Open(ctx, "redis://"+redisSrv.Addr, onlineredis.Options{})
	if err != nil {
		return nil, err
	}
	if err := writeBenchRows(ctx, store, project, repo); err != nil {
		return nil, err
	}
	opts := serving.Options{Project: project, Registry: reg, Store: store, Registerer: prometheus.NewRegistry(), MaxEntityRows: 1000}
	if lib := os.Getenv("QUIVER_ONNXRUNTIME_LIB"); lib != "" {
		if err := os.WriteFile(filepath.Join(dir, "mlp30.onnx"), onnxtest.NewMLP(benchViews*benchFeatures, 32, 3).Model(), 0o644); err != nil {
			return nil, err
		}
		opts.Models = serving.RuntimeOpener{BaseDir: dir, ONNX: onnx.Options{LibraryPath: lib}}
	}
	srv, err := serving.NewServer(ctx, opts)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, lis) }()
	e := &benchEnv{opts: opts}
	for range 4 {
		c, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			cancel()
			return nil, err
		}
		e.conns = append(e.conns, c)
	}
	e.stop = func() {
		for _, c := range e.conns {
			_ = c.Close()
		}
		cancel()
		<-done
		_ = store.Close()
		_ = reg.Close()
		_ = os.RemoveAll(dir)
	}
	return e, nil
}

// writeBenchRows stores benchUsers entities × benchViews views of benchFeatures features.
func writeBenchRows(ctx context.Context, store online.Writer, project string, repo *definitions.Repo) error {
	ents := []definitions.Entity{*repo.Entity("user")}
	now := time.Now()
	for v := range benchViews {
		view, err := online.NewView(project, repo.FeatureView(fmt.Sprintf("view_%d", v)), ents)
		if err != nil {
			return err
		}
		rows := make([]online.Row, benchUsers)
		for u := range benchUsers {
			k, err := view.Key(online.Int64(int64(u)))
			if err != nil {
				return err
			}
			vals := make([]online.Value, benchFeatures)
			for f := range vals {
				vals[f] = online.Float64(float64(u%97) / 97 * float64(f+1))
			}
			rows[u] = online.Row{Key: k, EventTS: now.Add(-time.Hour), Values: vals}
		}
		if err := store.Write(ctx, view, rows); err != nil {
			return err
		}
	}
	return nil
}

// benchCleanup stops the benchmark server; TestMain calls it.
func benchCleanup() {
	if benchE != nil {
		benchE.stop()
	}
}

// runLoad makes b.N calls from conc goroutines and reports throughput and latency percentiles.
func runLoad(b *testing.B, conc, rowsPerCall int, call func(c pb.FeatureServingClient, rng *rand.Rand) error) {
	e := setupBench(b)
	clients := make([]pb.FeatureServingClient, len(e.conns))
	for i, c := range e.conns {
		clients[i] = pb.NewFeatureServingClient(c)
	}
	// Warm up connections and the model.
	for _, c := range clients {
		require.NoError(b, call(c, rand.New(rand.NewPCG(1, 2))))
	}
	b.ReportAllocs()
	var next atomic.Int64
	lat := make([][]time.Duration, conc)
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range conc {
		wg.Go(func() {
			c := clients[g%len(clients)]
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			mine := make([]time.Duration, 0, b.N/conc+1)
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := call(c, rng); err != nil {
					failed.Store(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			lat[g] = mine
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(b.N*rowsPerCall)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(0.999), "p999-µs")
}

func benchEntities(rng *rand.Rand, n int) map[string]*pb.RepeatedValue {
	c := &pb.RepeatedValue{Val: make([]*pb.Value, n)}
	for i := range c.Val {
		c.Val[i] = i64(int64(rng.IntN(benchUsers)))
	}
	return map[string]*pb.RepeatedValue{"user_id": c}
}

func BenchmarkGetOnlineFeatures(b *testing.B) {
	for _, rows := range []int{1, 100} {
		for _, conc := range []int{1, 32} {
			b.Run(fmt.Sprintf("entities=%d/conc=%d", rows, conc), func(b *testing.B) {
				runLoad(b, conc, rows, func(c pb.FeatureServingClient, rng *rand.Rand) error {
					resp, err := c.GetOnlineFeatures(context.Background(), &pb.GetOnlineFeaturesRequest{
						Kind:     &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "bench30"},
						Entities: benchEntities(rng, rows),
					})
					if err == nil && (len(resp.Features) != benchViews*benchFeatures || resp.Features[0].Statuses[0] != pb.FieldStatus_PRESENT) {
						err = fmt.Errorf("unexpected response: %d features", len(resp.Features))
					}
					return err
				})
			})
		}
	}
}

func BenchmarkPredict(b *testing.B) {
	if os.Getenv("QUIVER_ONNXRUNTIME_LIB") == "" {
		b.Skip("QUIVER_ONNXRUNTIME_LIB is not set; run: export QUIVER_ONNXRUNTIME_LIB=$(scripts/onnxruntime.sh)")
	}
	for _, rows := range []int{1, 100} {
		for _, conc := range []int{1, 32} {
			b.Run(fmt.Sprintf("entities=%d/conc=%d", rows, conc), func(b *testing.B) {
				runLoad(b, conc, rows, func(c pb.FeatureServingClient, rng *rand.Rand) error {
					resp, err := c.Predict(context.Background(), &pb.PredictRequest{
						Model:    &pb.ModelRef{Name: "mlp30"},
						Entities: benchEntities(rng, rows),
					})
					if err == nil && len(resp.Outputs[0].Values) != rows {
						err = fmt.Errorf("unexpected response: %d rows", len(resp.Outputs[0].Values))
					}
					return err
				})
			})
		}
	}
}
