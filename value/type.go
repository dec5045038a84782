package value

import (
	"fmt"
	"strconv"
	"strings"
)

// Scalar is the element type of a feature or join key.
type Scalar uint8

// The scalar types. The numeric values are part of stored formats (the online value
// encoding); never renumber them.
const (
	Invalid   Scalar = 0
	Int32     Scalar = 1
	Int64     Scalar = 2
	Float32   Scalar = 3
	Float64   Scalar = 4
	Bool      Scalar = 5
	String    Scalar = 6
	Bytes     Scalar = 7
	Timestamp Scalar = 8
)

var scalarNames = [...]string{
	Invalid: "invalid", Int32: "int32", Int64: "int64", Float32: "float32", Float64: "float64",
	Bool: "bool", String: "string", Bytes: "bytes", Timestamp: "timestamp",
}

func (s Scalar) String() string {
	if int(s) < len(scalarNames) {
		return scalarNames[s]
	}
	return "scalar(" + strconv.Itoa(int(s)) + ")"
}

// Valid reports whether s is one of the declared scalar types.
func (s Scalar) Valid() bool { return s >= Int32 && s <= Timestamp }

// Type is a feature or join-key type: a scalar, or an array of a scalar. The zero Type is invalid.
type Type struct {
	Elem  Scalar
	Array bool
}

// ValidTypes is what a type may be, for error messages.
const ValidTypes = "int32, int64, float32, float64, bool, string, bytes, timestamp, or array<T> of those"

// ParseType parses "int64", "array<float32>" and the like.
func ParseType(s string) (Type, error) {
	t := Type{}
	name := strings.TrimSpace(s)
	if inner, ok := strings.CutPrefix(name, "array<"); ok {
		inner, ok = strings.CutSuffix(inner, ">")
		if !ok {
			return Type{}, fmt.Errorf("unknown type %q; valid types: %s", s, ValidTypes)
		}
		t.Array = true
		name = strings.TrimSpace(inner)
	}
	for i, n := range scalarNames {
		if n == name && Scalar(i).Valid() {
			t.Elem = Scalar(i)
			return t, nil
		}
	}
	return Type{}, fmt.Errorf("unknown type %q; valid types: %s", s, ValidTypes)
}

// MustType is ParseType for constants in code and tests; it panics on a bad type name.
func MustType(s string) Type {
	t, err := ParseType(s)
	if err != nil {
		panic(err)
	}
	return t
}

func (t Type) String() string {
	if t.Array {
		return "array<" + t.Elem.String() + ">"
	}
	return t.Elem.String()
}

// Valid reports whether t names a real type.
func (t Type) Valid() bool { return t.Elem.Valid() }

// MarshalText writes the type as it is spelled in YAML.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText parses a type as it is spelled in YAML.
func (t *Type) UnmarshalText(b []byte) error {
	p, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = p
	return nil
}
