package online

import (
	"fmt"

	"github.com/quiverfs/quiver/internal/errkind"
)

// Sentinel errors. Backends wrap them with %w and context (the store address, the view), so
// callers test with errors.Is.
var (
	// ErrInvalidArgument marks a request the store cannot carry out as asked: a row whose
	// values do not match the view's features, a bad entity key, an unknown feature.
	ErrInvalidArgument = errkind.New(errkind.Invalid, "invalid argument")
	// ErrTypeMismatch marks a value whose type differs from its feature's declared type.
	ErrTypeMismatch = fmt.Errorf("type mismatch: %w", ErrInvalidArgument)
	// ErrUnavailable marks a store that could not be reached or did not answer in time.
	ErrUnavailable = errkind.New(errkind.Unavailable, "online store unavailable")
	// ErrCorrupt marks a stored value that cannot be decoded.
	ErrCorrupt = errkind.New(errkind.Failed, "corrupt online value")
	// ErrClosed is returned by a store used after Close.
	ErrClosed = errkind.New(errkind.Unavailable, "online store closed")
)
