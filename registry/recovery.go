package registry

import (
	"context"
	"encoding/json"
	"time"
)

// RecoveryStore keeps long-running work honest and manual corrections visible: running jobs
// heartbeat, runs whose process died are reaped, and every correction is audited.
type RecoveryStore interface {
	// HeartbeatRun records that a RUNNING materialization run is alive. ErrRunNotFound for an
	// unknown id; ErrConflict when the run is no longer RUNNING (it finished, or was reaped).
	HeartbeatRun(ctx context.Context, id RunID) error
	// HeartbeatTrainingRun is HeartbeatRun for a training run.
	HeartbeatTrainingRun(ctx context.Context, id TrainingRunID) error
	// ReapAbandoned marks every RUNNING run of the project (materialization and training)
	// whose last heartbeat — or start, when it never beat — is older than now minus lease as
	// FAILED with the error AbandonedReason (and a note of when it was last seen), and
	// returns the ids it reaped. A lease <= 0 reaps nothing.
	ReapAbandoned(ctx context.Context, project string, lease time.Duration) (Reaped, error)

	// RecordAudit appends an event to the project's audit trail and returns it with ID and
	// At set. Events are never changed or removed.
	RecordAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)
	// ListAudit returns audit events matching the filter, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
}

// AbandonedReason is the error of a run reaped by ReapAbandoned.
const AbandonedReason = "abandoned"

// Reaped lists the runs one ReapAbandoned call marked FAILED.
type Reaped struct {
	Materialization []RunID
	Training        []TrainingRunID
}

// AuditAction names a manual correction.
type AuditAction string

// Audited actions.
const (
	AuditOnlineSync     AuditAction = "online_sync"     // online store loaded from the offline table
	AuditReplaceOnline  AuditAction = "replace_online"  // an interval's entities made to match the offline table
	AuditResetWatermark AuditAction = "reset_watermark" // a watermark moved back
	AuditOnlineDelete   AuditAction = "online_delete"   // entities removed from the online store
	AuditGC             AuditAction = "gc"              // snapshots and files reclaimed
)

// AuditEvent is one entry of a project's audit trail.
type AuditEvent struct {
	ID      int64
	Project string
	At      time.Time
	Actor   string
	Action  AuditAction
	// Target names what was changed (a view, "warehouse").
	Target string
	// Detail is JSON describing the change (interval, from and to, keys, counts).
	Detail json.RawMessage
}

// AuditFilter selects audit events. Empty fields match everything; Limit <= 0 means all.
type AuditFilter struct {
	Project string
	Action  AuditAction
	Target  string
	Limit   int
}

// DefaultLease is how long a running job may go without a heartbeat before it is reaped as
// abandoned. Jobs beat every HeartbeatInterval(lease), so a lease covers several beats.
const DefaultLease = 2 * time.Minute

// HeartbeatInterval is how often a job beats under lease: a quarter of it, so a lease
// covers four beats and one slow registry write does not get a live job reaped.
func HeartbeatInterval(lease time.Duration) time.Duration {
	if lease <= 0 {
		lease = DefaultLease
	}
	return max(lease/4, time.Millisecond)
}
