package serving

import (
	"math"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// A hand-written marshaller for GetOnlineFeaturesResponse, the server's largest and most
// frequent message: the protobuf runtime walks each column's five nested messages twice (size,
// then append) through its generic tables, which cost more than building the response did
// (docs/BENCHMARKS.md). The bytes are those proto.Marshal gives with Deterministic set (map
// entries by key): TestResponseMarshalMatchesProto. Vectors other than the numeric and bool
// lists, and the echoed entities, go through the protobuf runtime.

// sharedTimes remembers the last event-time column encoded: the columns of one view share
// their EventTimestampsMicros slice (columnsToProto), so its packed encoding is computed once
// per view and copied for the view's other columns.
type sharedTimes struct {
	first *int64
	n     int
	size  int    // payload size
	enc   []byte // field 6's tag, length and payload, once appended
}

func (st *sharedTimes) same(ts []int64) bool { return st.first == &ts[0] && st.n == len(ts) }

func (st *sharedTimes) payloadSize(ts []int64) int {
	if !st.same(ts) {
		*st = sharedTimes{first: &ts[0], n: len(ts), size: int64sSize(ts)}
	}
	return st.size
}

// responseSize is the encoded size of r; it appends each column's size to sizes, for
// appendResponse.
func responseSize(r *pb.GetOnlineFeaturesResponse, sizes []int) (int, []int) {
	n := 0
	if r.Rows != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(r.Rows)))
	}
	for _, k := range entityKeys(r) {
		e := entrySize(k, r.Entities[k])
		n += 1 + protowire.SizeVarint(uint64(e)) + e
	}
	var st sharedTimes
	for _, fc := range r.Features {
		c := columnSize(fc, &st)
		sizes = append(sizes, c)
		n += 1 + protowire.SizeVarint(uint64(c)) + c
	}
	return n, sizes
}

// appendResponse appends r's encoding to b; sizes are its columns' sizes (responseSize).
func appendResponse(b []byte, r *pb.GetOnlineFeaturesResponse, sizes []int) ([]byte, error) {
	if r.Rows != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(r.Rows)))
	}
	for _, k := range entityKeys(r) {
		v := r.Entities[k]
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(entrySize(k, v)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		if n, ok := repeatedScalarsSize(v); ok {
			b = protowire.AppendVarint(b, uint64(n))
			b = appendRepeatedScalars(b, v)
			continue
		}
		b = protowire.AppendVarint(b, uint64(proto.Size(v)))
		var err error
		if b, err = (proto.MarshalOptions{Deterministic: true, UseCachedSize: true}).MarshalAppend(b, v); err != nil {
			return nil, err
		}
	}
	var st sharedTimes
	for i, fc := range r.Features {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizes[i]))
		var err error
		if b, err = appendColumn(b, fc, &st); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func entityKeys(r *pb.GetOnlineFeaturesResponse) []string {
	if len(r.Entities) == 0 {
		return nil
	}
	keys := make([]string, 0, len(r.Entities))
	for k := range r.Entities {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// entrySize is the size of a map entry: key (1) and value (2), the value always written (a
// nil RepeatedValue as an empty message), as the protobuf runtime does.
func entrySize(k string, v *pb.RepeatedValue) int {
	vs, ok := repeatedScalarsSize(v)
	if !ok {
		vs = proto.Size(v)
	}
	return 1 + protowire.SizeVarint(uint64(len(k))) + len(k) + 1 + protowire.SizeVarint(uint64(vs)) + vs
}

func bytesFieldSize(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

func columnSize(fc *pb.FeatureColumn, st *sharedTimes) int {
	n := 0
	if len(fc.Name) > 0 {
		n += bytesFieldSize(len(fc.Name))
	}
	if len(fc.View) > 0 {
		n += bytesFieldSize(len(fc.View))
	}
	if fc.Type != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(fc.Type)))
	}
	if fc.Values != nil {
		n += bytesFieldSize(vectorSize(fc.Values))
	}
	if len(fc.Statuses) > 0 {
		n += bytesFieldSize(statusesSize(fc.Statuses))
	}
	if len(fc.EventTimestampsMicros) > 0 {
		n += bytesFieldSize(st.payloadSize(fc.EventTimestampsMicros))
	}
	if len(fc.Nulls) > 0 {
		n += bytesFieldSize(len(fc.Nulls))
	}
	return n
}

func appendColumn(b []byte, fc *pb.FeatureColumn, st *sharedTimes) ([]byte, error) {
	if len(fc.Name) > 0 {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, fc.Name)
	}
	if len(fc.View) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, fc.View)
	}
	if fc.Type != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(fc.Type)))
	}
	if fc.Values != nil {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(vectorSize(fc.Values)))
		var err error
		if b, err = appendVector(b, fc.Values); err != nil {
			return nil, err
		}
	}
	if len(fc.Statuses) > 0 {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(statusesSize(fc.Statuses)))
		for _, s := range fc.Statuses {
			b = protowire.AppendVarint(b, uint64(int64(s)))
		}
	}
	if ts := fc.EventTimestampsMicros; len(ts) > 0 {
		if st.same(ts) && st.enc != nil {
			b = append(b, st.enc...)
		} else {
			start := len(b)
			b = protowire.AppendTag(b, 6, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(st.payloadSize(ts)))
			for _, t := range ts {
				b = protowire.AppendVarint(b, uint64(t))
			}
			st.enc = b[start:len(b):len(b)]
		}
	}
	if len(fc.Nulls) > 0 {
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(fc.Nulls)))
		for _, x := range fc.Nulls {
			b = append(b, boolByte(x))
		}
	}
	return b, nil
}

// listSize is the size of a list message holding one packed field of payload bytes.
func listSize(payload, n int) int {
	if n == 0 {
		return 0
	}
	return bytesFieldSize(payload)
}

// numericList is v's list when it is one of the lists encoded here: its field number in
// Vector, its length and its packed payload's size. ok is false for other kinds (and for a
// kind set to a nil list), which the protobuf runtime encodes.
func numericList(v *pb.Vector) (field protowire.Number, n, payload int, ok bool) {
	switch k := v.Kind.(type) {
	case *pb.Vector_DoubleValues:
		if k.DoubleValues != nil {
			n = len(k.DoubleValues.Val)
			return 4, n, 8 * n, true
		}
	case *pb.Vector_FloatValues:
		if k.FloatValues != nil {
			n = len(k.FloatValues.Val)
			return 3, n, 4 * n, true
		}
	case *pb.Vector_Int64Values:
		if k.Int64Values != nil {
			return 2, len(k.Int64Values.Val), int64sSize(k.Int64Values.Val), true
		}
	case *pb.Vector_Int32Values:
		if k.Int32Values != nil {
			return 1, len(k.Int32Values.Val), int32sSize(k.Int32Values.Val), true
		}
	case *pb.Vector_BoolValues:
		if k.BoolValues != nil {
			n = len(k.BoolValues.Val)
			return 5, n, n, true
		}
	}
	return 0, 0, 0, false
}

// vectorSize is the size of v's encoding (without its tag and length).
func vectorSize(v *pb.Vector) int {
	if _, n, payload, ok := numericList(v); ok {
		return bytesFieldSize(listSize(payload, n))
	}
	return proto.Size(v)
}

func appendVector(b []byte, v *pb.Vector) ([]byte, error) {
	field, n, payload, ok := numericList(v)
	if !ok {
		return (proto.MarshalOptions{Deterministic: true, UseCachedSize: true}).MarshalAppend(b, v)
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(listSize(payload, n)))
	if n == 0 {
		return b, nil
	}
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(payload))
	switch k := v.Kind.(type) {
	case *pb.Vector_DoubleValues:
		for _, x := range k.DoubleValues.Val {
			b = protowire.AppendFixed64(b, math.Float64bits(x))
		}
	case *pb.Vector_FloatValues:
		for _, x := range k.FloatValues.Val {
			b = protowire.AppendFixed32(b, math.Float32bits(x))
		}
	case *pb.Vector_Int64Values:
		for _, x := range k.Int64Values.Val {
			b = protowire.AppendVarint(b, uint64(x))
		}
	case *pb.Vector_Int32Values:
		for _, x := range k.Int32Values.Val {
			b = protowire.AppendVarint(b, uint64(int64(x)))
		}
	case *pb.Vector_BoolValues:
		for _, x := range k.BoolValues.Val {
			b = append(b, boolByte(x))
		}
	}
	return b, nil
}

func boolByte(x bool) byte {
	if x {
		return 1
	}
	return 0
}

func statusesSize(s []pb.FieldStatus) int {
	n := 0
	for _, x := range s {
		n += protowire.SizeVarint(uint64(int64(x)))
	}
	return n
}

func int64sSize(s []int64) int {
	n := 0
	for _, x := range s {
		n += protowire.SizeVarint(uint64(x))
	}
	return n
}

func int32sSize(s []int32) int {
	n := 0
	for _, x := range s {
		n += protowire.SizeVarint(uint64(int64(x)))
	}
	return n
}

// repeatedScalarsSize is the size of rv's encoding when it is nil or holds only nulls and
// int32, int64, bool and string values (entity keys), with no unknown fields; ok is false
// otherwise, for the protobuf runtime to encode.
func repeatedScalarsSize(rv *pb.RepeatedValue) (n int, ok bool) {
	if rv == nil {
		return 0, true
	}
	if len(rv.ProtoReflect().GetUnknown()) > 0 {
		return 0, false
	}
	for _, v := range rv.Val {
		vs, ok := scalarValueSize(v)
		if !ok {
			return 0, false
		}
		n += bytesFieldSize(vs)
	}
	return n, true
}

func scalarValueSize(v *pb.Value) (int, bool) {
	if v == nil || len(v.ProtoReflect().GetUnknown()) > 0 {
		return 0, false
	}
	switch k := v.Kind.(type) {
	case nil:
		return 0, true
	case *pb.Value_Int64Val:
		return 1 + protowire.SizeVarint(uint64(k.Int64Val)), true
	case *pb.Value_Int32Val:
		return 1 + protowire.SizeVarint(uint64(int64(k.Int32Val))), true
	case *pb.Value_BoolVal:
		return 2, true
	case *pb.Value_StringVal:
		return bytesFieldSize(len(k.StringVal)), true
	}
	return 0, false
}

// appendRepeatedScalars appends rv's encoding; repeatedScalarsSize(rv) must be ok.
func appendRepeatedScalars(b []byte, rv *pb.RepeatedValue) []byte {
	for _, v := range rv.GetVal() {
		vs, _ := scalarValueSize(v)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(vs))
		switch k := v.Kind.(type) {
		case *pb.Value_Int64Val:
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(k.Int64Val))
		case *pb.Value_Int32Val:
			b = protowire.AppendTag(b, 1, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(int64(k.Int32Val)))
		case *pb.Value_BoolVal:
			b = protowire.AppendTag(b, 5, protowire.VarintType)
			b = append(b, boolByte(k.BoolVal))
		case *pb.Value_StringVal:
			b = protowire.AppendTag(b, 6, protowire.BytesType)
			b = protowire.AppendString(b, k.StringVal)
		}
	}
	return b
}
