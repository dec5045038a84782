package offline

import (
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/value"
)

// TimestampType is the Arrow type of every timestamp Quiver stores: microseconds, UTC
// (value.TimestampType).
var TimestampType = value.TimestampType

// ArrowType is the canonical Arrow type of a declared type (value.ArrowType).
func ArrowType(t definitions.Type) (arrow.DataType, error) { return value.ArrowType(t) }

// TypeFromArrow is the declared type an Arrow type is read as without conversion, if any
// (value.TypeFromArrow).
func TypeFromArrow(dt arrow.DataType) (definitions.Type, bool) { return value.TypeFromArrow(dt) }

// Readable reports whether a column of Arrow type dt can be read as declared type t, and
// whether that needs a conversion. Besides exact matches it allows lossless widening:
//
//   - int8, int16, int32, uint8, uint16 → int32 or int64; uint32 → int64
//   - float32 → float64
//   - large_string, string_view → string; large_binary, binary_view, fixed_size_binary → bytes
//   - timestamps of any unit and zone → timestamp (stored as microseconds UTC; a timestamp
//     without a zone is taken to be UTC; nanoseconds are truncated to microseconds)
//   - list, large_list, fixed_size_list of a readable element → array of that element
//
// Nothing else converts: no int → float, no narrowing, no string parsing.
func Readable(dt arrow.DataType, t definitions.Type) (convert bool, ok bool) {
	want, err := ArrowType(t)
	if err != nil {
		return false, false
	}
	if arrow.TypeEqual(dt, want) {
		return false, true
	}
	if t.Array {
		switch dt.ID() {
		case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST:
			_, ok := Readable(dt.(arrow.ListLikeType).Elem(), definitions.Type{Elem: t.Elem})
			return true, ok
		}
		return false, false
	}
	return true, scalarReadable(dt, t.Elem)
}

func scalarReadable(dt arrow.DataType, s definitions.Scalar) bool {
	switch s {
	case definitions.Int32:
		switch dt.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.UINT8, arrow.UINT16:
			return true
		}
	case definitions.Int64:
		switch dt.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32:
			return true
		}
	case definitions.Float32:
		return dt.ID() == arrow.FLOAT32
	case definitions.Float64:
		return dt.ID() == arrow.FLOAT32 || dt.ID() == arrow.FLOAT64
	case definitions.Bool:
		return dt.ID() == arrow.BOOL
	case definitions.String:
		switch dt.ID() {
		case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
			return true
		}
	case definitions.Bytes:
		switch dt.ID() {
		case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW, arrow.FIXED_SIZE_BINARY:
			return true
		}
	case definitions.Timestamp:
		return dt.ID() == arrow.TIMESTAMP
	}
	return false
}
