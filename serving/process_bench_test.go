package serving_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/quiverfs/quiver/internal/testenv"
	onlineredis "github.com/quiverfs/quiver/online/redis"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/registry/open"
	"github.com/quiverfs/quiver/serving/model/onnx/onnxtest"
)

// BenchmarkServeProcess measures issue 17's serving targets against a real `quiver serve`
// process (pinned with taskset when QUIVER_BENCH_CPU is set) with a Go load generator that
// keeps its calls in flight, and reports the server's CPU per call from /proc/PID/stat:
// GetOnlineFeatures of 1 entity at concurrency 32 (target 1), of 100 entities at concurrency
// 1 (target 2), and Predict of the example MLP for 1 entity at concurrency 32 (target 5).
// Run the same benchmark against two builds to compare them (docs/BENCHMARKS.md):
//
//	export QUIVER_ONNXRUNTIME_LIB=$(scripts/onnxruntime.sh)
//	go build -o /tmp/quiver ./cmd/quiver
//	QUIVER_BENCH_QUIVER=/tmp/quiver QUIVER_BENCH_CPU=0 taskset -c 1 \
//	  go test -run '^$' -bench '^BenchmarkServeProcess$' -benchtime 10000x ./serving/
//
// QUIVER_BENCH_QUIVER (required), QUIVER_BENCH_REDIS and QUIVER_BENCH_CPU are as for
// BenchmarkTransports; Predict needs QUIVER_ONNXRUNTIME_LIB.
func BenchmarkServeProcess(b *testing.B) {
	bin := os.Getenv("QUIVER_BENCH_QUIVER")
	if bin == "" {
		b.Skip("QUIVER_BENCH_QUIVER is not set")
	}
	redisAddr := os.Getenv("QUIVER_BENCH_REDIS")
	if redisAddr == "" {
		redisAddr = redisSrv.Addr
	}
	ctx := context.Background()
	dir := b.TempDir()
	project := fmt.Sprintf("bench_%d", rand.Uint32())
	reg, err := open.Open(ctx, "sqlite://"+filepath.Join(dir, "registry.db"))
	require.NoError(b, err)
	repo := parseRepo(b, benchYAML())
	apply(b, reg, project, repo)
	require.NoError(b, reg.Close())
	store, err := onlineredis.Open(ctx, "redis://"+redisAddr, onlineredis.Options{})
	require.NoError(b, err)
	require.NoError(b, writeBenchRows(ctx, store, project, repo))
	require.NoError(b, store.Close())
	require.NoError(b, os.WriteFile(filepath.Join(dir, "mlp30.onnx"), onnxtest.NewMLP(benchViews*benchFeatures, 32, 3).Model(), 0o644))
	require.NoError(b, os.WriteFile(filepath.Join(dir, "quiver.yaml"), fmt.Appendf(nil,
		"project: %s\nregistry: sqlite://%s\nonline: redis://%s/0\n", project, filepath.Join(dir, "registry.db"), redisAddr), 0o644))
	port, err := testenv.FreePort()
	require.NoError(b, err)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	predict := os.Getenv("QUIVER_ONNXRUNTIME_LIB") != ""
	args := []string{bin, "-C", dir, "serve", "--addr", addr, "--metrics-addr", ""}
	if !predict {
		args = append(args, "--preload-models=false")
	}
	if cpu := os.Getenv("QUIVER_BENCH_CPU"); cpu != "" {
		args = append([]string{"taskset", "-c", cpu}, args...)
	}
	var serverLog bytes.Buffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &serverLog, &serverLog
	require.NoError(b, cmd.Start())
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	conns := make([]*grpc.ClientConn, 4)
	for i := range conns {
		conns[i], err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(b, err)
		b.Cleanup(func() { _ = conns[i].Close() })
	}
	require.Eventually(b, func() bool {
		r, err := healthpb.NewHealthClient(conns[0]).Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, 20*time.Second, 20*time.Millisecond, "server did not start: %s", &serverLog)

	get := func(rows int) func(int, *rand.Rand) error {
		return func(g int, rng *rand.Rand) error {
			resp, err := pb.NewFeatureServingClient(conns[g%len(conns)]).GetOnlineFeatures(ctx, &pb.GetOnlineFeaturesRequest{
				Kind:     &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "bench30"},
				Entities: benchEntities(rng, rows),
			})
			if err == nil && (len(resp.Features) != benchViews*benchFeatures || len(resp.Features[0].Statuses) != rows || resp.Features[0].Statuses[0] != pb.FieldStatus_PRESENT) {
				err = fmt.Errorf("unexpected response: %d features", len(resp.Features))
			}
			return err
		}
	}
	predict1 := func(g int, rng *rand.Rand) error {
		resp, err := pb.NewFeatureServingClient(conns[g%len(conns)]).Predict(ctx, &pb.PredictRequest{
			Model:    &pb.ModelRef{Name: "mlp30"},
			Entities: benchEntities(rng, 1),
		})
		if err == nil && len(resp.Outputs[0].Values) != 1 {
			err = fmt.Errorf("unexpected response: %d rows", len(resp.Outputs[0].Values))
		}
		return err
	}
	for _, c := range []struct {
		name string
		conc int
		call func(int, *rand.Rand) error
	}{
		{"get/entities=1/conc=32", 32, get(1)},
		{"get/entities=100/conc=1", 1, get(100)},
		{"predict/entities=1/conc=32", 32, predict1},
	} {
		if c.call == nil || (!predict && c.name[:7] == "predict") {
			continue
		}
		b.Run(c.name, func(b *testing.B) { processLoad(b, cmd.Process.Pid, c.conc, c.call) })
	}
}
