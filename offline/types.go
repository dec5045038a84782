package offline

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/quiverfs/quiver/definitions"
)

// TimestampType is the Arrow type of every timestamp Quiver stores: microseconds, UTC.
var TimestampType arrow.DataType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// ArrowType is the canonical Arrow type of a declared type. Arrays are lists whose elements
// are nullable. It returns an error for an invalid type.
func ArrowType(t definitions.Type) (arrow.DataType, error) {
	elem, err := arrowScalar(t.Elem)
	if err != nil {
		return nil, err
	}
	if t.Array {
		return arrow.ListOf(elem), nil
	}
	return elem, nil
}

func arrowScalar(s definitions.Scalar) (arrow.DataType, error) {
	switch s {
	case definitions.Int32:
		return arrow.PrimitiveTypes.Int32, nil
	case definitions.Int64:
		return arrow.PrimitiveTypes.Int64, nil
	case definitions.Float32:
		return arrow.PrimitiveTypes.Float32, nil
	case definitions.Float64:
		return arrow.PrimitiveTypes.Float64, nil
	case definitions.Bool:
		return arrow.FixedWidthTypes.Boolean, nil
	case definitions.String:
		return arrow.BinaryTypes.String, nil
	case definitions.Bytes:
		return arrow.BinaryTypes.Binary, nil
	case definitions.Timestamp:
		return TimestampType, nil
	}
	return nil, fmt.Errorf("no arrow type for %s", s)
}

// TypeFromArrow is the declared type an Arrow type is read as without conversion, if any.
// Timestamps of any unit and time zone map to timestamp; large strings and binaries and large
// lists map to their ordinary forms.
func TypeFromArrow(dt arrow.DataType) (definitions.Type, bool) {
	switch dt.ID() {
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST:
		elem, ok := scalarFromArrow(dt.(arrow.ListLikeType).Elem())
		return definitions.Type{Elem: elem, Array: true}, ok
	}
	s, ok := scalarFromArrow(dt)
	return definitions.Type{Elem: s}, ok
}

func scalarFromArrow(dt arrow.DataType) (definitions.Scalar, bool) {
	switch dt.ID() {
	case arrow.INT32:
		return definitions.Int32, true
	case arrow.INT64:
		return definitions.Int64, true
	case arrow.FLOAT32:
		return definitions.Float32, true
	case arrow.FLOAT64:
		return definitions.Float64, true
	case arrow.BOOL:
		return definitions.Bool, true
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return definitions.String, true
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW:
		return definitions.Bytes, true
	case arrow.TIMESTAMP:
		return definitions.Timestamp, true
	}
	return definitions.Invalid, false
}

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
