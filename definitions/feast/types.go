package feast

import (
	"fmt"

	"github.com/quiverfs/quiver/definitions"
	ftypes "github.com/quiverfs/quiver/definitions/feast/internal/proto/feast/types"
)

// valueType maps a Feast value type to a Quiver type. changed, when not empty, says how the
// Quiver type differs (a JSON value kept as its text); ok is false for types with no
// equivalent, and why says which.
func valueType(t ftypes.ValueType_Enum) (typ definitions.Type, changed string, ok bool, why string) {
	scalar := func(s definitions.Scalar) definitions.Type { return definitions.Type{Elem: s} }
	array := func(s definitions.Scalar) definitions.Type { return definitions.Type{Elem: s, Array: true} }
	switch t {
	case ftypes.ValueType_INT32:
		return scalar(definitions.Int32), "", true, ""
	case ftypes.ValueType_INT64:
		return scalar(definitions.Int64), "", true, ""
	case ftypes.ValueType_FLOAT:
		return scalar(definitions.Float32), "", true, ""
	case ftypes.ValueType_DOUBLE:
		return scalar(definitions.Float64), "", true, ""
	case ftypes.ValueType_BOOL:
		return scalar(definitions.Bool), "", true, ""
	case ftypes.ValueType_STRING:
		return scalar(definitions.String), "", true, ""
	case ftypes.ValueType_BYTES:
		return scalar(definitions.Bytes), "", true, ""
	case ftypes.ValueType_UNIX_TIMESTAMP:
		return scalar(definitions.Timestamp), "", true, ""
	case ftypes.ValueType_INT32_LIST:
		return array(definitions.Int32), "", true, ""
	case ftypes.ValueType_INT64_LIST:
		return array(definitions.Int64), "", true, ""
	case ftypes.ValueType_FLOAT_LIST:
		return array(definitions.Float32), "", true, ""
	case ftypes.ValueType_DOUBLE_LIST:
		return array(definitions.Float64), "", true, ""
	case ftypes.ValueType_BOOL_LIST:
		return array(definitions.Bool), "", true, ""
	case ftypes.ValueType_STRING_LIST:
		return array(definitions.String), "", true, ""
	case ftypes.ValueType_BYTES_LIST:
		return array(definitions.Bytes), "", true, ""
	case ftypes.ValueType_UNIX_TIMESTAMP_LIST:
		return array(definitions.Timestamp), "", true, ""
	case ftypes.ValueType_JSON:
		return scalar(definitions.String), "Feast type JSON becomes string: the JSON text, parsed by the reader", true, ""
	case ftypes.ValueType_JSON_LIST:
		return array(definitions.String), "Feast type JSON_LIST becomes array<string>: each element the JSON text", true, ""
	case ftypes.ValueType_UUID, ftypes.ValueType_TIME_UUID:
		return scalar(definitions.String), fmt.Sprintf("Feast type %s becomes string: the UUID's text", t), true, ""
	case ftypes.ValueType_UUID_LIST, ftypes.ValueType_TIME_UUID_LIST:
		return array(definitions.String), fmt.Sprintf("Feast type %s becomes array<string>", t), true, ""
	case ftypes.ValueType_INT32_SET:
		return array(definitions.Int32), setChange(t), true, ""
	case ftypes.ValueType_INT64_SET:
		return array(definitions.Int64), setChange(t), true, ""
	case ftypes.ValueType_FLOAT_SET:
		return array(definitions.Float32), setChange(t), true, ""
	case ftypes.ValueType_DOUBLE_SET:
		return array(definitions.Float64), setChange(t), true, ""
	case ftypes.ValueType_BOOL_SET:
		return array(definitions.Bool), setChange(t), true, ""
	case ftypes.ValueType_STRING_SET:
		return array(definitions.String), setChange(t), true, ""
	case ftypes.ValueType_BYTES_SET:
		return array(definitions.Bytes), setChange(t), true, ""
	case ftypes.ValueType_UNIX_TIMESTAMP_SET:
		return array(definitions.Timestamp), setChange(t), true, ""
	case ftypes.ValueType_ZONED_TIMESTAMP:
		return scalar(definitions.Timestamp), "Feast type ZONED_TIMESTAMP becomes timestamp: the instant in UTC, without its zone", true, ""
	}
	return definitions.Type{}, "", false, fmt.Sprintf("Feast type %s has no Quiver equivalent (Quiver types: %s)", t, definitions.ValidTypes)
}

func setChange(t ftypes.ValueType_Enum) string {
	return fmt.Sprintf("Feast type %s becomes an array: Quiver keeps the elements as written and does not remove duplicates", t)
}
