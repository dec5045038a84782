package value

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Coerce returns v as a value of type want, by the one rule every path applies to a value sent
// for a declared type — a pushed or streamed row, a request's entity key or request field, an
// entity-file column of dataset create — so that training and serving read the same input the
// same way (docs/definitions.md, "Values for a declared type"):
//
//   - null is null of any type; a value of type want is itself;
//   - an integer converts to the other integer type when it fits, and to either float type,
//     rounded to the nearest float when the float has fewer digits;
//   - a float32 converts to float64 exactly; a float64 to float32 rounded to the nearest
//     float32, unless it is finite and beyond float32's range;
//   - a string converts to bytes (its UTF-8 bytes);
//   - an array converts element by element by the same rules;
//   - nothing else converts: no float to integer, no number to or from string, bool or
//     timestamp.
//
// The error is a *TypeError (matching ErrType) that says what did not convert.
func Coerce(v Value, want Type) (Value, error) {
	got := v.typ
	if got == want || got.Elem == Invalid {
		return v, nil
	}
	if got.Array != want.Array || !want.Valid() {
		return Value{}, mismatch(got, want)
	}
	if got.Array {
		return coerceArray(v, want.Elem)
	}
	return coerceScalar(v, want.Elem)
}

// CanCoerce reports whether Coerce takes some values of type from for type to (integers out
// of range and floats beyond float32's range aside).
func CanCoerce(from, to Type) bool {
	if from == to {
		return true
	}
	if from.Array != to.Array || !from.Valid() || !to.Valid() {
		return false
	}
	return scalarCoerces(from.Elem, to.Elem)
}

func scalarCoerces(from, to Scalar) bool {
	switch from {
	case Int32, Int64:
		return to == Int32 || to == Int64 || to == Float32 || to == Float64
	case Float32, Float64:
		return to == Float32 || to == Float64
	case String:
		return to == Bytes
	}
	return from == to
}

func mismatch(got, want Type) error { return &TypeError{Want: want, Got: got} }

func coerceScalar(v Value, want Scalar) (Value, error) {
	if !scalarCoerces(v.typ.Elem, want) {
		return Value{}, mismatch(v.typ, Type{Elem: want})
	}
	switch v.typ.Elem {
	case Int32, Int64:
		i := int64(v.num) // int32 is held sign-extended
		switch want {
		case Int32:
			if i < math.MinInt32 || i > math.MaxInt32 {
				return Value{}, &TypeError{Want: Type{Elem: Int32}, Got: v.typ, Reason: fmt.Sprintf("%d does not fit", i)}
			}
			return NewInt32(int32(i)), nil
		case Int64:
			return NewInt64(i), nil
		case Float32:
			return NewFloat32(float32(i)), nil
		case Float64:
			return NewFloat64(float64(i)), nil
		}
	case Float32:
		return NewFloat64(float64(v.Float32())), nil // want is Float64
	case Float64:
		return toFloat32(v.Float64())
	case String:
		return Value{typ: Type{Elem: Bytes}, str: v.str}, nil
	}
	return Value{}, mismatch(v.typ, Type{Elem: want})
}

// toFloat32 rounds x to the nearest float32; a finite x beyond float32's range is an error.
func toFloat32(x float64) (Value, error) {
	f := float32(x)
	if math.IsInf(float64(f), 0) && !math.IsInf(x, 0) {
		return Value{}, &TypeError{Want: Type{Elem: Float32}, Got: Type{Elem: Float64}, Reason: fmt.Sprintf("%g is beyond float32's range", x)}
	}
	return NewFloat32(f), nil
}

func coerceArray(v Value, want Scalar) (Value, error) {
	from := v.typ.Elem
	if !scalarCoerces(from, want) {
		return Value{}, mismatch(v.typ, Type{Elem: want, Array: true})
	}
	if from == String && want == Bytes {
		return Value{typ: Type{Elem: Bytes, Array: true}, str: v.str}, nil // the same payload
	}
	elems, err := v.Elems()
	if err != nil {
		return Value{}, err
	}
	for i, e := range elems {
		c, err := coerceScalar(e, want)
		if err != nil {
			reason := "element " + strconv.Itoa(i)
			var te *TypeError
			if errors.As(err, &te) && te.Reason != "" {
				reason += ": " + te.Reason
			}
			return Value{}, &TypeError{Want: Type{Elem: want, Array: true}, Got: v.typ, Reason: reason}
		}
		elems[i] = c
	}
	return NewArray(want, elems)
}

// Elems returns the elements of an array value as scalar values; an error for other values.
func (v Value) Elems() ([]Value, error) {
	if !v.typ.Array {
		return nil, fmt.Errorf("%w: a %s value is not an array", ErrType, v.typ)
	}
	switch v.typ.Elem {
	case Int32:
		return each(v.Int32s(), NewInt32), nil
	case Int64:
		return each(v.Int64s(), NewInt64), nil
	case Float32:
		return each(v.Float32s(), NewFloat32), nil
	case Float64:
		return each(v.Float64s(), NewFloat64), nil
	case Bool:
		return each(v.Bools(), NewBool), nil
	case String:
		return each(v.Strings(), NewString), nil
	case Bytes:
		return each(v.Strings(), func(s string) Value { return Value{typ: Type{Elem: Bytes}, str: s} }), nil
	case Timestamp:
		return each(v.Timestamps(), NewTimestamp), nil
	}
	return nil, fmt.Errorf("%w: a %s value is not an array", ErrType, v.typ)
}

func each[T any](xs []T, mk func(T) Value) []Value {
	out := make([]Value, len(xs))
	for i, x := range xs {
		out[i] = mk(x)
	}
	return out
}

// NewArray returns the array<elem> value of elems, which must all be non-null values of type
// elem (arrays hold no nulls).
func NewArray(elem Scalar, elems []Value) (Value, error) {
	for i, e := range elems {
		if e.typ != (Type{Elem: elem}) {
			if e.IsNull() {
				return Value{}, fmt.Errorf("%w: element %d is null; arrays hold no nulls", ErrType, i)
			}
			return Value{}, fmt.Errorf("%w: element %d is a %s value, want %s", ErrType, i, e.typ, elem)
		}
	}
	switch elem {
	case Int32:
		return NewInt32s(collect(elems, Value.Int32)), nil
	case Int64:
		return NewInt64s(collect(elems, Value.Int64)), nil
	case Float32:
		return NewFloat32s(collect(elems, Value.Float32)), nil
	case Float64:
		return NewFloat64s(collect(elems, Value.Float64)), nil
	case Bool:
		return NewBools(collect(elems, Value.Bool)), nil
	case String:
		return NewStrings(collect(elems, Value.Str)), nil
	case Bytes:
		out := NewStrings(collect(elems, Value.Str))
		out.typ.Elem = Bytes
		return out, nil
	case Timestamp:
		return NewTimestamps(collect(elems, Value.Time)), nil
	}
	return Value{}, fmt.Errorf("%w: no arrays of %s", ErrType, elem)
}

func collect[T any](elems []Value, get func(Value) T) []T {
	out := make([]T, len(elems))
	for i, e := range elems {
		out[i] = get(e)
	}
	return out
}
