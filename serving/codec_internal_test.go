package serving

import (
	"bytes"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

func codecResponse(rows, cols int, seed float64) *pb.GetOnlineFeaturesResponse {
	resp := &pb.GetOnlineFeaturesResponse{Rows: int32(rows)}
	for c := range cols {
		vals := make([]float64, rows)
		st := make([]pb.FieldStatus, rows)
		ts := make([]int64, rows)
		for r := range rows {
			vals[r], st[r], ts[r] = seed*float64(r*cols+c), pb.FieldStatus_PRESENT, int64(1_700_000_000_000_000+r)
		}
		resp.Features = append(resp.Features, &pb.FeatureColumn{
			Name: fmt.Sprintf("f%d", c), View: "v", Type: pb.ValueType(4),
			Values:   &pb.Vector{Kind: &pb.Vector_DoubleValues{DoubleValues: &pb.DoubleList{Val: vals}}},
			Statuses: st, EventTimestampsMicros: ts,
		})
	}
	return resp
}

// TestServerCodecMarshalsLikeProto: the codec's responses are proto.Marshal's bytes, for
// messages under the pooling threshold and over it, and when a pooled buffer that held a
// longer response is reused (its old bytes must never show through).
func TestServerCodecMarshalsLikeProto(t *testing.T) {
	c := serverCodec{}
	for _, shape := range [][2]int{{100, 30}, {90, 30}, {1, 30}, {1, 1}, {100, 30}, {70, 29}, {2000, 30}, {1500, 30}} {
		m := codecResponse(shape[0], shape[1], float64(shape[0]+shape[1]))
		want, err := proto.Marshal(m)
		require.NoError(t, err)
		got, err := c.Marshal(m)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got.Materialize()), "rows %d cols %d", shape[0], shape[1])
		var back pb.GetOnlineFeaturesResponse
		require.NoError(t, c.Unmarshal(got, &back))
		require.True(t, proto.Equal(m, &back))
		got.Free()
	}
	_, err := c.Marshal("not a message")
	require.ErrorContains(t, err, "want proto.Message")
	require.ErrorContains(t, c.Unmarshal(nil, 7), "want proto.Message")
}

func TestDirtyPoolSizes(t *testing.T) {
	p := &dirtyPool{}
	for _, n := range []int{1, 1023, 1024, 1025, 4096, 60_000, 1 << 20, 1<<26 + 1} {
		b := p.Get(n)
		require.Len(t, *b, n)
		if n <= 1<<26 {
			require.Equal(t, 1<<sizeClass(n), cap(*b))
			require.GreaterOrEqual(t, cap(*b), n)
		}
		p.Put(b)
	}
	odd := make([]byte, 3000)
	p.Put(&odd) // not a pool size: dropped, not handed out as a 2 KiB or 4 KiB buffer
	require.Equal(t, 4096, cap(*p.Get(3000)))
}

// TestResponseMarshalMatchesProto: the hand-written GetOnlineFeaturesResponse marshaller gives
// the bytes of proto.Marshal (deterministic: map entries by key) for every kind of vector,
// negative numbers, empty and nil lists, null masks and echoed entities.
func TestResponseMarshalMatchesProto(t *testing.T) {
	ts := timestampProto(time.UnixMicro(1_700_000_000_123_456))
	vec := func(k any) *pb.Vector {
		switch k := k.(type) {
		case []float64:
			return &pb.Vector{Kind: &pb.Vector_DoubleValues{DoubleValues: &pb.DoubleList{Val: k}}}
		case []float32:
			return &pb.Vector{Kind: &pb.Vector_FloatValues{FloatValues: &pb.FloatList{Val: k}}}
		case []int64:
			return &pb.Vector{Kind: &pb.Vector_Int64Values{Int64Values: &pb.Int64List{Val: k}}}
		case []int32:
			return &pb.Vector{Kind: &pb.Vector_Int32Values{Int32Values: &pb.Int32List{Val: k}}}
		case []bool:
			return &pb.Vector{Kind: &pb.Vector_BoolValues{BoolValues: &pb.BoolList{Val: k}}}
		case []string:
			return &pb.Vector{Kind: &pb.Vector_StringValues{StringValues: &pb.StringList{Val: k}}}
		}
		panic(k)
	}
	vectors := []*pb.Vector{
		vec([]float64{1.5, math.NaN(), math.Inf(-1), 0, -0.25}),
		vec([]float32{1.5, -2, 0}),
		vec([]int64{0, 1, -1, math.MaxInt64, math.MinInt64, 300}),
		vec([]int32{0, -1, math.MinInt32, 127, 128}),
		vec([]bool{true, false, true}),
		vec([]string{"a", "", "ü"}),
		vec([]float64{}), vec([]int64(nil)), vec([]bool{}),
		{Kind: &pb.Vector_DoubleValues{}}, // the oneof set to a nil list
		{Kind: &pb.Vector_Int32Values{}},
		{Kind: &pb.Vector_BytesValues{BytesValues: &pb.BytesList{Val: [][]byte{{1, 2}, {}}}}},
		{Kind: &pb.Vector_TimestampValues{TimestampValues: &pb.TimestampList{Val: []*timestamp{ts, {}}}}},
		{Kind: &pb.Vector_ListValues{ListValues: &pb.RepeatedValue{Val: []*pb.Value{nullValue, toProto(online.Float64s([]float64{1, 2}))}}}},
		{}, nil,
	}
	resp := &pb.GetOnlineFeaturesResponse{Rows: 3, Entities: map[string]*pb.RepeatedValue{
		"user_id": {Val: []*pb.Value{toProto(online.Int64(-7)), nullValue}},
		"b":       {Val: []*pb.Value{toProto(online.String("x"))}},
		"empty":   {},
		"nil":     nil,
		"scalars": {Val: []*pb.Value{toProto(online.Int32(-3)), toProto(online.Int64(math.MinInt64)), toProto(online.Bool(false)),
			toProto(online.Bool(true)), toProto(online.String("")), toProto(online.Int64(0)), {}, toProto(online.String("k"))}},
		"mixed":  {Val: []*pb.Value{toProto(online.Int64(1)), toProto(online.Float64(2.5))}},
		"nilval": {Val: []*pb.Value{toProto(online.Int64(1)), nil}},
	}}
	unknown := &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: 5}}
	unknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
	resp.Entities["unknown"] = &pb.RepeatedValue{Val: []*pb.Value{unknown}}
	for i, v := range vectors {
		fc := &pb.FeatureColumn{Name: fmt.Sprint("f", i), View: "view", Type: pb.ValueType(i % 19), Values: v}
		if i%2 == 0 {
			fc.Statuses = []pb.FieldStatus{pb.FieldStatus_PRESENT, pb.FieldStatus_NOT_FOUND, pb.FieldStatus(0)}
			fc.EventTimestampsMicros = []int64{1_700_000_000_000_000, 0, -5}
		}
		if i%3 == 0 {
			fc.Nulls = []bool{false, true, false}
		}
		if i == 4 {
			fc.Name, fc.View = "", ""
		}
		resp.Features = append(resp.Features, fc)
	}
	resp.Features = append(resp.Features, &pb.FeatureColumn{})
	// Columns sharing one event-time slice (as columnsToProto makes them per view), a column
	// with another slice between them, and slices sharing a start but not a length.
	shared := codecResponse(100, 30, 0.25)
	times := shared.Features[0].EventTimestampsMicros
	for i, fc := range shared.Features {
		switch {
		case i%10 == 4:
			times = fc.EventTimestampsMicros // a new view's slice
		case i == 7:
			fc.EventTimestampsMicros = times[:50]
		case i != 3:
			fc.EventTimestampsMicros = times
		}
	}
	for _, r := range []*pb.GetOnlineFeaturesResponse{resp, {}, {Rows: -1}, codecResponse(100, 30, 0.5), codecResponse(1, 30, 2), shared} {
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		require.NoError(t, err)
		got, err := serverCodec{}.Marshal(r)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got.Materialize()), "%x\n%x", want, got.Materialize())
		var back pb.GetOnlineFeaturesResponse
		require.NoError(t, proto.Unmarshal(got.Materialize(), &back))
		got.Free()
	}
}
