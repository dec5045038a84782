package serving_test

import (
	"context"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
	"github.com/quiverfs/quiver/serving/model"
	"github.com/quiverfs/quiver/serving/model/oip"
	"github.com/quiverfs/quiver/serving/model/onnx"
	"github.com/quiverfs/quiver/serving/model/onnx/onnxtest"
)

// onnxLib returns the ONNX Runtime library scripts/onnxruntime.sh installed, or skips.
func onnxLib(t testing.TB) string {
	t.Helper()
	p := os.Getenv("QUIVER_ONNXRUNTIME_LIB")
	if p == "" {
		t.Skip("QUIVER_ONNXRUNTIME_LIB is not set; run: export QUIVER_ONNXRUNTIME_LIB=$(scripts/onnxruntime.sh)")
	}
	return p
}

// predictRows are three entity rows and the model inputs serving must build for them.
var (
	predictEntities = map[string]*pb.RepeatedValue{
		"user_id":     col(i64(1), i64(2), i64(3)),
		"merchant_id": col(str("m1"), str("m1"), str("m2")),
	}
	nan          = float32(math.NaN())
	predictInput = []float32{
		42, 99.5, 1, 0.75, 12, // user 1: fresh; m1
		nan, nan, nan, 0.75, 12, // user 2: OUTSIDE_MAX_AGE is missing
		3, nan, nan, nan, nan, // user 3: nulls; m2: NOT_FOUND
	}
)

// directPredict runs the model on the inputs serving should have built, without serving.
func directPredict(t *testing.T, lib string, mlp *onnxtest.MLP, data []float32) []float32 {
	t.Helper()
	m, err := onnx.OpenBytes("direct", mlp.Model(), onnx.Options{LibraryPath: lib, Sessions: 1})
	require.NoError(t, err)
	defer m.Close()
	out, err := m.Predict(context.Background(), &model.Batch{Rows: len(data) / len(churnFeatures), Features: churnFeatures, Data: data})
	require.NoError(t, err)
	return out[0].Float32
}

func requireSameFloats(t *testing.T, want []float32, got []*pb.Value) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, math.Float32bits(want[i]), math.Float32bits(got[i].GetFloatVal()), "row %d: want %v, got %v", i, want[i], got[i].GetFloatVal())
	}
}

func TestPredictONNX(t *testing.T) {
	lib := onnxLib(t)
	e := newEnv(t, redisSrv.Addr)
	mlp := onnxtest.NewMLP(len(churnFeatures), 16, 7)
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, "churn.onnx"), mlp.Model(), 0o644))
	opts := e.options(t)
	opts.Models = serving.RuntimeOpener{BaseDir: e.dir, ONNX: onnx.Options{LibraryPath: lib, Sessions: 2}}
	_, conn := startBufconn(t, opts)
	c := pb.NewFeatureServingClient(conn)

	resp, err := c.Predict(context.Background(), &pb.PredictRequest{
		Model:    &pb.ModelRef{Name: "churn", Selector: &pb.ModelRef_Alias{Alias: "latest"}},
		Entities: predictEntities,
	})
	require.NoError(t, err)
	require.Equal(t, "1", resp.ModelVersion)
	require.Len(t, resp.Outputs, 1)
	require.Equal(t, "score", resp.Outputs[0].Name)
	require.Equal(t, []int64{3, 1}, resp.Outputs[0].Shape)
	requireSameFloats(t, directPredict(t, lib, mlp, predictInput), resp.Outputs[0].Values)
	require.InDelta(t, mlp.Eval(predictInput[:5]), resp.Outputs[0].Values[0].GetFloatVal(), 1e-5)
	require.Empty(t, resp.Features, "features only when asked")
}

// TestPredictOIP serves the model from a separate Open Inference Protocol server (what
// `quiver serve-model` runs) and points a runtime: oip model at it.
func TestPredictOIP(t *testing.T) {
	lib := onnxLib(t)
	e := newEnv(t, redisSrv.Addr)
	mlp := onnxtest.NewMLP(len(churnFeatures), 16, 11)
	m, err := onnx.OpenBytes("remote", mlp.Model(), onnx.Options{LibraryPath: lib, Sessions: 2})
	require.NoError(t, err)
	defer m.Close()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	oipCtx, stopOIP := context.WithCancel(context.Background())
	oipDone := make(chan error, 1)
	go func() {
		oipDone <- oip.Serve(oipCtx, lis, nil, oip.ServedModel{Name: "churn_remote", Input: "features", Width: m.Inputs(), Outputs: []string{"score"}, Model: m})
	}()
	stopped := false
	defer func() {
		if !stopped {
			stopOIP()
			require.NoError(t, <-oipDone)
		}
	}()

	yaml := strings.Replace(defsYAML, "models:", "models:\n  - name: churn_remote\n    feature_service: churn_v1\n    runtime: oip\n    endpoint: "+lis.Addr().String(), 1)
	apply(t, e.reg, e.project, parseRepo(t, yaml))
	opts := e.options(t)
	opts.Models = serving.RuntimeOpener{BaseDir: e.dir}
	_, conn := startBufconn(t, opts)
	c := pb.NewFeatureServingClient(conn)

	resp, err := c.Predict(context.Background(), &pb.PredictRequest{Model: &pb.ModelRef{Name: "churn_remote"}, Entities: predictEntities, IncludeFeatures: true})
	require.NoError(t, err)
	require.Equal(t, "churn_remote", resp.ModelName)
	requireSameFloats(t, directPredict(t, lib, mlp, predictInput), resp.Outputs[0].Values)
	require.Len(t, resp.Features, len(churnFeatures))

	// The model server going away is UNAVAILABLE.
	stopOIP()
	require.NoError(t, <-oipDone)
	stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = c.Predict(ctx, &pb.PredictRequest{Model: &pb.ModelRef{Name: "churn_remote"}, Entities: predictEntities})
	require.Contains(t, []codes.Code{codes.Unavailable, codes.DeadlineExceeded}, status.Code(err), "%v", err)
}
