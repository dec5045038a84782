package main

import (
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/internal/errkind"
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

// Error kinds: the "kind" of a -o json error object, the names of internal/errkind's kinds
// (a precondition is reported as invalid). Each maps to one exit code in kindCodes.
const (
	kindUsage           = string(errkind.Usage)
	kindInvalid         = string(errkind.Invalid)
	kindNotFound        = string(errkind.NotFound)
	kindUnavailable     = string(errkind.Unavailable)
	kindUnauthenticated = string(errkind.Unauthenticated)
	kindPermission      = string(errkind.PermissionDenied)
	kindConflict        = string(errkind.Conflict)
	kindCanceled        = string(errkind.Canceled)
	kindFailed          = string(errkind.Failed)
	kindProjectConflict = string(errkind.ProjectConflict)
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

// errorKind is err's kind as the CLI reports it: errkind.Of, the packages' own
// classification; a precondition is invalid input to the CLI.
func errorKind(err error) string {
	k := errkind.Of(err)
	if k == errkind.Precondition {
		return kindInvalid
	}
	return string(k)
}

// exitCode maps an error to the process exit code through its kind.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	return kindCodes[errorKind(err)]
}

// usage is an error in the command line (exit code 2).
func usage(format string, args ...any) error { return errkind.Errorf(errkind.Usage, format, args...) }

// statusError turns a gRPC status from a quiver server into an error of the kind its code
// says, keeping the server's message as it is.
func statusError(err error) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.ResourceExhausted, codes.OutOfRange:
		return errkind.New(errkind.Invalid, st.Message())
	case codes.NotFound:
		return errkind.New(errkind.NotFound, st.Message())
	case codes.Unavailable, codes.DeadlineExceeded:
		return errkind.New(errkind.Unavailable, st.Message())
	case codes.Unauthenticated:
		return errkind.New(errkind.Unauthenticated, withKind("unauthenticated", st.Message()))
	case codes.PermissionDenied:
		return errkind.New(errkind.PermissionDenied, withKind("permission denied", st.Message()))
	case codes.Canceled:
		return errkind.New(errkind.Canceled, st.Message())
	}
	return errkind.Mark(errkind.Failed, errors.New(st.Message()))
}

// withKind prefixes a server's message with its kind, once: quiver servers send the message
// alone (the kind is the status code), servers before issue 22 sent it with the kind.
func withKind(kind, msg string) string {
	return kind + ": " + strings.TrimPrefix(msg, kind+": ")
}
