package serving_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/offline"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/training"
)

const float32RequestYAML = `
request_sources:
  - name: r32
    fields: [{ name: amount32, type: float32 }]
on_demand_feature_views:
  - name: r32_od
    inputs: [r32]
    features:
      - { name: widened, type: float64, expr: "r32.amount32" }
      - { name: same, type: float32, expr: "r32.amount32" }
`

// float32Amounts are float64 values sent for a float32 request field: most are not float32
// values, so how they become one shows in the features computed from them.
var float32Amounts = []float64{0.1, 1.0 / 3, 16777217, -2.5, math.MaxFloat32, math.Inf(-1)}

// TestFloat32RequestFieldSameInServingAndDatasetCreate is issue 23's train/serve regression: a
// float64 for a float32 request field is rounded to the nearest float32 by serving (a
// request_context value) and by dataset create (an entity-file column), so the on-demand
// features computed from it agree bit for bit; a value beyond float32's range is refused by
// both, naming the field and row. On main, serving rounded and dataset create refused the
// column.
func TestFloat32RequestFieldSameInServingAndDatasetCreate(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	repo := parseRepo(t, strings.Replace(defsYAML, "feature_services:\n", "feature_services:\n  - name: r32_service\n    features: [\"r32_od:*\"]\n", 1)+float32RequestYAML)
	apply(t, e.reg, e.project, repo)
	_, conn := startBufconn(t, e.options(t))
	client := pb.NewFeatureServingClient(conn)
	ctx := context.Background()

	// Serving.
	n := len(float32Amounts)
	ids := make([]int64, n)
	amounts := make([]*pb.Value, n)
	for i, x := range float32Amounts {
		ids[i], amounts[i] = int64(i+1), f64(x)
	}
	resp, err := client.GetOnlineFeatures(ctx, &pb.GetOnlineFeaturesRequest{
		Kind:           &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "r32_service"},
		Entities:       users(ids...),
		RequestContext: map[string]*pb.RepeatedValue{"amount32": col(amounts...)},
	})
	require.NoError(t, err)
	served := columnByName(t, resp.Features, "widened")
	servedSame := columnByName(t, resp.Features, "same")

	// Dataset create, over an entity file of the same rows.
	snap, err := catalog.Load(ctx, e.reg, e.project)
	require.NoError(t, err)
	dir := t.TempDir()
	entities := filepath.Join(dir, "entities.parquet")
	writeAmounts(t, entities, float32Amounts)
	res, err := training.CreateDataset(ctx, e.reg, nil, snap, training.DatasetRequest{
		Project: e.project, Name: "r32", Service: "r32_service", Entities: entities, Warehouse: filepath.Join(dir, "warehouse"),
	})
	require.NoError(t, err, "dataset create takes a float64 column for a float32 request field, as serving does")
	built := readColumns(t, res.Dir, "widened", "same")

	for i, x := range float32Amounts {
		want := float32(x)
		require.Equal(t, math.Float64bits(float64(want)), math.Float64bits(cell(served, i).GetDoubleVal()), "serving row %d (%v)", i, x)
		require.Equal(t, math.Float64bits(float64(want)), math.Float64bits(built[0].(*array.Float64).Value(i)), "dataset row %d (%v)", i, x)
		require.Equal(t, math.Float32bits(want), math.Float32bits(cell(servedSame, i).GetFloatVal()), "serving row %d (%v)", i, x)
		require.Equal(t, math.Float32bits(want), math.Float32bits(built[1].(*array.Float32).Value(i)), "dataset row %d (%v)", i, x)
	}

	// A value no float32 holds is refused by both.
	_, err = client.GetOnlineFeatures(ctx, &pb.GetOnlineFeaturesRequest{
		Kind:           &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "r32_service"},
		Entities:       users(1, 2),
		RequestContext: map[string]*pb.RepeatedValue{"amount32": col(f64(1), f64(1e39))},
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.ErrorContains(t, err, `"amount32" row 1`)
	require.ErrorContains(t, err, "float32")
	writeAmounts(t, entities, []float64{1, 1e39})
	_, err = training.CreateDataset(ctx, e.reg, nil, snap, training.DatasetRequest{
		Project: e.project, Name: "r32", Service: "r32_service", Entities: entities, Warehouse: filepath.Join(dir, "warehouse"),
	})
	require.ErrorIs(t, err, training.ErrInvalidInput)
	require.ErrorContains(t, err, `"amount32"`)
	require.ErrorContains(t, err, "row 2") // entity files count rows from 1
	require.ErrorContains(t, err, "float32")
}

// writeAmounts writes an entity file: user_id, event_timestamp and amount32 (float64).
func writeAmounts(t *testing.T, path string, amounts []float64) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_timestamp", Type: offline.TimestampType},
		{Name: "amount32", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, x := range amounts {
		b.Field(0).(*array.Int64Builder).Append(int64(i + 1))
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(at.UnixMicro()))
		b.Field(2).(*array.Float64Builder).Append(x)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := pqarrow.NewFileWriter(schema, f, nil, pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())
}

// readColumns reads the named columns of the dataset in dir, in row order.
func readColumns(t *testing.T, dir string, names ...string) []arrow.Array {
	t.Helper()
	m, _, err := training.ReadManifest(dir)
	require.NoError(t, err)
	rr, err := training.OpenFiles(context.Background(), dir, m)
	require.NoError(t, err)
	defer rr.Release()
	var recs []arrow.RecordBatch
	for rr.Next() {
		rec := rr.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	require.NoError(t, rr.Err())
	tbl := array.NewTableFromRecords(rr.Schema(), recs)
	defer tbl.Release()
	out := make([]arrow.Array, len(names))
	for i, n := range names {
		idx := rr.Schema().FieldIndices(n)
		require.NotEmpty(t, idx, "column %s", n)
		chunks := tbl.Column(idx[0]).Data().Chunks()
		a, err := array.Concatenate(chunks, memory.DefaultAllocator)
		require.NoError(t, err)
		out[i] = a
	}
	for _, r := range recs {
		r.Release()
	}
	return out
}
