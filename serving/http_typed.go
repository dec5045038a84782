package serving

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// The typed HTTP/JSON form's answer to GetOnlineFeatures, written by hand: protojson walks
// the message by reflection, which cost the typed form twice the server CPU of gRPC for a
// 1-entity, 30-feature call (docs/BENCHMARKS.md). appendTypedResponse writes what protojson
// writes with UseProtoNames (field names, field order, omitted defaults, int64 as strings,
// enums by name, floats and timestamps formatted alike, map keys sorted), and
// TestTypedResponseMatchesProtojson holds it to that; anything it does not handle (invalid
// UTF-8, a timestamp out of range, a value kind it does not know) falls back to protojson,
// which reports it as before.

// gatewayMarshaler is the gateway's JSON marshaler with the hand-written answer of
// GetOnlineFeatures.
type gatewayMarshaler struct{ *runtime.JSONPb }

func (m gatewayMarshaler) Marshal(v any) ([]byte, error) {
	if r, ok := v.(*pb.GetOnlineFeaturesResponse); ok {
		if b, ok := appendTypedResponse(make([]byte, 0, typedSizeHint(r)), r); ok {
			return b, nil
		}
	}
	return m.JSONPb.Marshal(v)
}

// typedSizeHint guesses the answer's size, so that it is written into one allocation.
func typedSizeHint(r *pb.GetOnlineFeaturesResponse) int {
	return 64 + len(r.GetEntities())*64 + len(r.GetFeatures())*(160+int(r.GetRows())*48)
}

// typedWriter appends JSON, remembering whether something could not be written as protojson
// would write it.
type typedWriter struct {
	b  []byte
	ok bool
}

// appendTypedResponse appends r as protojson (UseProtoNames) writes it; ok is false when it
// cannot, and b must then be discarded.
func appendTypedResponse(b []byte, r *pb.GetOnlineFeaturesResponse) ([]byte, bool) {
	w := typedWriter{b: b, ok: true}
	w.b = append(w.b, '{')
	first := true
	field := func(name string) {
		if !first {
			w.b = append(w.b, ',')
		}
		first = false
		w.b = append(w.b, '"')
		w.b = append(w.b, name...)
		w.b = append(w.b, '"', ':')
	}
	if r.Rows != 0 {
		field("rows")
		w.b = strconv.AppendInt(w.b, int64(r.Rows), 10)
	}
	if len(r.Entities) > 0 {
		field("entities")
		keys := make([]string, 0, len(r.Entities))
		for k := range r.Entities {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		w.b = append(w.b, '{')
		for i, k := range keys {
			w.comma(i)
			w.str(k)
			w.b = append(w.b, ':')
			w.repeated(r.Entities[k])
		}
		w.b = append(w.b, '}')
	}
	if len(r.Features) > 0 {
		field("features")
		w.b = append(w.b, '[')
		for i, fc := range r.Features {
			w.comma(i)
			w.column(fc)
		}
		w.b = append(w.b, ']')
	}
	w.b = append(w.b, '}')
	return w.b, w.ok
}

func (w *typedWriter) comma(i int) {
	if i > 0 {
		w.b = append(w.b, ',')
	}
}

func (w *typedWriter) column(fc *pb.FeatureColumn) {
	w.b = append(w.b, '{')
	n := 0
	field := func(name string) {
		w.comma(n)
		n++
		w.b = append(w.b, '"')
		w.b = append(w.b, name...)
		w.b = append(w.b, '"', ':')
	}
	if fc.Name != "" {
		field("name")
		w.str(fc.Name)
	}
	if fc.View != "" {
		field("view")
		w.str(fc.View)
	}
	if fc.Type != 0 {
		field("type")
		w.enum(pb.ValueType_name, int32(fc.Type))
	}
	if fc.Values != nil {
		field("values")
		w.vector(fc.Values)
	}
	if len(fc.Statuses) > 0 {
		field("statuses")
		w.b = append(w.b, '[')
		for i, s := range fc.Statuses {
			w.comma(i)
			w.enum(pb.FieldStatus_name, int32(s))
		}
		w.b = append(w.b, ']')
	}
	if len(fc.EventTimestampsMicros) > 0 {
		field("event_timestamps_micros")
		w.b = append(w.b, '[')
		for i, t := range fc.EventTimestampsMicros {
			w.comma(i)
			w.int64(t)
		}
		w.b = append(w.b, ']')
	}
	if len(fc.Nulls) > 0 {
		field("nulls")
		w.b = append(w.b, '[')
		for i, x := range fc.Nulls {
			w.comma(i)
			w.b = strconv.AppendBool(w.b, x)
		}
		w.b = append(w.b, ']')
	}
	w.b = append(w.b, '}')
}

// list writes {"val":[...]} of n elements, or {} when n is 0.
func (w *typedWriter) list(n int, elem func(i int)) {
	if n == 0 {
		w.b = append(w.b, '{', '}')
		return
	}
	w.b = append(w.b, `{"val":[`...)
	for i := range n {
		w.comma(i)
		elem(i)
	}
	w.b = append(w.b, ']', '}')
}

func (w *typedWriter) vector(v *pb.Vector) {
	w.b = append(w.b, '{')
	switch k := v.Kind.(type) {
	case nil:
	case *pb.Vector_Int32Values:
		w.b = append(w.b, `"int32_values":`...)
		w.int32s(k.Int32Values.GetVal())
	case *pb.Vector_Int64Values:
		w.b = append(w.b, `"int64_values":`...)
		w.int64s(k.Int64Values.GetVal())
	case *pb.Vector_FloatValues:
		w.b = append(w.b, `"float_values":`...)
		w.floats(k.FloatValues.GetVal())
	case *pb.Vector_DoubleValues:
		w.b = append(w.b, `"double_values":`...)
		w.doubles(k.DoubleValues.GetVal())
	case *pb.Vector_BoolValues:
		w.b = append(w.b, `"bool_values":`...)
		w.bools(k.BoolValues.GetVal())
	case *pb.Vector_StringValues:
		w.b = append(w.b, `"string_values":`...)
		w.strs(k.StringValues.GetVal())
	case *pb.Vector_BytesValues:
		w.b = append(w.b, `"bytes_values":`...)
		w.bytesList(k.BytesValues.GetVal())
	case *pb.Vector_TimestampValues:
		w.b = append(w.b, `"timestamp_values":`...)
		w.timestamps(k.TimestampValues.GetVal())
	case *pb.Vector_ListValues:
		w.b = append(w.b, `"list_values":`...)
		w.repeated(k.ListValues)
	default:
		w.ok = false
	}
	w.b = append(w.b, '}')
}

func (w *typedWriter) repeated(r *pb.RepeatedValue) {
	vals := r.GetVal()
	w.list(len(vals), func(i int) { w.value(vals[i]) })
}

func (w *typedWriter) value(v *pb.Value) {
	w.b = append(w.b, '{')
	switch k := v.GetKind().(type) {
	case nil:
	case *pb.Value_Int32Val:
		w.b = append(w.b, `"int32_val":`...)
		w.b = strconv.AppendInt(w.b, int64(k.Int32Val), 10)
	case *pb.Value_Int64Val:
		w.b = append(w.b, `"int64_val":`...)
		w.int64(k.Int64Val)
	case *pb.Value_FloatVal:
		w.b = append(w.b, `"float_val":`...)
		w.float(float64(k.FloatVal), 32)
	case *pb.Value_DoubleVal:
		w.b = append(w.b, `"double_val":`...)
		w.float(k.DoubleVal, 64)
	case *pb.Value_BoolVal:
		w.b = append(w.b, `"bool_val":`...)
		w.b = strconv.AppendBool(w.b, k.BoolVal)
	case *pb.Value_StringVal:
		w.b = append(w.b, `"string_val":`...)
		w.str(k.StringVal)
	case *pb.Value_BytesVal:
		w.b = append(w.b, `"bytes_val":`...)
		w.bytes(k.BytesVal)
	case *pb.Value_TimestampVal:
		w.b = append(w.b, `"timestamp_val":`...)
		w.timestamp(k.TimestampVal)
	case *pb.Value_Int32ListVal:
		w.b = append(w.b, `"int32_list_val":`...)
		w.int32s(k.Int32ListVal.GetVal())
	case *pb.Value_Int64ListVal:
		w.b = append(w.b, `"int64_list_val":`...)
		w.int64s(k.Int64ListVal.GetVal())
	case *pb.Value_FloatListVal:
		w.b = append(w.b, `"float_list_val":`...)
		w.floats(k.FloatListVal.GetVal())
	case *pb.Value_DoubleListVal:
		w.b = append(w.b, `"double_list_val":`...)
		w.doubles(k.DoubleListVal.GetVal())
	case *pb.Value_BoolListVal:
		w.b = append(w.b, `"bool_list_val":`...)
		w.bools(k.BoolListVal.GetVal())
	case *pb.Value_StringListVal:
		w.b = append(w.b, `"string_list_val":`...)
		w.strs(k.StringListVal.GetVal())
	case *pb.Value_BytesListVal:
		w.b = append(w.b, `"bytes_list_val":`...)
		w.bytesList(k.BytesListVal.GetVal())
	case *pb.Value_TimestampListVal:
		w.b = append(w.b, `"timestamp_list_val":`...)
		w.timestamps(k.TimestampListVal.GetVal())
	default:
		w.ok = false
	}
	w.b = append(w.b, '}')
}

func (w *typedWriter) int32s(v []int32) {
	w.list(len(v), func(i int) { w.b = strconv.AppendInt(w.b, int64(v[i]), 10) })
}
func (w *typedWriter) int64s(v []int64) { w.list(len(v), func(i int) { w.int64(v[i]) }) }
func (w *typedWriter) floats(v []float32) {
	w.list(len(v), func(i int) { w.float(float64(v[i]), 32) })
}
func (w *typedWriter) doubles(v []float64) { w.list(len(v), func(i int) { w.float(v[i], 64) }) }
func (w *typedWriter) bools(v []bool) {
	w.list(len(v), func(i int) { w.b = strconv.AppendBool(w.b, v[i]) })
}
func (w *typedWriter) strs(v []string)      { w.list(len(v), func(i int) { w.str(v[i]) }) }
func (w *typedWriter) bytesList(v [][]byte) { w.list(len(v), func(i int) { w.bytes(v[i]) }) }
func (w *typedWriter) timestamps(v []*timestamppb.Timestamp) {
	w.list(len(v), func(i int) { w.timestamp(v[i]) })
}

// int64 is a JSON string, as protojson writes 64-bit integers.
func (w *typedWriter) int64(n int64) {
	w.b = append(w.b, '"')
	w.b = strconv.AppendInt(w.b, n, 10)
	w.b = append(w.b, '"')
}

func (w *typedWriter) enum(names map[int32]string, n int32) {
	if name, ok := names[n]; ok {
		w.b = append(w.b, '"')
		w.b = append(w.b, name...)
		w.b = append(w.b, '"')
		return
	}
	w.b = strconv.AppendInt(w.b, int64(n), 10)
}

// float formats as protojson does (encoding/json's rule: exponent form outside [1e-6, 1e21)).
func (w *typedWriter) float(f float64, bits int) {
	switch {
	case math.IsNaN(f):
		w.b = append(w.b, `"NaN"`...)
		return
	case math.IsInf(f, 1):
		w.b = append(w.b, `"Infinity"`...)
		return
	case math.IsInf(f, -1):
		w.b = append(w.b, `"-Infinity"`...)
		return
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	w.b = strconv.AppendFloat(w.b, f, format, -1, bits)
	if format == 'e' {
		if n := len(w.b); n >= 4 && w.b[n-4] == 'e' && w.b[n-3] == '-' && w.b[n-2] == '0' {
			w.b[n-2] = w.b[n-1]
			w.b = w.b[:n-1]
		}
	}
}

func (w *typedWriter) bytes(p []byte) {
	w.b = append(w.b, '"')
	w.b = base64.StdEncoding.AppendEncode(w.b, p)
	w.b = append(w.b, '"')
}

// Timestamps protojson can write: 0001-01-01 to 9999-12-31.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

// timestamp is RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as protojson writes it.
func (w *typedWriter) timestamp(t *timestamppb.Timestamp) {
	secs, nanos := t.GetSeconds(), t.GetNanos()
	if secs < minTimestampSeconds || secs > maxTimestampSeconds || nanos < 0 || nanos >= 1e9 {
		w.ok = false
		return
	}
	w.b = append(w.b, '"')
	w.b = time.Unix(secs, 0).UTC().AppendFormat(w.b, "2006-01-02T15:04:05")
	if nanos != 0 {
		digits, div := 9, int32(1)
		switch {
		case nanos%1e6 == 0:
			digits, div = 3, 1e6
		case nanos%1e3 == 0:
			digits, div = 6, 1e3
		}
		frac := strconv.AppendInt(nil, int64(nanos/div), 10)
		w.b = append(w.b, '.')
		for range digits - len(frac) {
			w.b = append(w.b, '0')
		}
		w.b = append(w.b, frac...)
	}
	w.b = append(w.b, 'Z', '"')
}

// str writes s escaped as protojson escapes strings; invalid UTF-8 is left to protojson,
// which refuses it.
func (w *typedWriter) str(s string) {
	w.b = append(w.b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			w.b = append(w.b, s[start:i]...)
			switch c {
			case '"', '\\':
				w.b = append(w.b, '\\', c)
			case '\b':
				w.b = append(w.b, '\\', 'b')
			case '\f':
				w.b = append(w.b, '\\', 'f')
			case '\n':
				w.b = append(w.b, '\\', 'n')
			case '\r':
				w.b = append(w.b, '\\', 'r')
			case '\t':
				w.b = append(w.b, '\\', 't')
			default:
				w.b = append(w.b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			w.ok = false
			return
		}
		i += size
	}
	w.b = append(w.b, s[start:]...)
	w.b = append(w.b, '"')
}
