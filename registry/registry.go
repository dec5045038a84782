// Package registry is Quiver's metadata store: every applied version of every definition
// object, the registry revision log, materialization runs and watermarks, dataset snapshots,
// training runs (params, metrics, tags) and model versions with their aliases.
//
// Everything is scoped by project name. The interfaces are small so that callers ask for the
// narrowest one (materialize takes a MaterializationStore, plan a DefinitionReader); Store
// composes them. Backends live in registry/postgres and registry/sqlite, are opened by URL with
// registry/open, and are checked by the conformance suite in registry/registrytest.
//
// All times are UTC with microsecond precision. Methods return errors that match the
// sentinels in errors.go (ErrNotFound, ErrConflict, ErrInvalid, ErrUnavailable, ErrClosed),
// and context.Canceled when ctx is cancelled.
package registry

import (
	"context"
	"encoding/json"
	"time"

	"github.com/quiverfs/quiver/definitions"
)

// Store is a complete registry backend. It is safe for concurrent use by several goroutines
// and several processes.
type Store interface {
	DefinitionReader
	DefinitionWriter
	GenerationStore
	MaterializationStore
	DatasetStore
	DatasetBuilds
	TrainingStore
	ModelStore
	RecoveryStore
	BrowseStore
	NamespaceStore
	BackfillStore
	// Close releases the store's connections. The store must not be used afterwards.
	Close() error
}

// DefinitionReader reads applied definitions.
type DefinitionReader interface {
	// CurrentRevision is the project's registry revision: the number of applies that changed
	// something. A project never applied to is at revision 0 (not an error).
	CurrentRevision(ctx context.Context, project string) (int64, error)
	// ListObjects returns the latest version of every live (not removed) object of kind, by
	// name. An empty kind lists every kind, ordered by kind then name. An unknown project
	// gives an empty list.
	ListObjects(ctx context.Context, project string, kind definitions.Kind) ([]ObjectVersion, error)
	// GetObject returns one version of an object. Version 0 means the latest, and gives
	// ErrNotFound when the object was removed; an explicit version is returned even when it is
	// a removal (Deleted set) or older than one.
	GetObject(ctx context.Context, project string, kind definitions.Kind, name string, version int) (ObjectVersion, error)
	// ObjectHistory returns every version of one object, oldest first, removals included.
	// ErrNotFound when the object was never applied.
	ObjectHistory(ctx context.Context, project string, kind definitions.Kind, name string) ([]ObjectVersion, error)
	// RevisionLog returns the project's revisions, newest first, with the object versions each
	// wrote. limit <= 0 returns them all.
	RevisionLog(ctx context.Context, project string, limit int) ([]RevisionInfo, error)
	// Generations returns the current definition generation of every feature view of the
	// project that has moved past generation 1, by name (GenerationStore). A view not in the
	// map is at generation 1; use Generation to read it.
	Generations(ctx context.Context, project string) (map[string]int, error)
	// ReadApplied reads what a project has applied — its revision, the latest version of
	// every live object (as ListObjects with no kind) and its views' generations — in one
	// consistent read: an apply is wholly in it or not at all, so the objects are those of
	// the revision and the generations theirs. An unknown project gives revision 0 and no
	// objects.
	ReadApplied(ctx context.Context, project string) (AppliedState, error)
}

// AppliedState is a project's applied definitions as the registry holds them at one
// revision (DefinitionReader.ReadApplied); package catalog decodes it.
type AppliedState struct {
	Project  string
	Revision int64
	// Objects are the latest version of every live object, by kind (in definitions.Kinds
	// order) then name.
	Objects []ObjectVersion
	// Generations are the views' definition generations past the first, by name
	// (Generation reads them).
	Generations map[string]int
}

// DefinitionWriter applies definition changes.
type DefinitionWriter interface {
	// Apply writes a new version of every changed object in one transaction, as a new project
	// revision. If the project's revision is not req.BaseRevision it returns a
	// *RevisionConflictError (matching ErrConflict) and writes nothing; of two concurrent applies
	// against the same revision exactly one succeeds. A change whose hash equals the latest
	// live version's, or a removal of an object that is absent or already removed, writes
	// nothing; when nothing changes at all no revision is made.
	Apply(ctx context.Context, req ApplyRequest) (ApplyResult, error)
}

// MaterializationStore records materialization runs and per-view watermarks.
type MaterializationStore interface {
	// StartRun records a new RUNNING run over [start, end) of a view and returns it with its
	// ID and StartedAt set.
	StartRun(ctx context.Context, project, view string, start, end time.Time) (MaterializationRun, error)
	// FinishRun ends a RUNNING run as SUCCEEDED or FAILED. ErrRunNotFound for an unknown id;
	// ErrConflict when the run has already finished.
	FinishRun(ctx context.Context, id RunID, result RunResult) (MaterializationRun, error)
	// GetRun returns one run; ErrRunNotFound when unknown.
	GetRun(ctx context.Context, id RunID) (MaterializationRun, error)
	// ListRuns returns runs matching the filter, newest first.
	ListRuns(ctx context.Context, filter RunFilter) ([]MaterializationRun, error)

	// Watermark returns a view's watermark; ErrWatermarkNotFound when it has none yet.
	Watermark(ctx context.Context, project, view string) (Watermark, error)
	// ListWatermarks returns every watermark of a project, by view.
	ListWatermarks(ctx context.Context, project string) ([]Watermark, error)
	// AdvanceWatermark moves a view's watermark to u.To. Moving it to an earlier time than the
	// stored one fails with ErrWatermarkBackwards (matching ErrConflict) unless u.Force; moving
	// it to the same time is a no-op. The compare and the write are atomic.
	AdvanceWatermark(ctx context.Context, u WatermarkUpdate) (Watermark, error)
}

// DatasetStore registers training dataset snapshots.
type DatasetStore interface {
	// CreateDataset registers a snapshot as the next version of d.Name (1, 2, ...) and returns
	// it with Version and CreatedAt set.
	CreateDataset(ctx context.Context, d Dataset) (Dataset, error)
	// GetDataset returns one version; version 0 means the latest that is not removed.
	// ErrDatasetNotFound when there is none; a removed version is returned with Deleted set.
	GetDataset(ctx context.Context, project, name string, version int) (Dataset, error)
	// ListDatasets returns the versions that are not removed, by name then version. An empty
	// name lists every dataset of the project.
	ListDatasets(ctx context.Context, project, name string) ([]Dataset, error)
	// FindDatasetByInputs returns the newest live version of dataset name whose InputsHash is
	// inputsHash, so that a build of that name with the same inputs can be reused (versions of
	// other names built from the same inputs are not looked at); ErrDatasetNotFound if none.
	FindDatasetByInputs(ctx context.Context, project, name, inputsHash string) (Dataset, error)
	// DeleteDataset marks one version removed (its row is kept). ErrDatasetNotFound when
	// unknown or already removed.
	DeleteDataset(ctx context.Context, project, name string, version int) error
}

// DatasetBuilds records dataset builds in flight, so that a version number is given only to a
// build that finished, and a crashed build's staging files can be found and removed.
type DatasetBuilds interface {
	// BeginDatasetBuild records a build of b.Project/b.Name and returns it with ID and
	// StartedAt set. IDs are unique in the registry and never reused.
	BeginDatasetBuild(ctx context.Context, b DatasetBuild) (DatasetBuild, error)
	// FinishDatasetBuild ends build id and registers d as the next version of d.Name, in one
	// transaction: the build's row is deleted and the dataset's inserted with the next version
	// number (1 + the greatest ever given to that name, removed versions included). It returns
	// ErrDatasetBuildNotFound (matching ErrNotFound) and registers nothing when the build is
	// not in flight (it was abandoned, e.g. reaped as stale).
	FinishDatasetBuild(ctx context.Context, id DatasetBuildID, d Dataset) (Dataset, error)
	// AbandonDatasetBuild deletes a build's row; abandoning an unknown build is not an error.
	AbandonDatasetBuild(ctx context.Context, id DatasetBuildID) error
	// ListDatasetBuilds returns a project's builds in flight, oldest first.
	ListDatasetBuilds(ctx context.Context, project string) ([]DatasetBuild, error)
}

// DatasetBuildID identifies a dataset build in flight.
type DatasetBuildID int64

// DatasetBuild is a dataset build in flight: recorded before it writes a file, removed when
// it registers its version or is abandoned.
type DatasetBuild struct {
	ID        DatasetBuildID
	Project   string
	Name      string
	Host      string // the host the building process runs on
	PID       int    // the building process
	StartedAt time.Time
}

// GitDirty is the GitCommit recorded when the feature repo had uncommitted changes.
const GitDirty = "dirty"

// ObjectVersion is one stored version of a definition object. Versions are never changed
// once written; a removal is a version of its own with Deleted set and no spec.
type ObjectVersion struct {
	Project string
	Kind    definitions.Kind
	Name    string
	Version int    // 1, 2, 3, ... per (project, kind, name)
	Hash    string // the caller's canonical content hash; empty for a removal
	// Spec is the object's canonical JSON, stored byte for byte as the caller produced it.
	Spec      json.RawMessage
	Deleted   bool
	Revision  int64 // the project revision this version was applied in
	CreatedAt time.Time
	CreatedBy string
	GitCommit string // the feature repo's commit, or GitDirty
}

// ApplyRequest is one apply: a set of changes planned against BaseRevision.
type ApplyRequest struct {
	Project      string
	BaseRevision int64 // the revision CurrentRevision returned when the plan was made
	Author       string
	GitCommit    string // the feature repo's commit, or GitDirty
	Changes      []Change
	// NewGenerations are feature views that start a new definition generation with this
	// apply because of a breaking change (GenerationStore). A view that did not exist before
	// the apply, or that the request removes, is ignored.
	NewGenerations []string
	// KeepOfflineData records the apply's drops with Offline false: the offline tables of
	// the generations that end are kept.
	KeepOfflineData bool
}

// Change puts or removes one object. Each (Kind, Name) may appear once per request.
type Change struct {
	Kind   definitions.Kind
	Name   string
	Hash   string          // required unless Delete
	Spec   json.RawMessage // required (valid JSON) unless Delete
	Delete bool
}

// ApplyResult is what an apply wrote.
type ApplyResult struct {
	// Revision is the project's revision after the apply; BaseRevision when nothing changed.
	Revision int64
	// Versions are the object versions written, in request order; empty when nothing changed.
	Versions []ObjectVersion
	// Drops are the pending drops the apply recorded, one per feature view whose generation
	// ended (removed or changed incompatibly), by view.
	Drops []PendingDrop
}

// RevisionInfo is one entry of a project's revision log.
type RevisionInfo struct {
	Project   string
	Revision  int64
	AppliedAt time.Time
	AppliedBy string
	GitCommit string
	Objects   []ObjectRef // the versions written, by kind then name
}

// ObjectRef names one object version.
type ObjectRef struct {
	Kind    definitions.Kind
	Name    string
	Version int
	Deleted bool
}

// RunID identifies a materialization run.
type RunID int64

// RunStatus is the state of a materialization run.
type RunStatus string

// Materialization run states.
const (
	RunRunning   RunStatus = "RUNNING"
	RunSucceeded RunStatus = "SUCCEEDED"
	RunFailed    RunStatus = "FAILED"
)

// MaterializationRun is one run over [Start, End) of a feature view.
type MaterializationRun struct {
	ID          RunID
	Project     string
	View        string
	Start, End  time.Time
	Status      RunStatus
	RowsRead    int64
	RowsWritten int64
	StartedAt   time.Time
	FinishedAt  time.Time // zero while running
	Error       string    // set when FAILED
	// OfflineSnapshotID is the offline store snapshot the run committed; 0 when none.
	OfflineSnapshotID int64
}

// RunResult is how a run ended.
type RunResult struct {
	Status            RunStatus // RunSucceeded or RunFailed
	RowsRead          int64
	RowsWritten       int64
	Error             string
	OfflineSnapshotID int64
}

// RunFilter selects materialization runs. Empty fields match everything; Limit <= 0 means all.
type RunFilter struct {
	Project string
	View    string
	Status  RunStatus
	Limit   int
}

// Watermark is how far a view has been materialized: everything before Time is done.
type Watermark struct {
	Project   string
	View      string
	Time      time.Time
	RunID     RunID // the run that last moved it; 0 when set by hand
	UpdatedAt time.Time
}

// WatermarkUpdate moves a watermark.
type WatermarkUpdate struct {
	Project string
	View    string
	To      time.Time
	RunID   RunID
	// Force allows moving the watermark backwards (a deliberate re-materialization).
	Force bool
	// Generation, when > 0, is the definition generation the run wrote: the update fails
	// with ErrGenerationChanged unless it is still the view's current one (an apply ended it
	// during the run), atomically with the write.
	Generation int
}

// Dataset is one registered version of a training dataset snapshot.
type Dataset struct {
	Project   string
	Name      string
	Version   int    // 1, 2, 3, ... per (project, name); set by CreateDataset
	ContentID string // the hash of the snapshot's manifest
	// InputsHash identifies the inputs the snapshot was built from (service versions, entity
	// input, offline snapshots), so an identical build can be found and reused.
	InputsHash string
	Location   string // where the snapshot's files are, relative to the warehouse, e.g. projects/shop/datasets/sha256-HEX
	Rows       int64
	Manifest   json.RawMessage // the snapshot's manifest.json, stored as given
	CreatedAt  time.Time
	CreatedBy  string
	Deleted    bool
}
