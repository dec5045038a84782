package pitjoin

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidInput is the root of every error caused by the caller's data or arguments, as
	// opposed to I/O failures.
	ErrInvalidInput = errors.New("invalid point-in-time join input")
	// ErrMissingColumn: a required column (join key, timestamp or feature) is absent.
	ErrMissingColumn = fmt.Errorf("missing column: %w", ErrInvalidInput)
	// ErrTypeMismatch: a column has a type the join cannot use, or the entity and feature sides
	// disagree on a join key's type.
	ErrTypeMismatch = fmt.Errorf("column type mismatch: %w", ErrInvalidInput)
	// ErrDuplicateColumn: two output columns would have the same name.
	ErrDuplicateColumn = fmt.Errorf("duplicate output column: %w", ErrInvalidInput)
)
