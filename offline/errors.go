package offline

import (
	"fmt"

	"github.com/quiverfs/quiver/internal/errkind"
)

// Sentinel errors. Callers test with errors.Is; messages wrapping them name the source,
// table and column involved.
var (
	// ErrInvalidSource is returned for a source definition or configuration that cannot be read.
	ErrInvalidSource = errkind.New(errkind.Invalid, "invalid source")
	// ErrColumnNotFound is returned when a source lacks a column the view needs.
	ErrColumnNotFound = errkind.New(errkind.Invalid, "column not found")
	// ErrTypeMismatch is returned when a source column's type cannot be read as the declared type.
	ErrTypeMismatch = errkind.New(errkind.Invalid, "type mismatch")
	// ErrSchemaConflict is returned when a view's definition is incompatible with the offline
	// table already stored for it (a column changed type).
	ErrSchemaConflict = errkind.New(errkind.Precondition, "schema conflict")
	// ErrTableNotFound is returned when the offline store has no table for a view, or a
	// source's table does not exist.
	ErrTableNotFound = errkind.New(errkind.NotFound, "table not found")
	// ErrSnapshotNotFound is returned when a requested snapshot does not exist.
	ErrSnapshotNotFound = errkind.New(errkind.NotFound, "snapshot not found")
	// ErrOutsideInterval is returned when a row given to a write lies outside the written interval.
	ErrOutsideInterval = errkind.New(errkind.Invalid, "row outside interval")
	// ErrInvalidRange is returned for a time range whose end is not after its start.
	ErrInvalidRange = errkind.New(errkind.Invalid, "invalid time range")
)

// ColumnTypeError says that a column's actual type cannot be read as the type declared for it.
// It matches ErrTypeMismatch with errors.Is.
type ColumnTypeError struct {
	Source   string // the source or table read, as a person would name it
	Column   string // the column's name in the source
	Actual   string // the source column's type
	Declared string // the declared type
}

func (e *ColumnTypeError) Error() string {
	return fmt.Sprintf("%s: column %q has type %s, which cannot be read as declared type %s",
		e.Source, e.Column, e.Actual, e.Declared)
}

// Unwrap makes errors.Is(err, ErrTypeMismatch) true.
func (e *ColumnTypeError) Unwrap() error { return ErrTypeMismatch }
