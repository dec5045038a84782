// Package bytesize parses and prints byte sizes with units ("512MiB", "2GB", "1048576"), the
// one parser for every size Quiver takes on its command line.
package bytesize

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Units, decimal (KB = 1000) and binary (KiB = 1024).
const (
	KB  int64 = 1000
	MB        = 1000 * KB
	GB        = 1000 * MB
	TB        = 1000 * GB
	KiB int64 = 1 << 10
	MiB       = 1 << 20
	GiB       = 1 << 30
	TiB       = 1 << 40
)

var units = map[string]int64{
	"": 1, "b": 1,
	"kb": KB, "mb": MB, "gb": GB, "tb": TB,
	"kib": KiB, "mib": MiB, "gib": GiB, "tib": TiB,
	"k": KiB, "m": MiB, "g": GiB, "t": TiB, // as in GOMEMLIMIT-style shorthands and `ulimit`
}

// ErrSyntax is wrapped by Parse's errors.
var ErrSyntax = errors.New("invalid byte size")

// Parse reads a byte count: a whole or decimal number with an optional unit, case-insensitive,
// with or without a space: B, KB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB (powers of
// 1024), or K, M, G, T (same as KiB...). A plain number is bytes. Negative sizes are errors.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := units[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("%w %q: want a number of bytes with an optional unit, like 512MiB, 2GB or 1048576 (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", ErrSyntax, s)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/mult {
			return 0, fmt.Errorf("%w %q: too large", ErrSyntax, s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%w %q: want a number of bytes with an optional unit, like 512MiB, 2GB or 1048576", ErrSyntax, s)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%w %q: too large", ErrSyntax, s)
	}
	return int64(v), nil
}

// Format prints n with the largest binary unit that divides it exactly ("512MiB"), else in
// bytes.
func Format(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// Value is a command-line flag holding a byte size (it implements pflag.Value). The flag
// package names the flag in its errors: `invalid argument "x" for "--memory-budget" flag: ...`.
type Value struct{ p *int64 }

// NewValue sets *p to def and returns a flag value writing to it.
func NewValue(p *int64, def int64) *Value {
	*p = def
	return &Value{p: p}
}

// Set implements pflag.Value.
func (v *Value) Set(s string) error {
	n, err := Parse(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

// String implements pflag.Value.
func (v *Value) String() string {
	if v == nil || v.p == nil {
		return "0"
	}
	return Format(*v.p)
}

// Type implements pflag.Value.
func (v *Value) Type() string { return "bytes" }

// IntValue is Value for an int destination.
type IntValue struct{ p *int }

// NewIntValue sets *p to def and returns a flag value writing to it.
func NewIntValue(p *int, def int) *IntValue {
	*p = def
	return &IntValue{p: p}
}

// Set implements pflag.Value.
func (v *IntValue) Set(s string) error {
	n, err := Parse(s)
	if err != nil {
		return err
	}
	if n > math.MaxInt {
		return fmt.Errorf("%w %q: too large", ErrSyntax, s)
	}
	*v.p = int(n)
	return nil
}

// String implements pflag.Value.
func (v *IntValue) String() string {
	if v == nil || v.p == nil {
		return "0"
	}
	return Format(int64(*v.p))
}

// Type implements pflag.Value.
func (v *IntValue) Type() string { return "bytes" }
