package serving

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/value"
)

// This file converts between wire values and online.Value, at the edge: nothing past the
// handlers sees generated types.

// fromProto converts a wire value to a value of type want by the one rule (value.Coerce);
// false when it is not a valid value or does not convert.
func fromProto(v *pb.Value, want definitions.Type) (online.Value, bool) {
	x, ok := valueFromProto(v)
	if !ok {
		return online.Value{}, false
	}
	x, err := value.Coerce(x, want)
	return x, err == nil
}

// valueFromProto converts a wire value to the value of the type it carries (a Value with no
// field set is null); false for an invalid timestamp. Its type is checked, and converted,
// against the declared one with value.Coerce.
func valueFromProto(v *pb.Value) (online.Value, bool) {
	switch k := v.GetKind().(type) {
	case nil:
		return value.Null(), true
	case *pb.Value_Int32Val:
		return value.NewInt32(k.Int32Val), true
	case *pb.Value_Int64Val:
		return value.NewInt64(k.Int64Val), true
	case *pb.Value_FloatVal:
		return value.NewFloat32(k.FloatVal), true
	case *pb.Value_DoubleVal:
		return value.NewFloat64(k.DoubleVal), true
	case *pb.Value_BoolVal:
		return value.NewBool(k.BoolVal), true
	case *pb.Value_StringVal:
		return value.NewString(k.StringVal), true
	case *pb.Value_BytesVal:
		return value.NewBytes(k.BytesVal), true
	case *pb.Value_TimestampVal:
		if !k.TimestampVal.IsValid() {
			return value.Value{}, false
		}
		return value.NewTimestamp(k.TimestampVal.AsTime()), true
	case *pb.Value_Int32ListVal:
		return value.NewInt32s(k.Int32ListVal.GetVal()), true
	case *pb.Value_Int64ListVal:
		return value.NewInt64s(k.Int64ListVal.GetVal()), true
	case *pb.Value_FloatListVal:
		return value.NewFloat32s(k.FloatListVal.GetVal()), true
	case *pb.Value_DoubleListVal:
		return value.NewFloat64s(k.DoubleListVal.GetVal()), true
	case *pb.Value_BoolListVal:
		return value.NewBools(k.BoolListVal.GetVal()), true
	case *pb.Value_StringListVal:
		return value.NewStrings(k.StringListVal.GetVal()), true
	case *pb.Value_BytesListVal:
		return value.NewBytesArray(k.BytesListVal.GetVal()), true
	case *pb.Value_TimestampListVal:
		ts := make([]time.Time, len(k.TimestampListVal.GetVal()))
		for i, t := range k.TimestampListVal.GetVal() {
			if !t.IsValid() {
				return value.Value{}, false
			}
			ts[i] = t.AsTime()
		}
		return value.NewTimestamps(ts), true
	}
	return value.Value{}, false
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
