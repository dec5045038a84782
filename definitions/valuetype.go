package definitions

import (
	"fmt"
	"strconv"
	"strings"
	"time"
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

// Duration is a TTL: a whole number of seconds, minutes, hours or days ("30s", "15m", "12h",
// "7d"), or 0 for none.
type Duration time.Duration

// ValidDurations is what a duration may look like, for error messages.
const ValidDurations = `a whole number with a unit s, m, h or d (e.g. "30s", "15m", "12h", "7d"), or 0 for no expiry`

const day = 24 * time.Hour

// ParseDuration parses a TTL.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	if len(s) < 2 {
		return 0, fmt.Errorf("invalid duration %q; want %s", s, ValidDurations)
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 's':
		unit = time.Second
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = day
	default:
		return 0, fmt.Errorf("invalid duration %q; want %s", s, ValidDurations)
	}
	digits := s[:len(s)-1]
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 || digits[0] == '+' || digits[0] == '-' {
		return 0, fmt.Errorf("invalid duration %q; want %s", s, ValidDurations)
	}
	const maxDays = 100 * 365
	if time.Duration(n) > maxDays*day/unit {
		return 0, fmt.Errorf("duration %q is too long; the longest is %dd", s, maxDays)
	}
	return Duration(time.Duration(n) * unit), nil
}

// String writes the duration in the largest unit that divides it ("7d", "90m"), or "0".
func (d Duration) String() string {
	td := time.Duration(d)
	switch {
	case td == 0:
		return "0"
	case td%day == 0:
		return strconv.FormatInt(int64(td/day), 10) + "d"
	case td%time.Hour == 0:
		return strconv.FormatInt(int64(td/time.Hour), 10) + "h"
	case td%time.Minute == 0:
		return strconv.FormatInt(int64(td/time.Minute), 10) + "m"
	}
	return strconv.FormatInt(int64(td/time.Second), 10) + "s"
}

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// MarshalText writes the canonical form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses the YAML form.
func (d *Duration) UnmarshalText(b []byte) error {
	p, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}
