package registrytest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
)

// Unavailable returns a store that works and a function that stops its server for good (the
// database process exits), after which the store cannot be reached. The suite closes the store.
type Unavailable func(t *testing.T) (s registry.Store, stop func())

// failureCase is one registry call, for the failure tests.
type failureCase struct {
	name string
	call func(ctx context.Context) error
}

// calls is a read, a single-row read, a list, an insert and a transaction of each area of the
// store; the tests expect each to fail the same way.
func calls(s registry.Store) []failureCase {
	return []failureCase{
		{"CurrentRevision", func(ctx context.Context) error { _, err := s.CurrentRevision(ctx, project); return err }},
		{"GetObject", func(ctx context.Context) error {
			_, err := s.GetObject(ctx, project, definitions.KindEntity, "user", 0)
			return err
		}},
		{"ListObjects", func(ctx context.Context) error {
			_, err := s.ListObjects(ctx, project, definitions.KindEntity)
			return err
		}},
		{"Apply", func(ctx context.Context) error {
			_, err := s.Apply(ctx, registry.ApplyRequest{Project: project, BaseRevision: 1, Author: "alice",
				Changes: []registry.Change{put(definitions.KindEntity, "merchant", "h2")}})
			return err
		}},
		{"StartRun", func(ctx context.Context) error { _, err := s.StartRun(ctx, project, "v", t0, t1); return err }},
		{"AdvanceWatermark", func(ctx context.Context) error {
			_, err := s.AdvanceWatermark(ctx, registry.WatermarkUpdate{Project: project, View: "v", To: t1})
			return err
		}},
		{"CreateTrainingRun", func(ctx context.Context) error {
			_, err := s.CreateTrainingRun(ctx, registry.TrainingRun{Project: project, Job: "j"})
			return err
		}},
		{"ListDatasets", func(ctx context.Context) error { _, err := s.ListDatasets(ctx, project, ""); return err }},
		{"ReapAbandoned", func(ctx context.Context) error { _, err := s.ReapAbandoned(ctx, project, time.Hour); return err }},
	}
}

// seed applies one entity so that the store holds revision 1.
func seed(t *testing.T, s registry.Store) {
	t.Helper()
	apply(t, s, 0, put(definitions.KindEntity, "user", "h1"))
}

// testCancelled: calls under a cancelled context fail with an error matching context.Canceled
// (not ErrUnavailable: the caller left, the store is fine) and write nothing.
func testCancelled(t *testing.T, s registry.Store) {
	seed(t, s)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range calls(s) {
		err := tc.call(c)
		require.ErrorIs(t, err, context.Canceled, tc.name)
		require.NotErrorIs(t, err, registry.ErrUnavailable, tc.name)
	}
	rev, err := s.CurrentRevision(ctx(t), project)
	require.NoError(t, err)
	require.Equal(t, int64(1), rev, "the cancelled apply made no revision")
	runs, err := s.ListRuns(ctx(t), registry.RunFilter{Project: project})
	require.NoError(t, err)
	require.Empty(t, runs, "the cancelled StartRun recorded nothing")
}

// testClosed: calls on a closed store fail with ErrClosed; closing again is not an error.
func testClosed(t *testing.T, s registry.Store) {
	seed(t, s)
	require.NoError(t, s.Close())
	for _, tc := range calls(s) {
		err := tc.call(ctx(t))
		require.ErrorIs(t, err, registry.ErrClosed, tc.name)
		require.NotErrorIs(t, err, registry.ErrUnavailable, tc.name)
	}
	require.NoError(t, s.Close(), "a second Close")
}

// testUnavailable: once the store's server is gone every call fails with ErrUnavailable.
func testUnavailable(t *testing.T, s registry.Store, stop func()) {
	seed(t, s)
	stop()
	for _, tc := range calls(s) {
		err := tc.call(ctx(t))
		require.ErrorIs(t, err, registry.ErrUnavailable, tc.name)
		require.NotErrorIs(t, err, registry.ErrClosed, tc.name)
	}
}
