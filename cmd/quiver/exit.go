package main

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
)

// Exit codes, documented in docs/cli.md.
const (
	exitOK          = 0
	exitInvalid     = 1 // invalid definitions or input: bad YAML, unknown names, bad files
	exitUsage       = 2 // the command line itself is wrong
	exitUnavailable = 3 // a registry, store or server cannot be reached or refused our credentials, or a concurrent change conflicted
	exitFailed      = 4 // the operation ran and failed: a job failed, a verification mismatched
	// exitProjectConflict: the project's storage (its Iceberg namespace and warehouse folder)
	// belongs to another project.
	exitProjectConflict = 5
)

// Error kinds: the "kind" of a -o json error object. Each maps to one exit code in kindCodes.
const (
	kindUsage           = "usage"
	kindInvalid         = "invalid"
	kindNotFound        = "not_found"
	kindUnavailable     = "unavailable"
	kindUnauthenticated = "unauthenticated"
	kindPermission      = "permission_denied"
	kindConflict        = "conflict"
	kindCanceled        = "canceled"
	kindFailed          = "failed"
	kindProjectConflict = "project_conflict"
)

// kindCodes is the one error-kind → exit-code map.
var kindCodes = map[string]int{
	kindUsage:           exitUsage,
	kindInvalid:         exitInvalid,
	kindNotFound:        exitInvalid,
	kindUnavailable:     exitUnavailable,
	kindUnauthenticated: exitUnavailable,
	kindPermission:      exitUnavailable,
	kindConflict:        exitUnavailable,
	kindCanceled:        exitFailed,
	kindFailed:          exitFailed,
	kindProjectConflict: exitProjectConflict,
}

// Sentinels for conditions no package below names: a server that refused our credentials or
// our access. They only carry a kind; messages come from the server.
var (
	errUnauthenticated  = errors.New("unauthenticated")
	errPermissionDenied = errors.New("permission denied")
)

// usageError marks errors in the command line (unknown flag, wrong number of arguments).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(err error) error { return usageError{err} }

// invalidError marks invalid input (exit code 1) without changing the message.
type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{e.err, definitions.ErrInvalid} }

func invalid(err error) error { return invalidError{err} }

// failedError marks an operation that ran and failed (exit code 4).
type failedError struct{ err error }

func (e failedError) Error() string { return e.err.Error() }
func (e failedError) Unwrap() error { return e.err }

// reportedError is an error whose details the command already printed; run prints nothing
// more in table output (with -o json, run still writes the error object to stderr).
type reportedError struct{ err error }

func (e reportedError) Error() string { return e.err.Error() }
func (e reportedError) Unwrap() error { return e.err }

func isReported(err error) bool {
	var r reportedError
	return errors.As(err, &r)
}

// errorKind classifies err. This is the one place that does so; exitCode and the -o json
// error object both read it. Unavailable and unauthenticated stores are classified by the
// store packages themselves (registry.ErrUnavailable, online.ErrUnavailable), at the edge
// where the driver's error is known.
func errorKind(err error) string {
	var u usageError
	var f failedError
	var owned *registry.NamespaceOwnedError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &u):
		return kindUsage
	case errors.As(err, &owned):
		return kindProjectConflict
	case errors.Is(err, errUnauthenticated):
		return kindUnauthenticated
	case errors.Is(err, errPermissionDenied):
		return kindPermission
	case errors.Is(err, registry.ErrUnavailable), errors.Is(err, online.ErrUnavailable):
		return kindUnavailable
	case errors.Is(err, registry.ErrConflict):
		return kindConflict
	case errors.As(err, &f):
		return kindFailed
	case errors.Is(err, registry.ErrNotFound):
		return kindNotFound
	case errors.Is(err, definitions.ErrInvalid), errors.Is(err, config.ErrNoRepo), errors.Is(err, registry.ErrInvalid),
		errors.Is(err, online.ErrInvalidArgument), errors.Is(err, offline.ErrInvalidSource):
		return kindInvalid
	case errors.Is(err, context.Canceled):
		return kindCanceled
	}
	return kindFailed
}

// exitCode maps an error to the process exit code through its kind.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	return kindCodes[errorKind(err)]
}

// statusError maps a gRPC status from a quiver server to the errors errorKind knows, keeping
// the server's message as it is.
func statusError(err error) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.ResourceExhausted, codes.OutOfRange:
		return codedError{st.Message(), definitions.ErrInvalid}
	case codes.NotFound:
		return codedError{st.Message(), registry.ErrNotFound}
	case codes.Unavailable, codes.DeadlineExceeded:
		return codedError{st.Message(), registry.ErrUnavailable}
	case codes.Unauthenticated:
		return codedError{withKind("unauthenticated", st.Message()), errUnauthenticated}
	case codes.PermissionDenied:
		return codedError{withKind("permission denied", st.Message()), errPermissionDenied}
	case codes.Canceled:
		return codedError{st.Message(), context.Canceled}
	}
	return failedError{errors.New(st.Message())}
}

// withKind prefixes a server's message with its kind, once: quiver servers send the message
// alone (the kind is the status code), servers before issue 22 sent it with the kind.
func withKind(kind, msg string) string {
	return kind + ": " + strings.TrimPrefix(msg, kind+": ")
}

// codedError is a message that matches kind with errors.Is without repeating kind's text.
type codedError struct {
	msg  string
	kind error
}

func (e codedError) Error() string { return e.msg }
func (e codedError) Unwrap() error { return e.kind }
