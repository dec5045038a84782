package main

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
)

const parityYAML = `entities:
  - name: pu
    join_keys: [{ name: pu_id, type: int64 }]
sources:
  - name: parity_src
    parquet: { path: data/parity.parquet }
    timestamp_field: event_ts
feature_views:
  - name: parity_stats
    entities: [pu]
    source: parity_src
    features:
      - { name: f64, type: float64 }
      - { name: f32, type: float32 }
      - { name: n, type: int64 }
      - { name: s, type: string }
request_sources:
  - name: preq
    fields: [{ name: amount, type: float64 }, { name: code, type: string }, { name: k, type: int64 }]
on_demand_feature_views:
  - name: pod
    inputs: [preq, parity_stats]
    features:
      - { name: ratio, type: float64, expr: "preq.amount / parity_stats.f64" }
      - { name: prod32, type: float32, expr: "parity_stats.f32 * preq.amount" }
      - { name: safe, type: float64, expr: "has(parity_stats.f64) ? parity_stats.f64 + preq.amount : -1.0" }
      - { name: total, type: int64, expr: "parity_stats.n + preq.k" }
      - { name: cat, type: string, expr: "preq.code + parity_stats.s" }
      - { name: flag, type: bool, expr: "preq.amount > parity_stats.f64 || size(preq.code) == 0" }
      - { name: small, type: int32, expr: "preq.k * 3" }
feature_services:
  - name: parity_svc
    features: [parity_stats:f64, "pod:*", parity_stats:n]
`

// parityOut is the service's declared order: stored and on-demand features mixed.
var parityOut = []string{"f64", "ratio", "prod32", "safe", "total", "cat", "flag", "small", "n"}

var (
	edgeF64 = []float64{0, math.Copysign(0, -1), 1, -1, 0.1, math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1e300, -3.5}
	edgeF32 = []float32{0, float32(math.Copysign(0, -1)), 1.5, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, math.SmallestNonzeroFloat32, -7}
	edgeI64 = []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 1 << 40, 715827882, 715827883, -715827883}
	edgeStr = []string{"", "DE", "ü", "a\x00b", strings.Repeat("x", 300)}
)

func writeParquet(t *testing.T, path string, rec arrow.RecordBatch) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, nil, pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())
}

// parityData writes the feature rows and the entity rows (with the request fields as columns):
// rows entity rows, one user each; a tenth of the users have no feature row, and every value
// is null a seventh of the time or else drawn from edge values and random ones.
func parityData(t *testing.T, dir string, rows int, now time.Time) {
	rng := rand.New(rand.NewPCG(14, 2026))
	pick := func() bool { return rng.IntN(7) == 0 }
	f64 := func() float64 {
		if rng.IntN(2) == 0 {
			return edgeF64[rng.IntN(len(edgeF64))]
		}
		return (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(40)-20))
	}
	i64 := func() int64 {
		if rng.IntN(2) == 0 {
			return edgeI64[rng.IntN(len(edgeI64))]
		}
		return rng.Int64N(2000) - 1000
	}
	str := func() string {
		if rng.IntN(2) == 0 {
			return edgeStr[rng.IntN(len(edgeStr))]
		}
		return strconv.Itoa(rng.IntN(100))
	}
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	fs := arrow.NewSchema([]arrow.Field{
		{Name: "pu_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_ts", Type: ts},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	es := arrow.NewSchema([]arrow.Field{
		{Name: "pu_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_timestamp", Type: ts},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "code", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "k", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	fb := array.NewRecordBuilder(memory.DefaultAllocator, fs)
	eb := array.NewRecordBuilder(memory.DefaultAllocator, es)
	defer fb.Release()
	defer eb.Release()
	for u := range int64(rows) {
		if rng.IntN(10) != 0 {
			fb.Field(0).(*array.Int64Builder).Append(u)
			fb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(now.Add(-time.Hour).UnixMicro()))
			if pick() {
				fb.Field(2).AppendNull()
			} else {
				fb.Field(2).(*array.Float64Builder).Append(f64())
			}
			if pick() {
				fb.Field(3).AppendNull()
			} else if rng.IntN(2) == 0 {
				fb.Field(3).(*array.Float32Builder).Append(edgeF32[rng.IntN(len(edgeF32))])
			} else {
				fb.Field(3).(*array.Float32Builder).Append(float32(rng.NormFloat64()))
			}
			if pick() {
				fb.Field(4).AppendNull()
			} else {
				fb.Field(4).(*array.Int64Builder).Append(i64())
			}
			if pick() {
				fb.Field(5).AppendNull()
			} else {
				fb.Field(5).(*array.StringBuilder).Append(str())
			}
		}
		eb.Field(0).(*array.Int64Builder).Append(u)
		eb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(now.UnixMicro()))
		if pick() {
			eb.Field(2).AppendNull()
		} else {
			eb.Field(2).(*array.Float64Builder).Append(f64())
		}
		if pick() {
			eb.Field(3).AppendNull()
		} else {
			eb.Field(3).(*array.StringBuilder).Append(str())
		}
		if pick() {
			eb.Field(4).AppendNull()
		} else {
			eb.Field(4).(*array.Int64Builder).Append(i64())
		}
	}
	frec, erec := fb.NewRecordBatch(), eb.NewRecordBatch()
	defer frec.Release()
	defer erec.Release()
	writeParquet(t, filepath.Join(dir, "data", "parity.parquet"), frec)
	writeParquet(t, filepath.Join(dir, "data", "parity_entities.parquet"), erec)
}

// readDataset reads every row of a dataset's Parquet files as one record per file.
func readDataset(t *testing.T, dir string) []arrow.RecordBatch {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	require.NoError(t, err)
	if len(files) == 0 {
		files, err = filepath.Glob(filepath.Join(dir, "*", "*.parquet"))
		require.NoError(t, err)
	}
	require.NotEmpty(t, files)
	var out []arrow.RecordBatch
	for _, p := range files {
		rdr, err := file.OpenParquetFile(p, false)
		require.NoError(t, err)
		fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		require.NoError(t, err)
		tbl, err := fr.ReadTable(context.Background())
		require.NoError(t, err)
		tr := array.NewTableReader(tbl, 1<<20)
		for tr.Next() {
			rec := tr.RecordBatch()
			rec.Retain()
			out = append(out, rec)
		}
		tr.Release()
		tbl.Release()
		require.NoError(t, rdr.Close())
	}
	return out
}

// TestOnDemandParity is issue 14's parity acceptance: thousands of random rows, nulls and
// edge values (NaN, ±Inf, -0, huge numbers, empty strings) included, go through `quiver
// dataset create` and through `quiver serve` over gRPC; every on-demand feature (and the
// stored ones beside them, in the service's declared order) is identical, bit for bit for
// floats, null for null.
func TestOnDemandParity(t *testing.T) {
	const rows = 3000
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	now := time.Now().UTC().Truncate(time.Second)
	writeFile(t, filepath.Join(dir, "features", "parity.yaml"), parityYAML)
	parityData(t, dir, rows, now)

	r := quiver(t, nil, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", dir, "materialize", "--start", now.Add(-48*time.Hour).Format(time.RFC3339), "--end", now.Add(time.Minute).Format(time.RFC3339))
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", dir, "-o", "json", "dataset", "create", "parity", "--service", "parity_svc", "--entities", filepath.Join(dir, "data", "parity_entities.parquet"))
	require.Equal(t, exitOK, r.code, r.stderr)
	var created struct {
		Location string `json:"location"`
		Rows     int64  `json:"rows"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &created), r.stdout)
	require.EqualValues(t, rows, created.Rows)
	recs := readDataset(t, created.Location)
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	// The dataset's columns: the entity rows' own, then the service's features in order.
	schema := recs[0].Schema()
	var names []string
	for _, f := range schema.Fields() {
		names = append(names, f.Name)
	}
	require.Equal(t, append([]string{"pu_id", "event_timestamp", "amount", "code", "k"}, parityOut...), names)

	addr := startServe(t, dir, onnxEnv(), "--preload-models=false")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := pb.NewFeatureServingClient(conn)

	const batch = 500
	row := 0
	checked := map[string]int{}
	for _, rec := range recs {
		for lo := 0; lo < int(rec.NumRows()); lo += batch {
			hi := min(lo+batch, int(rec.NumRows()))
			req := &pb.GetOnlineFeaturesRequest{
				Kind:           &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "parity_svc"},
				Entities:       map[string]*pb.RepeatedValue{"pu_id": protoColumn(rec.Column(0), lo, hi)},
				RequestContext: map[string]*pb.RepeatedValue{"amount": protoColumn(rec.Column(2), lo, hi), "code": protoColumn(rec.Column(3), lo, hi), "k": protoColumn(rec.Column(4), lo, hi)},
			}
			resp, err := client.GetOnlineFeatures(context.Background(), req)
			require.NoError(t, err)
			require.Len(t, resp.Features, len(parityOut))
			for i, fc := range resp.Features {
				require.Equal(t, parityOut[i], fc.Name)
				col := rec.Column(5 + i)
				for r := lo; r < hi; r++ {
					sr := r - lo
					offNull := col.IsNull(r)
					require.Equal(t, offNull, serving.IsNull(fc, sr), "row %d feature %s: null in dataset %v", row+r, fc.Name, offNull)
					if offNull {
						continue
					}
					checked[fc.Name]++
					got := serving.VectorValue(fc.Values, sr)
					switch c := col.(type) {
					case *array.Float64:
						require.Equal(t, math.Float64bits(c.Value(r)), math.Float64bits(got.GetDoubleVal()), "row %d %s: %v vs %v", row+r, fc.Name, c.Value(r), got.GetDoubleVal())
					case *array.Float32:
						require.Equal(t, math.Float32bits(c.Value(r)), math.Float32bits(got.GetFloatVal()), "row %d %s", row+r, fc.Name)
					case *array.Int64:
						require.Equal(t, c.Value(r), got.GetInt64Val(), "row %d %s", row+r, fc.Name)
					case *array.Int32:
						require.Equal(t, c.Value(r), got.GetInt32Val(), "row %d %s", row+r, fc.Name)
					case *array.String:
						require.Equal(t, c.Value(r), got.GetStringVal(), "row %d %s", row+r, fc.Name)
					case *array.Boolean:
						require.Equal(t, c.Value(r), got.GetBoolVal(), "row %d %s", row+r, fc.Name)
					default:
						t.Fatalf("unexpected column type %s", col.DataType())
					}
				}
			}
		}
		row += int(rec.NumRows())
	}
	require.Equal(t, rows, row)
	// Every feature had plenty of values to compare, not only nulls.
	for _, n := range parityOut {
		require.Greater(t, checked[n], rows/10, "feature %s", n)
	}

	// A missing request field is INVALID_ARGUMENT naming it.
	_, err = client.GetOnlineFeatures(context.Background(), &pb.GetOnlineFeaturesRequest{
		Kind:           &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "parity_svc"},
		Entities:       map[string]*pb.RepeatedValue{"pu_id": {Val: []*pb.Value{{Kind: &pb.Value_Int64Val{Int64Val: 1}}}}},
		RequestContext: map[string]*pb.RepeatedValue{"amount": {Val: []*pb.Value{{Kind: &pb.Value_DoubleVal{DoubleVal: 1}}}}},
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, err.Error(), `"code"`)
}

// protoColumn converts rows [lo, hi) of an Arrow column to wire values (empty Value for null).
func protoColumn(a arrow.Array, lo, hi int) *pb.RepeatedValue {
	out := &pb.RepeatedValue{}
	for r := lo; r < hi; r++ {
		v := &pb.Value{}
		if a.IsValid(r) {
			switch c := a.(type) {
			case *array.Int64:
				v.Kind = &pb.Value_Int64Val{Int64Val: c.Value(r)}
			case *array.Float64:
				v.Kind = &pb.Value_DoubleVal{DoubleVal: c.Value(r)}
			case *array.String:
				v.Kind = &pb.Value_StringVal{StringVal: c.Value(r)}
			}
		}
		out.Val = append(out.Val, v)
	}
	return out
}

// dataset create for a service with on-demand features needs the request fields as entity
// columns: an entity file without one is refused, naming the column, and nothing is built.
func TestOnDemandDatasetMissingRequestColumn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	r := quiver(t, nil, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", dir, "dataset", "create", "x", "--service", "checkout_v1", "--entities", filepath.Join(dir, "data", "labels.parquet"))
	require.Equal(t, exitInvalid, r.code, r.stderr)
	require.Contains(t, r.stderr, `no column "cart_value"`)
	r = quiver(t, nil, "-C", dir, "-o", "json", "dataset", "list")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NotContains(t, r.stdout, `"x"`)

	// With the checkouts file it builds, and the lineage names the on-demand view's version.
	r = quiver(t, nil, "-C", dir, "-o", "json", "dataset", "create", "x", "--service", "checkout_v1", "--entities", filepath.Join(dir, "data", "checkouts.parquet"))
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", dir, "-o", "json", "dataset", "show", "x")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, `"on_demand_views"`)
	require.Contains(t, r.stdout, `"cart_features:cart_over_spend"`)
}

// issue 14's validate acceptance through the CLI: five planted expression errors (unknown
// input, unknown field, type mismatch, wrong declared type, syntax error) are all reported,
// each at its line and column inside the expression, exit 1.
func TestOnDemandValidatePlantedErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	writeFile(t, filepath.Join(dir, "features", "bad.yaml"), `on_demand_feature_views:
  - name: bad
    inputs: [checkout, user_stats]
    features:
      - { name: a, type: float64, expr: "merchant_stats.x + 1.0" }
      - { name: b, type: float64, expr: "user_stats.spend_3d * 2.0" }
      - { name: c, type: bool, expr: "checkout.cart_value > 'big'" }
      - { name: d, type: bool, expr: "checkout.cart_value * 2.0" }
      - name: e
        type: float64
        expr: |
          checkout.cart_value * (2.0 +
`)
	r := quiver(t, nil, "-C", dir, "-o", "json", "validate")
	require.Equal(t, exitInvalid, r.code, r.stderr)
	var out struct {
		Valid  bool        `json:"valid"`
		Errors []errorJSON `json:"errors"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.Len(t, out.Errors, 5, r.stdout)
	want := []struct {
		line, col int
		text      string
	}{
		{5, 42, "undeclared reference to 'merchant_stats'"},
		{6, 52, "undefined field 'spend_3d'"},
		{7, 59, "no matching overload for '_>_' applied to '(double, string)'"},
		{8, 39, "declared bool but its expression is of type double"},
		{12, 39, "Syntax error"},
	}
	for i, w := range want {
		e := out.Errors[i]
		require.Equal(t, "features/bad.yaml", e.File)
		require.Equal(t, [2]int{w.line, w.col}, [2]int{e.Line, e.Col}, "%d: %s", i, e.Message)
		require.Contains(t, e.Message, w.text)
	}
}
