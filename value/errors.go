package value

import (
	"errors"
	"fmt"
)

// ErrType marks a value that does not convert to the type asked for (Coerce). Callers wrap it
// with what they were converting: the field, the row.
var ErrType = errors.New("value type mismatch")

// TypeError is Coerce's error: the type asked for, the value's type, and, when the types do
// convert but this value does not, why. It matches ErrType.
type TypeError struct {
	Want, Got Type
	Reason    string // e.g. "2147483648 does not fit"; empty when no value of Got converts
}

func (e *TypeError) Error() string {
	msg := fmt.Sprintf("want %s, got %s", e.Want, e.Got)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Is makes errors.Is(err, ErrType) true.
func (e *TypeError) Is(target error) bool { return target == ErrType }
