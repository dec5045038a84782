package serving

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// TestTypedResponseMatchesProtojson: the hand-written typed answer is what protojson
// (UseProtoNames) writes — the same JSON value, token for token (protojson varies only its
// whitespace) — for every vector and value kind, empty lists, zero values in oneofs, nulls,
// NaN and infinities, extreme integers, timestamps of 0/3/6/9 fractional digits, escapes and
// unknown enum numbers; and what it cannot write (invalid UTF-8, a timestamp out of range)
// falls back to protojson.
func TestTypedResponseMatchesProtojson(t *testing.T) {
	ts := func(s int64, n int32) *timestamppb.Timestamp { return &timestamppb.Timestamp{Seconds: s, Nanos: n} }
	vals := []*pb.Value{
		{}, {Kind: &pb.Value_Int32Val{Int32Val: 0}}, {Kind: &pb.Value_Int32Val{Int32Val: math.MinInt32}},
		{Kind: &pb.Value_Int64Val{Int64Val: math.MaxInt64}}, {Kind: &pb.Value_Int64Val{Int64Val: 0}},
		{Kind: &pb.Value_FloatVal{FloatVal: 0.1}}, {Kind: &pb.Value_FloatVal{FloatVal: 1e-7}}, {Kind: &pb.Value_FloatVal{FloatVal: 3e21}},
		{Kind: &pb.Value_DoubleVal{DoubleVal: math.NaN()}}, {Kind: &pb.Value_DoubleVal{DoubleVal: math.Inf(-1)}},
		{Kind: &pb.Value_DoubleVal{DoubleVal: 1e-7}}, {Kind: &pb.Value_DoubleVal{DoubleVal: 123456789.125}}, {Kind: &pb.Value_DoubleVal{DoubleVal: math.Copysign(0, -1)}},
		{Kind: &pb.Value_BoolVal{BoolVal: false}}, {Kind: &pb.Value_StringVal{StringVal: "\"\\\b\f\n\r\t\x01\x1f<>&é\u2028"}},
		{Kind: &pb.Value_StringVal{StringVal: ""}}, {Kind: &pb.Value_BytesVal{BytesVal: []byte{0, 255}}}, {Kind: &pb.Value_BytesVal{}},
		{Kind: &pb.Value_TimestampVal{TimestampVal: ts(0, 0)}}, {Kind: &pb.Value_TimestampVal{TimestampVal: ts(1765000000, 123000000)}},
		{Kind: &pb.Value_TimestampVal{TimestampVal: ts(-1, 456000)}}, {Kind: &pb.Value_TimestampVal{TimestampVal: ts(253402300799, 7)}},
		{Kind: &pb.Value_Int32ListVal{Int32ListVal: &pb.Int32List{}}}, {Kind: &pb.Value_Int64ListVal{Int64ListVal: &pb.Int64List{Val: []int64{-1, 2}}}},
		{Kind: &pb.Value_FloatListVal{FloatListVal: &pb.FloatList{Val: []float32{0.5, float32(math.Inf(1))}}}},
		{Kind: &pb.Value_DoubleListVal{DoubleListVal: &pb.DoubleList{Val: []float64{1, 2.5}}}},
		{Kind: &pb.Value_BoolListVal{BoolListVal: &pb.BoolList{Val: []bool{true}}}},
		{Kind: &pb.Value_StringListVal{StringListVal: &pb.StringList{Val: []string{"a", ""}}}},
		{Kind: &pb.Value_BytesListVal{BytesListVal: &pb.BytesList{Val: [][]byte{{1}, nil}}}},
		{Kind: &pb.Value_TimestampListVal{TimestampListVal: &pb.TimestampList{Val: []*timestamppb.Timestamp{ts(5, 0), ts(6, 1000)}}}},
	}
	vectors := []*pb.Vector{
		{}, {Kind: &pb.Vector_Int32Values{Int32Values: &pb.Int32List{Val: []int32{1, -2}}}},
		{Kind: &pb.Vector_Int64Values{Int64Values: &pb.Int64List{}}}, {Kind: &pb.Vector_Int64Values{Int64Values: &pb.Int64List{Val: []int64{math.MinInt64}}}},
		{Kind: &pb.Vector_FloatValues{FloatValues: &pb.FloatList{Val: []float32{0.1, 1e30}}}},
		{Kind: &pb.Vector_DoubleValues{DoubleValues: &pb.DoubleList{Val: []float64{0, 1e21, math.NaN()}}}},
		{Kind: &pb.Vector_BoolValues{BoolValues: &pb.BoolList{Val: []bool{true, false}}}},
		{Kind: &pb.Vector_StringValues{StringValues: &pb.StringList{Val: []string{"x", "日本"}}}},
		{Kind: &pb.Vector_BytesValues{BytesValues: &pb.BytesList{Val: [][]byte{[]byte("hi")}}}},
		{Kind: &pb.Vector_TimestampValues{TimestampValues: &pb.TimestampList{Val: []*timestamppb.Timestamp{ts(1, 1), ts(2, 0)}}}},
		{Kind: &pb.Vector_ListValues{ListValues: &pb.RepeatedValue{Val: vals}}},
		{Kind: &pb.Vector_ListValues{ListValues: &pb.RepeatedValue{}}},
	}
	var cols []*pb.FeatureColumn
	for i, v := range vectors {
		cols = append(cols, &pb.FeatureColumn{Name: "f" + string(rune('a'+i)), View: "v", Type: pb.ValueType(i % 12), Values: v,
			Statuses: []pb.FieldStatus{pb.FieldStatus_PRESENT, pb.FieldStatus_INVALID, pb.FieldStatus(42)}, EventTimestampsMicros: []int64{0, -5, time.Now().UnixMicro()},
			Nulls: []bool{false, true}})
	}
	cols = append(cols, &pb.FeatureColumn{}, &pb.FeatureColumn{Name: "only"})
	for i, r := range []*pb.GetOnlineFeaturesResponse{
		{},
		{Rows: 2, Entities: map[string]*pb.RepeatedValue{"z": {Val: vals}, "a": {}, "m": {Val: []*pb.Value{{Kind: &pb.Value_Int64Val{Int64Val: 7}}}}}, Features: cols},
		{Rows: -1, Features: []*pb.FeatureColumn{{Name: "x", Values: &pb.Vector{Kind: &pb.Vector_DoubleValues{DoubleValues: &pb.DoubleList{Val: []float64{1.5}}}}}}},
	} {
		got, ok := appendTypedResponse(nil, r)
		require.True(t, ok)
		want, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
		require.NoError(t, err)
		require.Equal(t, tokens(t, want), tokens(t, got), "got %s\nwant %s", got, want)
		var back pb.GetOnlineFeaturesResponse
		require.NoError(t, protojson.Unmarshal(got, &back))
		if i != 1 { // 1 holds NaNs, which equal nothing
			require.True(t, proto.Equal(r, &back), "round trip")
		}
	}
	for _, r := range []*pb.GetOnlineFeaturesResponse{
		{Features: []*pb.FeatureColumn{{Name: "bad\xff"}}},
		{Entities: map[string]*pb.RepeatedValue{"k": {Val: []*pb.Value{{Kind: &pb.Value_TimestampVal{TimestampVal: ts(maxTimestampSeconds+1, 0)}}}}}},
	} {
		_, ok := appendTypedResponse(nil, r)
		require.False(t, ok)
		_, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
		require.Error(t, err, "protojson refuses it too")
	}
}

// tokens splits a JSON text into its tokens (strings and numbers as written).
func tokens(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []string
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch v := tok.(type) {
		case json.Delim:
			out = append(out, v.String())
		case string:
			out = append(out, "s:"+v)
		case json.Number:
			out = append(out, "n:"+v.String())
		default:
			out = append(out, fmt.Sprintf("v:%v", v))
		}
	}
	require.True(t, json.Valid(b), "%s", b)
	return out
}
