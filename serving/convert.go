package serving

import (
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// This file converts between wire values and online.Value, at the edge: nothing past the
// handlers sees generated types.

// fromProto converts a wire value to a value of type want. Widening conversions a client in
// another language would expect are accepted (int32 for int64, int64 for int32 in range,
// float for double and double for float); anything else is an error naming both types.
func fromProto(v *pb.Value, want definitions.Type) (online.Value, bool) {
	if v == nil || v.Kind == nil {
		return online.Null(), true
	}
	if want.Array {
		return arrayFromProto(v, want.Elem)
	}
	switch want.Elem {
	case definitions.Int32:
		switch k := v.Kind.(type) {
		case *pb.Value_Int32Val:
			return online.Int32(k.Int32Val), true
		case *pb.Value_Int64Val:
			if k.Int64Val >= math.MinInt32 && k.Int64Val <= math.MaxInt32 {
				return online.Int32(int32(k.Int64Val)), true
			}
		}
	case definitions.Int64:
		switch k := v.Kind.(type) {
		case *pb.Value_Int64Val:
			return online.Int64(k.Int64Val), true
		case *pb.Value_Int32Val:
			return online.Int64(int64(k.Int32Val)), true
		}
	case definitions.Float32:
		switch k := v.Kind.(type) {
		case *pb.Value_FloatVal:
			return online.Float32(k.FloatVal), true
		case *pb.Value_DoubleVal:
			return float32Of(k.DoubleVal)
		}
	case definitions.Float64:
		switch k := v.Kind.(type) {
		case *pb.Value_DoubleVal:
			return online.Float64(k.DoubleVal), true
		case *pb.Value_FloatVal:
			return online.Float64(float64(k.FloatVal)), true
		}
	case definitions.Bool:
		if k, ok := v.Kind.(*pb.Value_BoolVal); ok {
			return online.Bool(k.BoolVal), true
		}
	case definitions.String:
		if k, ok := v.Kind.(*pb.Value_StringVal); ok {
			return online.String(k.StringVal), true
		}
	case definitions.Bytes:
		if k, ok := v.Kind.(*pb.Value_BytesVal); ok {
			return online.Bytes(k.BytesVal), true
		}
	case definitions.Timestamp:
		if k, ok := v.Kind.(*pb.Value_TimestampVal); ok && k.TimestampVal.IsValid() {
			return online.Timestamp(k.TimestampVal.AsTime()), true
		}
	}
	return online.Value{}, false
}

func arrayFromProto(v *pb.Value, elem definitions.Scalar) (online.Value, bool) {
	switch elem {
	case definitions.Int32:
		if k, ok := v.Kind.(*pb.Value_Int32ListVal); ok {
			return online.Int32s(k.Int32ListVal.GetVal()), true
		}
	case definitions.Int64:
		if k, ok := v.Kind.(*pb.Value_Int64ListVal); ok {
			return online.Int64s(k.Int64ListVal.GetVal()), true
		}
	case definitions.Float32:
		if k, ok := v.Kind.(*pb.Value_FloatListVal); ok {
			return online.Float32s(k.FloatListVal.GetVal()), true
		}
	case definitions.Float64:
		if k, ok := v.Kind.(*pb.Value_DoubleListVal); ok {
			return online.Float64s(k.DoubleListVal.GetVal()), true
		}
	case definitions.Bool:
		if k, ok := v.Kind.(*pb.Value_BoolListVal); ok {
			return online.Bools(k.BoolListVal.GetVal()), true
		}
	case definitions.String:
		if k, ok := v.Kind.(*pb.Value_StringListVal); ok {
			return online.Strings(k.StringListVal.GetVal()), true
		}
	case definitions.Bytes:
		if k, ok := v.Kind.(*pb.Value_BytesListVal); ok {
			return online.BytesArray(k.BytesListVal.GetVal()), true
		}
	case definitions.Timestamp:
		if k, ok := v.Kind.(*pb.Value_TimestampListVal); ok {
			ts := make([]time.Time, len(k.TimestampListVal.GetVal()))
			for i, t := range k.TimestampListVal.GetVal() {
				if !t.IsValid() {
					return online.Value{}, false
				}
				ts[i] = t.AsTime()
			}
			return online.Timestamps(ts), true
		}
	}
	return online.Value{}, false
}

// protoKind names the type a wire value carries, for error messages.
func protoKind(v *pb.Value) string {
	if v == nil {
		return "null"
	}
	switch v.Kind.(type) {
	case nil:
		return "null"
	case *pb.Value_Int32Val:
		return "int32"
	case *pb.Value_Int64Val:
		return "int64"
	case *pb.Value_FloatVal:
		return "float32"
	case *pb.Value_DoubleVal:
		return "float64"
	case *pb.Value_BoolVal:
		return "bool"
	case *pb.Value_StringVal:
		return "string"
	case *pb.Value_BytesVal:
		return "bytes"
	case *pb.Value_TimestampVal:
		return "timestamp"
	case *pb.Value_Int32ListVal:
		return "array<int32>"
	case *pb.Value_Int64ListVal:
		return "array<int64>"
	case *pb.Value_FloatListVal:
		return "array<float32>"
	case *pb.Value_DoubleListVal:
		return "array<float64>"
	case *pb.Value_BoolListVal:
		return "array<bool>"
	case *pb.Value_StringListVal:
		return "array<string>"
	case *pb.Value_BytesListVal:
		return "array<bytes>"
	case *pb.Value_TimestampListVal:
		return "array<timestamp>"
	}
	return "unknown"
}

// toProto converts a stored value to its wire form; null gives an empty Value.
func toProto(v online.Value) *pb.Value {
	if v.IsNull() {
		return &pb.Value{}
	}
	t := v.Type()
	if t.Array {
		switch t.Elem {
		case definitions.Int32:
			return &pb.Value{Kind: &pb.Value_Int32ListVal{Int32ListVal: &pb.Int32List{Val: v.Int32s()}}}
		case definitions.Int64:
			return &pb.Value{Kind: &pb.Value_Int64ListVal{Int64ListVal: &pb.Int64List{Val: v.Int64s()}}}
		case definitions.Float32:
			return &pb.Value{Kind: &pb.Value_FloatListVal{FloatListVal: &pb.FloatList{Val: v.Float32s()}}}
		case definitions.Float64:
			return &pb.Value{Kind: &pb.Value_DoubleListVal{DoubleListVal: &pb.DoubleList{Val: v.Float64s()}}}
		case definitions.Bool:
			return &pb.Value{Kind: &pb.Value_BoolListVal{BoolListVal: &pb.BoolList{Val: v.Bools()}}}
		case definitions.String:
			return &pb.Value{Kind: &pb.Value_StringListVal{StringListVal: &pb.StringList{Val: v.Strings()}}}
		case definitions.Bytes:
			return &pb.Value{Kind: &pb.Value_BytesListVal{BytesListVal: &pb.BytesList{Val: v.BytesArray()}}}
		case definitions.Timestamp:
			ts := v.Timestamps()
			out := make([]*timestamppb.Timestamp, len(ts))
			for i, x := range ts {
				out[i] = timestamppb.New(x)
			}
			return &pb.Value{Kind: &pb.Value_TimestampListVal{TimestampListVal: &pb.TimestampList{Val: out}}}
		}
		return &pb.Value{}
	}
	switch t.Elem {
	case definitions.Int32:
		return &pb.Value{Kind: &pb.Value_Int32Val{Int32Val: v.Int32()}}
	case definitions.Int64:
		return &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: v.Int64()}}
	case definitions.Float32:
		return &pb.Value{Kind: &pb.Value_FloatVal{FloatVal: v.Float32()}}
	case definitions.Float64:
		return &pb.Value{Kind: &pb.Value_DoubleVal{DoubleVal: v.Float64()}}
	case definitions.Bool:
		return &pb.Value{Kind: &pb.Value_BoolVal{BoolVal: v.Bool()}}
	case definitions.String:
		return &pb.Value{Kind: &pb.Value_StringVal{StringVal: v.Str()}}
	case definitions.Bytes:
		return &pb.Value{Kind: &pb.Value_BytesVal{BytesVal: v.BytesValue()}}
	case definitions.Timestamp:
		return &pb.Value{Kind: &pb.Value_TimestampVal{TimestampVal: timestamppb.New(v.Time())}}
	}
	return &pb.Value{}
}

// valueTypeOf is the wire enum of a declared type.
func valueTypeOf(t definitions.Type) pb.ValueType {
	if !t.Valid() {
		return pb.ValueType_VALUE_TYPE_UNSPECIFIED
	}
	n := int32(t.Elem) // the enum follows definitions.Scalar's numbering
	if t.Array {
		n += 10
	}
	return pb.ValueType(n)
}

func statusToProto(s online.Status) pb.FieldStatus { return pb.FieldStatus(s) }

type timestamp = timestamppb.Timestamp

func timestampProto(t time.Time) *timestamp { return timestamppb.New(t) }

// valueFromProto converts a wire value to the value of the type it carries (a Value with no
// field set is null). Its type is checked, and widened, against the declared one by coerce.
func valueFromProto(v *pb.Value) (online.Value, bool) {
	t, ok := protoType(v)
	if !ok {
		return online.Null(), v == nil || v.Kind == nil
	}
	return fromProto(v, t)
}

// protoType is the type a wire value carries; false for null.
func protoType(v *pb.Value) (definitions.Type, bool) {
	var t definitions.Type
	switch v.GetKind().(type) {
	case *pb.Value_Int32Val:
		t.Elem = definitions.Int32
	case *pb.Value_Int64Val:
		t.Elem = definitions.Int64
	case *pb.Value_FloatVal:
		t.Elem = definitions.Float32
	case *pb.Value_DoubleVal:
		t.Elem = definitions.Float64
	case *pb.Value_BoolVal:
		t.Elem = definitions.Bool
	case *pb.Value_StringVal:
		t.Elem = definitions.String
	case *pb.Value_BytesVal:
		t.Elem = definitions.Bytes
	case *pb.Value_TimestampVal:
		t.Elem = definitions.Timestamp
	case *pb.Value_Int32ListVal:
		t = definitions.Type{Elem: definitions.Int32, Array: true}
	case *pb.Value_Int64ListVal:
		t = definitions.Type{Elem: definitions.Int64, Array: true}
	case *pb.Value_FloatListVal:
		t = definitions.Type{Elem: definitions.Float32, Array: true}
	case *pb.Value_DoubleListVal:
		t = definitions.Type{Elem: definitions.Float64, Array: true}
	case *pb.Value_BoolListVal:
		t = definitions.Type{Elem: definitions.Bool, Array: true}
	case *pb.Value_StringListVal:
		t = definitions.Type{Elem: definitions.String, Array: true}
	case *pb.Value_BytesListVal:
		t = definitions.Type{Elem: definitions.Bytes, Array: true}
	case *pb.Value_TimestampListVal:
		t = definitions.Type{Elem: definitions.Timestamp, Array: true}
	default:
		return t, false
	}
	return t, true
}

// columnsFromProto converts wire columns (entities or request-time values) to domain columns;
// name says which field they came from, for errors.
func columnsFromProto(name string, cols map[string]*pb.RepeatedValue) (map[string][]online.Value, error) {
	if len(cols) == 0 {
		return nil, nil
	}
	out := make(map[string][]online.Value, len(cols))
	for k, c := range cols {
		vals := make([]online.Value, len(c.GetVal()))
		for r, pv := range c.GetVal() {
			v, ok := valueFromProto(pv)
			if !ok {
				return nil, invalidf("%s %q row %d: not a valid %s value", name, k, r, protoKind(pv))
			}
			vals[r] = v
		}
		out[k] = vals
	}
	return out, nil
}

// coerce returns v as a value of type want, with the widening conversions a client in another
// language would expect (int32 for int64, int64 in range for int32, float32 and float64 for
// each other); null is null of any type. False when v cannot be a want.
func coerce(v online.Value, want definitions.Type) (online.Value, bool) {
	got := v.Type()
	if v.IsNull() || got == want {
		return v, true
	}
	if got.Array || want.Array {
		return online.Value{}, false
	}
	switch want.Elem {
	case definitions.Int32:
		if got.Elem == definitions.Int64 && v.Int64() >= math.MinInt32 && v.Int64() <= math.MaxInt32 {
			return online.Int32(int32(v.Int64())), true
		}
	case definitions.Int64:
		if got.Elem == definitions.Int32 {
			return online.Int64(int64(v.Int32())), true
		}
	case definitions.Float32:
		if got.Elem == definitions.Float64 {
			return float32Of(v.Float64())
		}
	case definitions.Float64:
		if got.Elem == definitions.Float32 {
			return online.Float64(float64(v.Float32())), true
		}
	}
	return online.Value{}, false
}

// float32Of rounds x to the nearest float32; false when x is finite and beyond float32's range.
func float32Of(x float64) (online.Value, bool) {
	f := float32(x)
	if math.IsInf(float64(f), 0) && !math.IsInf(x, 0) {
		return online.Value{}, false
	}
	return online.Float32(f), true
}

// typeOfValueType is the declared type of a wire enum (the inverse of valueTypeOf).
func typeOfValueType(v pb.ValueType) definitions.Type {
	n := int32(v)
	t := definitions.Type{}
	if n > 10 {
		t.Array, n = true, n-10
	}
	t.Elem = definitions.Scalar(n)
	if !t.Elem.Valid() {
		return definitions.Type{}
	}
	return t
}
