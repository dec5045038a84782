// Package errkind is Quiver's one vocabulary of error kinds. Every package's sentinel errors
// carry a kind (New, Errorf, Mark), and the edges — the CLI's exit codes, the server's gRPC
// statuses — switch on Of(err) alone, so that no call site re-labels another package's
// error. A kind adds nothing to an error's message: it is found with errors.Is.
package errkind

import (
	"context"
	"errors"
	"fmt"
)

// Kind is a class of failure. A Kind is an error itself, so that errors.Is(err, NotFound)
// tells whether err carries it.
type Kind string

// The kinds, from the most specific to the least (Of looks for them in this order).
const (
	// Usage: the command line is wrong (an unknown flag, a missing argument).
	Usage Kind = "usage"
	// ProjectConflict: the project's storage (its Iceberg namespace, its warehouse folder)
	// belongs to another project.
	ProjectConflict Kind = "project_conflict"
	// Unauthenticated: the caller's credentials are missing or were refused.
	Unauthenticated Kind = "unauthenticated"
	// PermissionDenied: the caller is authenticated but not granted what it asked for.
	PermissionDenied Kind = "permission_denied"
	// Unavailable: a store, a server or a runtime cannot be reached or is not ready.
	Unavailable Kind = "unavailable"
	// Conflict: the write lost a race or contradicts the stored state (an apply planned
	// against an old revision, a watermark moved backwards).
	Conflict Kind = "conflict"
	// Failed: the operation ran and failed (a job exited non-zero, a file did not verify).
	Failed Kind = "failed"
	// NotFound: what was named does not exist.
	NotFound Kind = "not_found"
	// Precondition: the input is well formed but the state cannot serve it (a view that is
	// not online, a model input of another type).
	Precondition Kind = "precondition"
	// Invalid: the input is wrong (bad definitions, an unknown column, a malformed file).
	Invalid Kind = "invalid"
	// Canceled: the operation was canceled (context.Canceled counts as this kind).
	Canceled Kind = "canceled"
)

// order is the order Of looks for kinds in: an error that carries several (a failed run
// whose cause is an unreachable store) is of the first.
var order = []Kind{Usage, ProjectConflict, Unauthenticated, PermissionDenied, Unavailable, Conflict, Failed,
	NotFound, Precondition, Invalid, Canceled}

// Error returns the kind's name.
func (k Kind) Error() string { return string(k) }

// Of is err's kind: the first of the kinds it carries, in the order of the constants above;
// context.Canceled is Canceled; an error that carries none is Failed; nil is "".
func Of(err error) Kind {
	if err == nil {
		return ""
	}
	for _, k := range order {
		if errors.Is(err, k) {
			return k
		}
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	return Failed
}

// kindError is an error carrying a kind, with the message of the error it wraps (or its own).
type kindError struct {
	kind Kind
	msg  string // the message when err is nil
	err  error
}

func (e *kindError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return e.msg
}

func (e *kindError) Unwrap() []error {
	if e.err == nil {
		return []error{e.kind}
	}
	return []error{e.err, e.kind}
}

// New returns a sentinel error of kind k with message msg: errors.Is(New(k, msg), k).
func New(k Kind, msg string) error { return &kindError{kind: k, msg: msg} }

// Errorf is fmt.Errorf whose result also carries kind k (its %w operands keep theirs).
func Errorf(k Kind, format string, args ...any) error {
	return &kindError{kind: k, err: fmt.Errorf(format, args...)}
}

// Mark returns err, with its message, also carrying kind k: for the package that makes err,
// never to re-label an error another package returned (its kind is that package's to say).
// Mark(k, nil) is nil.
func Mark(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: k, err: err}
}
