package serving_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
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
	ctx := context.Background()
	dir, _, _ := benchProcessRepo(b, benchYAML())
	require.NoError(b, os.WriteFile(filepath.Join(dir, "mlp30.onnx"), onnxtest.NewMLP(benchViews*benchFeatures, 32, 3).Model(), 0o644))
	port, err := testenv.FreePort()
	require.NoError(b, err)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	predict := os.Getenv("QUIVER_ONNXRUNTIME_LIB") != ""
	var extra []string
	if !predict {
		extra = append(extra, "--preload-models=false")
	}
	cmd, conns := startServeProcess(b, bin, dir, addr, extra...)

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
