package main

import (
	"errors"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
)

// Exit codes, documented in docs/cli.md.
const (
	exitOK          = 0
	exitInvalid     = 1 // invalid definitions or input: bad YAML, unknown names, bad files
	exitUsage       = 2 // the command line itself is wrong
	exitUnavailable = 3 // a registry or store cannot be reached, or a concurrent change conflicted
	exitFailed      = 4 // the operation ran and failed: a job failed, a verification mismatched
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

// reportedError is an error whose details the command already printed; run prints nothing more.
type reportedError struct{ err error }

func (e reportedError) Error() string { return e.err.Error() }
func (e reportedError) Unwrap() error { return e.err }

func isReported(err error) bool {
	var r reportedError
	return errors.As(err, &r)
}

// exitCode maps an error to the process exit code. This is the one place that does so.
func exitCode(err error) int {
	var u usageError
	var f failedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &u):
		return exitUsage
	case errors.Is(err, registry.ErrUnavailable), errors.Is(err, registry.ErrConflict), errors.Is(err, online.ErrUnavailable):
		return exitUnavailable
	case errors.As(err, &f):
		return exitFailed
	case errors.Is(err, definitions.ErrInvalid), errors.Is(err, config.ErrNoRepo), errors.Is(err, registry.ErrNotFound):
		return exitInvalid
	}
	return exitFailed
}
