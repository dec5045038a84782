package ingest

import (
	"fmt"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/errkind"
)

// Kinds of errors. They match with errors.Is; their text is not part of the messages of the
// errors that carry them, which say what failed (the view, file, column and row).
var (
	// ErrInvalidBatch: a pushed batch does not fit the view's schema. The message names the
	// column and, where one row is at fault, the row (0-based). The whole batch is refused.
	ErrInvalidBatch = fmt.Errorf("invalid batch: %w", definitions.ErrInvalid)
	// ErrNotPushable: the view does not take pushed rows (its source is not a push source).
	ErrNotPushable = fmt.Errorf("view does not take pushed rows: %w", definitions.ErrInvalid)
	// ErrUnknownView: no feature view of that name is applied.
	ErrUnknownView = fmt.Errorf("unknown feature view: %w", definitions.ErrInvalid)
	// ErrLogLocked: another process holds the push log directory.
	ErrLogLocked = errkind.New(errkind.Conflict, "push log in use by another process")
	// ErrLogBroken: the push log could not be written or fsynced; the process refuses pushes,
	// writing nothing, until it is restarted (serving answers UNAVAILABLE).
	ErrLogBroken = errkind.New(errkind.Unavailable, "push log unusable")
	// ErrClosed: the ingester was closed.
	ErrClosed = errkind.New(errkind.Unavailable, "ingester closed")
)

// kindError is err classified as kind for errors.Is, with err's message only.
type kindError struct{ kind, err error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

func invalidBatch(err error) error { return &kindError{ErrInvalidBatch, err} }

func invalidBatchf(format string, args ...any) error {
	return invalidBatch(fmt.Errorf(format, args...))
}

func notPushablef(format string, args ...any) error {
	return &kindError{ErrNotPushable, fmt.Errorf(format, args...)}
}

func unknownViewf(format string, args ...any) error {
	return &kindError{ErrUnknownView, fmt.Errorf(format, args...)}
}
