package ingest

import (
	"errors"
	"fmt"

	"github.com/quiverfs/quiver/definitions"
)

var (
	// ErrInvalidBatch: a pushed batch does not fit the view's schema. The message names the
	// column and, where one row is at fault, the row (0-based). The whole batch is refused.
	ErrInvalidBatch = fmt.Errorf("invalid batch: %w", definitions.ErrInvalid)
	// ErrNotPushable: the view does not take pushed rows (its source is not a push source).
	ErrNotPushable = fmt.Errorf("view does not take pushed rows: %w", definitions.ErrInvalid)
	// ErrUnknownView: no feature view of that name is applied.
	ErrUnknownView = fmt.Errorf("unknown feature view: %w", definitions.ErrInvalid)
	// ErrLogLocked: another process holds the push log directory.
	ErrLogLocked = errors.New("push log in use by another process")
	// ErrClosed: the ingester was closed.
	ErrClosed = errors.New("ingester closed")
)
