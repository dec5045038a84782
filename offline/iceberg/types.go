package iceberg

import (
	"fmt"

	ice "github.com/apache/iceberg-go"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
)

// IcebergType is the Iceberg type a declared type is stored as: int, long, float, double,
// boolean, string, binary, timestamptz (microseconds, UTC) and list<T> with optional
// elements. nextID hands out field ids for list elements.
func IcebergType(t definitions.Type, nextID func() int) (ice.Type, error) {
	var elem ice.Type
	switch t.Elem {
	case definitions.Int32:
		elem = ice.PrimitiveTypes.Int32
	case definitions.Int64:
		elem = ice.PrimitiveTypes.Int64
	case definitions.Float32:
		elem = ice.PrimitiveTypes.Float32
	case definitions.Float64:
		elem = ice.PrimitiveTypes.Float64
	case definitions.Bool:
		elem = ice.PrimitiveTypes.Bool
	case definitions.String:
		elem = ice.PrimitiveTypes.String
	case definitions.Bytes:
		elem = ice.PrimitiveTypes.Binary
	case definitions.Timestamp:
		elem = ice.PrimitiveTypes.TimestampTz
	default:
		return nil, fmt.Errorf("no iceberg type for %s", t)
	}
	if t.Array {
		return &ice.ListType{ElementID: nextID(), Element: elem}, nil
	}
	return elem, nil
}

// TypeFromIceberg is the declared type an Iceberg type stores, if any.
func TypeFromIceberg(t ice.Type) (definitions.Type, bool) {
	if l, ok := t.(*ice.ListType); ok {
		s, ok := scalarFromIceberg(l.Element)
		return definitions.Type{Elem: s, Array: true}, ok
	}
	s, ok := scalarFromIceberg(t)
	return definitions.Type{Elem: s}, ok
}

func scalarFromIceberg(t ice.Type) (definitions.Scalar, bool) {
	switch t.(type) {
	case ice.Int32Type:
		return definitions.Int32, true
	case ice.Int64Type:
		return definitions.Int64, true
	case ice.Float32Type:
		return definitions.Float32, true
	case ice.Float64Type:
		return definitions.Float64, true
	case ice.BooleanType:
		return definitions.Bool, true
	case ice.StringType:
		return definitions.String, true
	case ice.BinaryType:
		return definitions.Bytes, true
	case ice.TimestampTzType:
		return definitions.Timestamp, true
	}
	return definitions.Invalid, false
}

// tableSchema is the Iceberg schema of a view's table: every canonical column, optional,
// with ids 1..n for the columns and n+1.. for list elements.
func tableSchema(vs offline.ViewSchema) (*ice.Schema, error) {
	cols := vs.Columns()
	next := len(cols)
	nextID := func() int { next++; return next }
	fields := make([]ice.NestedField, len(cols))
	for i, c := range cols {
		t, err := IcebergType(c.Type, nextID)
		if err != nil {
			return nil, fmt.Errorf("view %q column %q: %w", vs.View, c.Name, err)
		}
		fields[i] = ice.NestedField{ID: i + 1, Name: c.Name, Type: t}
	}
	return ice.NewSchema(0, fields...), nil
}
