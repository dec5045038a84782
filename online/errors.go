package online

import (
	"errors"
	"fmt"
)

// Sentinel errors. Backends wrap them with %w and context (the store address, the view), so
// callers test with errors.Is.
var (
	// ErrInvalidArgument marks a request the store cannot carry out as asked: a row whose
	// values do not match the view's features, a bad entity key, an unknown feature.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrTypeMismatch marks a value whose type differs from its feature's declared type.
	ErrTypeMismatch = fmt.Errorf("type mismatch: %w", ErrInvalidArgument)
	// ErrUnavailable marks a store that could not be reached or did not answer in time.
	ErrUnavailable = errors.New("online store unavailable")
	// ErrCorrupt marks a stored value that cannot be decoded.
	ErrCorrupt = errors.New("corrupt online value")
	// ErrClosed is returned by a store used after Close.
	ErrClosed = errors.New("online store closed")
)
