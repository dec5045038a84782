package auth

import (
	"fmt"
	"strconv"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/errkind"
)

// Sentinel errors. Callers test them with errors.Is; the gRPC and HTTP edges map them to
// UNAUTHENTICATED / 401 and PERMISSION_DENIED / 403.
var (
	// ErrUnauthenticated: the caller sent no credentials, or credentials that do not verify
	// (a bad, expired or foreign token; an unknown API token).
	ErrUnauthenticated = errkind.New(errkind.Unauthenticated, "unauthenticated")
	// ErrPermissionDenied: the caller is authenticated but the policy grants it nothing that
	// covers the resource asked for.
	ErrPermissionDenied = errkind.New(errkind.PermissionDenied, "permission denied")
	// ErrConfig: the serving: section, the policy, or a file it names is invalid or
	// unreadable. It wraps definitions.ErrInvalid, so the CLI exits 1.
	ErrConfig error = &kindSentinel{"invalid serving configuration", definitions.ErrInvalid}
	// ErrInsecureBind: the server was asked to listen on a non-loopback address with no
	// authentication configured.
	ErrInsecureBind error = &kindSentinel{"refusing to serve without authentication on a non-loopback address", definitions.ErrInvalid}
)

// kindSentinel is a sentinel error that is also of a wider kind (definitions.ErrInvalid, so
// the CLI exits 1) without repeating the kind's text.
type kindSentinel struct {
	msg  string
	kind error
}

func (e *kindSentinel) Error() string { return e.msg }
func (e *kindSentinel) Unwrap() error { return e.kind }

// authError is an authentication failure: its message is what the client reads, its reason
// one of the few values of the denials metric's reason label.
type authError struct {
	reason string
	msg    string
}

// Error is the message alone: the kind is the error's code (UNAUTHENTICATED, 401), and whoever
// renders the code says it (`quiver: unauthenticated: no credentials: ...`), once.
func (e *authError) Error() string { return e.msg }
func (e *authError) Unwrap() error { return ErrUnauthenticated }

// Reasons, the values of the reason label of quiver_serving_auth_denials_total.
const (
	reasonNoCredentials = "no_credentials"
	reasonInvalid       = "invalid_credentials"
	reasonExpired       = "expired_credentials"
	reasonNotGranted    = "not_granted"
)

func unauthenticated(reason, format string, args ...any) error {
	return &authError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// DeniedError is a permission denial: who asked, and the first resource the policy did not
// grant them.
type DeniedError struct {
	Principal string
	Resource  Resource
	// Via, when set, names what the call asked for that reads Resource (`on-demand view
	// "cart_features"`).
	Via string
}

// Error says who was not granted what, without the kind: that is the error's code
// (PERMISSION_DENIED, 403), said once by whoever renders it.
func (e *DeniedError) Error() string {
	msg := e.Principal + " is not granted " + e.Resource.String()
	if e.Via != "" {
		msg += ", which " + e.Via + " reads"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrPermissionDenied) hold.
func (e *DeniedError) Unwrap() error { return ErrPermissionDenied }

// configError is a problem in a file at no particular position (unreadable, empty).
func configErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

func quote(s string) string { return strconv.Quote(s) }
