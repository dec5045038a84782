package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/quiverfs/quiver/internal/scaffold"
	"github.com/quiverfs/quiver/internal/testenv"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving/model"
	"github.com/quiverfs/quiver/serving/model/onnx"
	"github.com/quiverfs/quiver/serving/model/onnx/onnxtest"
)

// writeActivity replaces the sample source with rows whose statuses are known: user 1 fresh,
// user 2 older than the view's 7d TTL, user 3 fresh with a null clicks_7d, user 4 absent.
func writeActivity(t *testing.T, path string, now time.Time) {
	writeActivityAs(t, path, now, scaffold.UserActivitySchema)
}

// writeActivityAs is writeActivity with clicks_7d of the schema's type (int64 or int32).
func writeActivityAs(t *testing.T, path string, now time.Time, schema *arrow.Schema) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	add := func(user int64, at time.Time, clicks *int64, spend float64, sessions int32) {
		b.Field(0).(*array.Int64Builder).Append(user)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(at.UnixMicro()))
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(at.UnixMicro()))
		if clicks == nil {
			b.Field(3).AppendNull()
		} else {
			switch cb := b.Field(3).(type) {
			case *array.Int64Builder:
				cb.Append(*clicks)
			case *array.Int32Builder:
				cb.Append(int32(*clicks))
			}
		}
		b.Field(4).(*array.Float64Builder).Append(spend)
		b.Field(5).(*array.Int32Builder).Append(sessions)
	}
	c := func(v int64) *int64 { return &v }
	add(1, now.Add(-48*time.Hour), c(10), 50, 3)
	add(1, now.Add(-time.Hour), c(42), 120.5, 7) // the latest of user 1
	add(2, now.Add(-20*24*time.Hour), c(5), 9.25, 1)
	add(3, now.Add(-2*time.Hour), nil, 33, 2)
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, nil, pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())
}

// TestEndToEndServing is the serving issue's acceptance flow: apply definitions, materialize
// into a real Redis, start quiver serve on TCP, and call GetOnlineFeatures and Predict through
// the generated client.
func TestEndToEndServing(t *testing.T) {
	lib := os.Getenv("QUIVER_ONNXRUNTIME_LIB")
	if lib == "" {
		t.Skip("QUIVER_ONNXRUNTIME_LIB is not set; make test sets it (scripts/onnxruntime.sh)")
	}
	redis := testenv.StartRedis(t)
	env := map[string]string{"QUIVER_ONLINE": "redis://" + redis.Addr + "/0", "QUIVER_ONNXRUNTIME_LIB": lib}
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	now := time.Now().UTC().Truncate(time.Second)
	writeActivity(t, filepath.Join(dir, "data", "user_activity.parquet"), now)

	// The model the definition serves until a version is registered: an MLP over the
	// service's three features, imputing missing ones.
	mlp := onnxtest.NewMLP(3, 4, 11)
	mlp.Impute = []float32{20, 60, 4}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "models"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "models", "churn.onnx"), mlp.Model(), 0o644))
	churn := filepath.Join(dir, "features", "churn.yaml")
	b, err := os.ReadFile(churn)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(churn, []byte(strings.Replace(string(b), "    runtime: onnx\n", "    runtime: onnx\n    path: models/churn.onnx\n", 1)), 0o644))

	r := quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, env, "-C", dir, "materialize", "--start", now.Add(-30*24*time.Hour).Format(time.RFC3339), "--end", now.Add(time.Minute).Format(time.RFC3339))
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Materialized 4 rows")

	port, err := testenv.FreePort()
	require.NoError(t, err)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		var out, errOut strings.Builder
		code := run(ctx, []string{"-C", dir, "serve", "--addr", addr, "--metrics-addr", ""}, &out, &errOut, func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			return ""
		})
		done <- result{code: code, stdout: out.String(), stderr: errOut.String()}
	}()
	defer func() {
		cancel()
		res := <-done
		require.Equal(t, exitOK, res.code, res.stderr)
	}()
	require.Equal(t, exitOK, quiver(t, nil, "health", "--server", addr, "--wait", "20s").code)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := pb.NewFeatureServingClient(conn)
	users := &pb.RepeatedValue{}
	for _, u := range []int64{1, 2, 3, 4} {
		users.Val = append(users.Val, &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: u}})
	}
	entities := map[string]*pb.RepeatedValue{"user_id": users}

	got, err := client.GetOnlineFeatures(context.Background(), &pb.GetOnlineFeaturesRequest{
		Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "churn_v1"}, Entities: entities})
	require.NoError(t, err)
	require.Len(t, got.Features, 3)
	clicks := got.Features[0]
	require.Equal(t, []pb.FieldStatus{pb.FieldStatus_PRESENT, pb.FieldStatus_OUTSIDE_MAX_AGE, pb.FieldStatus_NULL_VALUE, pb.FieldStatus_NOT_FOUND}, clicks.Statuses)
	require.EqualValues(t, 42, clicks.GetValues().GetInt64Values().GetVal()[0], "user 1's latest row")
	require.Equal(t, now.Add(-time.Hour).UnixMicro(), clicks.EventTimestampsMicros[0])
	require.Equal(t, 120.5, got.Features[1].GetValues().GetDoubleValues().GetVal()[0])

	pred, err := client.Predict(context.Background(), &pb.PredictRequest{Model: &pb.ModelRef{Name: "churn"}, Entities: entities})
	require.NoError(t, err)
	require.EqualValues(t, 4, pred.Rows)
	require.Equal(t, "churn_v1", pred.FeatureService)

	// The same model, run directly on the same inputs: user 1's fresh values, NaN for what
	// is not fresh (outside max age, null, not found).
	nan := float32(math.NaN())
	in := &model.Batch{Rows: 4, Features: []string{"clicks_7d", "spend_30d", "sessions_7d"}, Data: []float32{
		42, 120.5, 7,
		nan, nan, nan,
		nan, 33, 2,
		nan, nan, nan,
	}}
	direct, err := onnx.OpenBytes("churn", mlp.Model(), onnx.Options{LibraryPath: lib, Sessions: 1})
	require.NoError(t, err)
	defer direct.Close()
	want, err := direct.Predict(context.Background(), in)
	require.NoError(t, err)
	require.Len(t, pred.Outputs, 1)
	for row := 0; row < 4; row++ {
		require.Equal(t, want[0].Float32[row], pred.Outputs[0].Values[row].GetFloatVal(), "row %d", row)
	}
}
