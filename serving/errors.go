package serving

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/serving/model"
)

// Sentinel errors of the serving layer. Handlers wrap them with %w and a message that names
// the offending input; statusOf maps them to gRPC codes.
var (
	// ErrInvalidRequest: the request is malformed (missing field, ragged columns, bad type).
	ErrInvalidRequest = errkind.New(errkind.Invalid, "invalid request")
	// ErrUnknown: the request names a feature service, view, feature or join key that does
	// not exist. The message lists close valid names.
	ErrUnknown = fmt.Errorf("unknown name: %w", ErrInvalidRequest)
	// ErrTooLarge: the batch is larger than the server's limit.
	ErrTooLarge = errkind.New(errkind.Invalid, "request too large")
	// ErrModelNotFound: the model, version or alias does not exist.
	ErrModelNotFound = fmt.Errorf("serving: %w", model.ErrNotFound)
	// ErrNotReady: the server has no definitions loaded yet.
	ErrNotReady = errkind.New(errkind.Unavailable, "definitions not loaded")
	// ErrPrecondition: the request is well formed but the definitions cannot serve it (a view
	// that is not online, a feature type a model cannot take).
	ErrPrecondition = errkind.New(errkind.Precondition, "failed precondition")
)

// statusOf is the one place that turns an error into a gRPC status: it switches on the
// error's kind (internal/errkind), after the few conditions that have a code of their own (a
// request too large, a deadline, a corrupt stored value). Anything of no kind is INTERNAL
// with a generic message (the detail is logged, not sent).
func statusOf(ctx context.Context, err error) (*status.Status, bool) {
	if err == nil {
		return status.New(codes.OK, ""), false
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return st, false // already a status (from a remote model server, say)
	}
	msg := err.Error()
	switch {
	case errors.Is(err, ErrTooLarge): // also when waiting for room took until the deadline
		return status.New(codes.ResourceExhausted, msg), false
	case errors.Is(err, context.DeadlineExceeded) || (ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded)):
		return status.New(codes.DeadlineExceeded, msg), false
	case errors.Is(err, online.ErrCorrupt):
		return status.New(codes.DataLoss, msg), true
	}
	switch errkind.Of(err) {
	case errkind.Canceled:
		return status.New(codes.Canceled, msg), false
	case errkind.PermissionDenied:
		return status.New(codes.PermissionDenied, msg), false
	case errkind.Unauthenticated:
		return status.New(codes.Unauthenticated, msg), false
	case errkind.NotFound:
		return status.New(codes.NotFound, msg), false
	case errkind.Invalid, errkind.Usage:
		return status.New(codes.InvalidArgument, msg), false
	case errkind.Precondition, errkind.ProjectConflict:
		return status.New(codes.FailedPrecondition, msg), false
	case errkind.Unavailable:
		return status.New(codes.Unavailable, msg), false
	case errkind.Conflict:
		return status.New(codes.Aborted, msg), false
	}
	return status.New(codes.Internal, "internal error"), true
}

// StatusOf is statusOf for the other gRPC services of the server (serving/flight): the status
// of err, and whether it is an internal error, whose detail the caller logs and the client
// does not see.
func StatusOf(ctx context.Context, err error) (*status.Status, bool) { return statusOf(ctx, err) }

// kindError classifies err as kind for statusOf without adding kind's text to the message
// the client reads.
type kindError struct{ kind, err error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

// tag classifies err as kind.
func tag(kind, err error) error { return &kindError{kind: kind, err: err} }

// tagf is tag(kind, fmt.Errorf(format, args...)).
func tagf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}

func invalidf(format string, args ...any) error { return tagf(ErrInvalidRequest, format, args...) }

// httpStatus is the HTTP status of a gRPC code, for the HTTP/JSON API: errors reach HTTP
// clients through statusOf and then this table, so both transports classify alike.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.FailedPrecondition:
		return http.StatusPreconditionFailed
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Canceled:
		return 499 // client closed request
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError // Internal, DataLoss, Unknown
}

// codeOfHTTP is the gRPC code of an HTTP status the gateway answers by itself (no route,
// wrong method).
func codeOfHTTP(status int) codes.Code {
	switch status {
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusBadRequest:
		return codes.InvalidArgument
	}
	return codes.Internal
}

// codeName is the canonical upper-case name of a code ("INVALID_ARGUMENT").
func codeName(c codes.Code) string {
	if name, ok := codeNames[c]; ok {
		return name
	}
	return "UNKNOWN"
}

var codeNames = map[codes.Code]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN", codes.InvalidArgument: "INVALID_ARGUMENT",
	codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED", codes.OutOfRange: "OUT_OF_RANGE",
	codes.Unimplemented: "UNIMPLEMENTED", codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE",
	codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
}
