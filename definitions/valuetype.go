package definitions

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/quiverfs/quiver/value"
)

// The types of features and join keys are package value's; these aliases keep the names
// definitions has always had.
type (
	// Scalar is the element type of a feature or join key (value.Scalar).
	Scalar = value.Scalar
	// Type is a feature or join-key type (value.Type).
	Type = value.Type
)

// The scalar types (value's).
const (
	Invalid   = value.Invalid
	Int32     = value.Int32
	Int64     = value.Int64
	Float32   = value.Float32
	Float64   = value.Float64
	Bool      = value.Bool
	String    = value.String
	Bytes     = value.Bytes
	Timestamp = value.Timestamp
)

// ValidTypes is what a type may be, for error messages.
const ValidTypes = value.ValidTypes

// ParseType parses "int64", "array<float32>" and the like (value.ParseType).
func ParseType(s string) (Type, error) { return value.ParseType(s) }

// MustType is ParseType for constants in code and tests; it panics on a bad type name.
func MustType(s string) Type { return value.MustType(s) }

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
