package registrytest

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/registry"
)

// testHeartbeatsAndReaping: a run that keeps beating survives the reaper; one that stopped
// beating (its process died) is FAILED with the reason "abandoned", materialization and
// training alike; finished runs and other projects are untouched; a reaped run can no longer
// beat or finish.
func testHeartbeatsAndReaping(t *testing.T, s registry.Store) {
	c := ctx(t)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const lease = 300 * time.Millisecond
	alive, err := s.StartRun(c, "shop", "v", t0, t0.Add(time.Hour))
	require.NoError(t, err)
	dead, err := s.StartRun(c, "shop", "v", t0, t0.Add(time.Hour))
	require.NoError(t, err)
	done, err := s.StartRun(c, "shop", "v", t0, t0.Add(time.Hour))
	require.NoError(t, err)
	_, err = s.FinishRun(c, done.ID, registry.RunResult{Status: registry.RunSucceeded})
	require.NoError(t, err)
	other, err := s.StartRun(c, "other", "v", t0, t0.Add(time.Hour))
	require.NoError(t, err)
	trAlive, err := s.CreateTrainingRun(c, registry.TrainingRun{Project: "shop", Job: "j"})
	require.NoError(t, err)
	trDead, err := s.CreateTrainingRun(c, registry.TrainingRun{Project: "shop", Job: "j"})
	require.NoError(t, err)

	// Nothing is older than the lease yet.
	reaped, err := s.ReapAbandoned(c, "shop", time.Hour)
	require.NoError(t, err)
	require.Empty(t, reaped.Materialization)
	require.Empty(t, reaped.Training)
	reaped, err = s.ReapAbandoned(c, "shop", 0)
	require.NoError(t, err)
	require.Empty(t, reaped.Materialization, "a zero lease reaps nothing")

	// Beat the live ones past one lease.
	deadline := time.Now().Add(2 * lease)
	for time.Now().Before(deadline) {
		require.NoError(t, s.HeartbeatRun(c, alive.ID))
		require.NoError(t, s.HeartbeatTrainingRun(c, trAlive.ID))
		time.Sleep(lease / 6)
	}
	reaped, err = s.ReapAbandoned(c, "shop", lease)
	require.NoError(t, err)
	require.Equal(t, []registry.RunID{dead.ID}, reaped.Materialization)
	require.Equal(t, []registry.TrainingRunID{trDead.ID}, reaped.Training)

	got, err := s.GetRun(c, dead.ID)
	require.NoError(t, err)
	require.Equal(t, registry.RunFailed, got.Status)
	require.Contains(t, got.Error, registry.AbandonedReason)
	require.False(t, got.FinishedAt.IsZero())
	got, err = s.GetRun(c, alive.ID)
	require.NoError(t, err)
	require.Equal(t, registry.RunRunning, got.Status)
	got, err = s.GetRun(c, done.ID)
	require.NoError(t, err)
	require.Equal(t, registry.RunSucceeded, got.Status)
	got, err = s.GetRun(c, other.ID)
	require.NoError(t, err)
	require.Equal(t, registry.RunRunning, got.Status, "another project's run is not reaped")
	tr, err := s.GetTrainingRun(c, trDead.ID)
	require.NoError(t, err)
	require.Equal(t, registry.TrainingFailed, tr.Status)
	require.Equal(t, registry.AbandonedReason, tr.Error)
	tr, err = s.GetTrainingRun(c, trAlive.ID)
	require.NoError(t, err)
	require.Equal(t, registry.TrainingRunning, tr.Status)
	require.Empty(t, tr.Error)

	// A reaped run neither beats nor finishes; unknown runs are not found.
	require.ErrorIs(t, s.HeartbeatRun(c, dead.ID), registry.ErrConflict)
	require.ErrorIs(t, s.HeartbeatTrainingRun(c, trDead.ID), registry.ErrConflict)
	_, err = s.FinishRun(c, dead.ID, registry.RunResult{Status: registry.RunSucceeded})
	require.ErrorIs(t, err, registry.ErrConflict)
	require.ErrorIs(t, s.HeartbeatRun(c, 999999), registry.ErrNotFound)
	require.ErrorIs(t, s.HeartbeatTrainingRun(c, "nope"), registry.ErrNotFound)

	// Two reapers at once reap each run once.
	time.Sleep(lease + 50*time.Millisecond)
	var wg sync.WaitGroup
	results := make([]registry.Reaped, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.ReapAbandoned(c, "shop", lease)
			require.NoError(t, err)
			results[i] = r
		}()
	}
	wg.Wait()
	var ms []registry.RunID
	var ts []registry.TrainingRunID
	for _, r := range results {
		ms = append(ms, r.Materialization...)
		ts = append(ts, r.Training...)
	}
	require.Equal(t, []registry.RunID{alive.ID}, ms)
	require.Equal(t, []registry.TrainingRunID{trAlive.ID}, ts)
}

func testAuditTrail(t *testing.T, s registry.Store) {
	c := ctx(t)
	e1, err := s.RecordAudit(c, registry.AuditEvent{Project: "shop", Actor: "ann", Action: registry.AuditResetWatermark, Target: "v",
		Detail: json.RawMessage(`{"from":"2100-01-01T00:00:00Z","to":"2026-11-01T00:00:00Z"}`)})
	require.NoError(t, err)
	require.NotZero(t, e1.ID)
	require.False(t, e1.At.IsZero())
	_, err = s.RecordAudit(c, registry.AuditEvent{Project: "shop", Actor: "bob", Action: registry.AuditOnlineDelete, Target: "w"})
	require.NoError(t, err)
	_, err = s.RecordAudit(c, registry.AuditEvent{Project: "other", Action: registry.AuditGC, Target: "warehouse"})
	require.NoError(t, err)

	all, err := s.ListAudit(c, registry.AuditFilter{Project: "shop"})
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, registry.AuditOnlineDelete, all[0].Action, "newest first")
	require.Equal(t, e1.ID, all[1].ID)
	require.Equal(t, "ann", all[1].Actor)
	require.JSONEq(t, `{"from":"2100-01-01T00:00:00Z","to":"2026-11-01T00:00:00Z"}`, string(all[1].Detail))
	byAction, err := s.ListAudit(c, registry.AuditFilter{Project: "shop", Action: registry.AuditResetWatermark})
	require.NoError(t, err)
	require.Len(t, byAction, 1)
	byTarget, err := s.ListAudit(c, registry.AuditFilter{Project: "shop", Target: "w", Limit: 5})
	require.NoError(t, err)
	require.Len(t, byTarget, 1)

	_, err = s.RecordAudit(c, registry.AuditEvent{Project: "shop"})
	require.ErrorIs(t, err, registry.ErrInvalid)
	_, err = s.RecordAudit(c, registry.AuditEvent{Project: "shop", Action: registry.AuditGC, Detail: json.RawMessage(`{`)})
	require.ErrorIs(t, err, registry.ErrInvalid)
}
