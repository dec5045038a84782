package registry

import (
	"fmt"

	"github.com/quiverfs/quiver/internal/errkind"
)

// Sentinel errors. Backends translate driver errors into these; callers test with errors.Is.
var (
	// ErrNotFound: the project, object, version, run, watermark or dataset does not exist (or,
	// for the latest version of an object, it was removed).
	ErrNotFound = errkind.New(errkind.NotFound, "not found")
	// ErrConflict: the write lost a race or contradicts the stored state (an apply planned
	// against an old revision, a watermark moved backwards, a write-once value written twice).
	ErrConflict = errkind.New(errkind.Conflict, "conflict")
	// ErrInvalid: the request itself is malformed (empty name, unknown status, ...).
	ErrInvalid = errkind.New(errkind.Invalid, "invalid argument")
	// ErrUnavailable: the store cannot be reached or opened. The CLI maps it to exit code 3.
	ErrUnavailable = errkind.New(errkind.Unavailable, "registry unavailable")
	// ErrClosed: the store was used after Close.
	ErrClosed = errkind.New(errkind.Unavailable, "registry closed")
)

// More specific errors, layered on the sentinels.
var (
	ErrObjectNotFound    = fmt.Errorf("object %w", ErrNotFound)
	ErrRunNotFound       = fmt.Errorf("materialization run %w", ErrNotFound)
	ErrWatermarkNotFound = fmt.Errorf("watermark %w", ErrNotFound)
	ErrDatasetNotFound   = fmt.Errorf("dataset %w", ErrNotFound)
	// ErrDatasetBuildNotFound: the dataset build is not in flight (finished or abandoned).
	ErrDatasetBuildNotFound = fmt.Errorf("dataset build %w", ErrNotFound)
	ErrTrainingRunNotFound  = fmt.Errorf("training run %w", ErrNotFound)
	ErrModelNotFound        = fmt.Errorf("model %w", ErrNotFound)
	ErrAliasNotFound        = fmt.Errorf("model alias %w", ErrNotFound)
	// ErrWatermarkBackwards: an update would move a watermark to an earlier time without Force.
	ErrWatermarkBackwards = fmt.Errorf("watermark would move backwards: %w", ErrConflict)
	// ErrGenerationChanged: a watermark update for a definition generation that an apply
	// ended meanwhile (GenerationStore).
	ErrGenerationChanged = fmt.Errorf("feature view definition generation changed during the run; materialize again: %w", ErrConflict)
)

// RevisionConflictError is returned by Apply when the project's registry revision is no longer
// the one the plan was made against. It matches ErrConflict.
type RevisionConflictError struct {
	Project string
	Planned int64 // the request's BaseRevision
	Current int64 // the project's revision when the apply ran
}

func (e *RevisionConflictError) Error() string {
	return fmt.Sprintf("registry changed since plan: planned against revision %d, now %d; run plan again", e.Planned, e.Current)
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *RevisionConflictError) Unwrap() error { return ErrConflict }
