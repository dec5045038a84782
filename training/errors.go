package training

import (
	"github.com/quiverfs/quiver/internal/errkind"
)

var (
	// ErrInvalidJob: a training job cannot run as declared or requested (no command, no
	// image for the Kubernetes backend, resources Kubernetes would refuse).
	ErrInvalidJob = errkind.New(errkind.Invalid, "invalid training job")
	// ErrInvalidParam: a --param override or a param default is unknown or of the wrong type.
	ErrInvalidParam error = &kindError{msg: "invalid param", parent: ErrInvalidJob}
)

// kindError is a sentinel that is also a kind of a broader one, with its own message.
type kindError struct {
	msg    string
	parent error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.parent }
