// Package registrytest is the conformance suite every registry backend runs:
//
//	func TestConformance(t *testing.T) {
//		registrytest.Run(t, func(t *testing.T) registry.Store { return openFresh(t) }, nil)
//	}
//
// open must return a new, empty store for each call and close it when t cleans up (the suite
// may have closed it already). unavailable is nil for a backend with no server to lose (SQLite
// is a file).
package registrytest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
)

// Run runs every conformance test against stores made by open, and the unavailable-store test
// against unavailable's when it is not nil.
func Run(t *testing.T, open func(t *testing.T) registry.Store, unavailable Unavailable) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s registry.Store)
	}{
		{"EmptyProject", testEmptyProject},
		{"ApplyCreatesVersions", testApplyCreatesVersions},
		{"SpecStoredByteForByte", testSpecStoredByteForByte},
		{"ApplyUnchangedIsNoop", testApplyUnchangedIsNoop},
		{"ApplyChangeKeepsHistory", testApplyChangeKeepsHistory},
		{"RemovalIsTombstone", testRemovalIsTombstone},
		{"StaleBaseRevisionConflicts", testStaleBaseRevisionConflicts},
		{"InvalidApply", testInvalidApply},
		{"ProjectsAreIsolated", testProjectsAreIsolated},
		{"ListAllKinds", testListAllKinds},
		{"RevisionLog", testRevisionLog},
		{"ConcurrentAppliesOneWinner", testConcurrentApplies},
		{"Generations", testGenerations},
		{"ConcurrentBreakingApplies", testConcurrentBreakingApplies},
		{"MaterializationRuns", testMaterializationRuns},
		{"MaterializationRunErrors", testMaterializationRunErrors},
		{"Watermarks", testWatermarks},
		{"ConcurrentWatermarks", testConcurrentWatermarks},
		{"Datasets", testDatasets},
		{"ConcurrentDatasetVersions", testConcurrentDatasetVersions},
		{"DatasetBuilds", testDatasetBuilds},
		{"ConcurrentDatasetBuilds", testConcurrentDatasetBuilds},
		{"ModelVersionsTrainedOn", testModelVersionsTrainedOn},
		{"TrainingRuns", testTrainingRuns},
		{"RunParamsWriteOnce", testRunParamsWriteOnce},
		{"RunTags", testRunTags},
		{"RunMetrics", testRunMetrics},
		{"ModelVersions", testModelVersions},
		{"ModelAliases", testModelAliases},
		{"ConcurrentAliasMoves", testConcurrentAliasMoves},
		{"HeartbeatsAndReaping", testHeartbeatsAndReaping},
		{"AuditTrail", testAuditTrail},
		{"PageTrainingRuns", testPageTrainingRuns},
		{"MetricSeries", testMetricSeries},
		{"ModelAliasEvents", testModelAliasEvents},
		{"Namespaces", testNamespaces},
		{"ConcurrentNamespaceClaims", testConcurrentNamespaceClaims},
		{"ReadApplied", testReadApplied},
		{"Backfills", testBackfills},
		{"ConcurrentBackfillStarts", testConcurrentBackfillStarts},
		{"CancelledContext", testCancelled},
		{"ClosedStore", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
	if unavailable != nil {
		t.Run("UnavailableStore", func(t *testing.T) {
			s, stop := unavailable(t)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			testUnavailable(t, s, stop)
		})
	}
}

const project = "shop"

var (
	t0 = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	t1 = t0.Add(time.Hour)
	t2 = t0.Add(2 * time.Hour)
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func put(kind definitions.Kind, name, hash string) registry.Change {
	return registry.Change{Kind: kind, Name: name, Hash: hash,
		Spec: json.RawMessage(fmt.Sprintf(`{"name":%q,"hash":%q}`, name, hash))}
}

func del(kind definitions.Kind, name string) registry.Change {
	return registry.Change{Kind: kind, Name: name, Delete: true}
}

func apply(t *testing.T, s registry.Store, base int64, changes ...registry.Change) registry.ApplyResult {
	t.Helper()
	res, err := s.Apply(ctx(t), registry.ApplyRequest{Project: project, BaseRevision: base,
		Author: "alice", GitCommit: "0123abcd", Changes: changes})
	require.NoError(t, err)
	return res
}

func names(objs []registry.ObjectVersion) []string {
	var out []string
	for _, o := range objs {
		out = append(out, fmt.Sprintf("%s/%s@v%d", o.Kind, o.Name, o.Version))
	}
	return out
}

func testEmptyProject(t *testing.T, s registry.Store) {
	c := ctx(t)
	rev, err := s.CurrentRevision(c, project)
	require.NoError(t, err)
	require.Zero(t, rev)
	objs, err := s.ListObjects(c, project, definitions.KindFeatureView)
	require.NoError(t, err)
	require.Empty(t, objs)
	_, err = s.GetObject(c, project, definitions.KindFeatureView, "nope", 0)
	require.ErrorIs(t, err, registry.ErrNotFound)
	_, err = s.GetObject(c, project, definitions.KindFeatureView, "nope", 1)
	require.ErrorIs(t, err, registry.ErrNotFound)
	_, err = s.ObjectHistory(c, project, definitions.KindFeatureView, "nope")
	require.ErrorIs(t, err, registry.ErrNotFound)
	log, err := s.RevisionLog(c, project, 0)
	require.NoError(t, err)
	require.Empty(t, log)
}

func testApplyCreatesVersions(t *testing.T, s registry.Store) {
	before := time.Now().Add(-time.Second)
	res := apply(t, s, 0, put(definitions.KindEntity, "user", "h1"), put(definitions.KindFeatureView, "user_stats", "h2"))
	require.Equal(t, int64(1), res.Revision)
	require.Equal(t, []string{"entity/user@v1", "feature_view/user_stats@v1"}, names(res.Versions))

	c := ctx(t)
	rev, err := s.CurrentRevision(c, project)
	require.NoError(t, err)
	require.Equal(t, int64(1), rev)

	o, err := s.GetObject(c, project, definitions.KindFeatureView, "user_stats", 0)
	require.NoError(t, err)
	require.Equal(t, project, o.Project)
	require.Equal(t, definitions.KindFeatureView, o.Kind)
	require.Equal(t, "user_stats", o.Name)
	require.Equal(t, 1, o.Version)
	require.Equal(t, "h2", o.Hash)
	require.JSONEq(t, `{"name":"user_stats","hash":"h2"}`, string(o.Spec))
	require.False(t, o.Deleted)
	require.Equal(t, int64(1), o.Revision)
	require.Equal(t, "alice", o.CreatedBy)
	require.Equal(t, "0123abcd", o.GitCommit)
	require.Equal(t, time.UTC, o.CreatedAt.Location())
	require.WithinRange(t, o.CreatedAt, before, time.Now().Add(time.Second))
	require.Equal(t, res.Versions[1].CreatedAt, o.CreatedAt, "returned and stored versions agree")

	same, err := s.GetObject(c, project, definitions.KindFeatureView, "user_stats", 1)
	require.NoError(t, err)
	require.Equal(t, o, same)

	objs, err := s.ListObjects(c, project, definitions.KindEntity)
	require.NoError(t, err)
	require.Equal(t, []string{"entity/user@v1"}, names(objs))
}

func testSpecStoredByteForByte(t *testing.T, s registry.Store) {
	spec := json.RawMessage(`{"z":1,  "a":[3,2,1],"unicode":"é\u00e9","n":1.50}`)
	apply(t, s, 0, registry.Change{Kind: definitions.KindSource, Name: "src", Hash: "h", Spec: spec})
	o, err := s.GetObject(ctx(t), project, definitions.KindSource, "src", 0)
	require.NoError(t, err)
	require.Equal(t, string(spec), string(o.Spec))
}

func testApplyUnchangedIsNoop(t *testing.T, s registry.Store) {
	apply(t, s, 0, put(definitions.KindEntity, "user", "h1"))
	res := apply(t, s, 1, put(definitions.KindEntity, "user", "h1"), del(definitions.KindEntity, "never_existed"))
	require.Equal(t, int64(1), res.Revision)
	require.Empty(t, res.Versions)
	res = apply(t, s, 1) // no changes at all
	require.Equal(t, int64(1), res.Revision)

	c := ctx(t)
	hist, err := s.ObjectHistory(c, project, definitions.KindEntity, "user")
	require.NoError(t, err)
	require.Len(t, hist, 1)
	log, err := s.RevisionLog(c, project, 0)
	require.NoError(t, err)
	require.Len(t, log, 1)
	_, err = s.GetObject(c, project, definitions.KindEntity, "never_existed", 0)
	require.ErrorIs(t, err, registry.ErrNotFound)
}

func testApplyChangeKeepsHistory(t *testing.T, s registry.Store) {
	apply(t, s, 0, put(definitions.KindFeatureView, "v", "h1"), put(definitions.KindEntity, "user", "e1"))
	res := apply(t, s, 1, put(definitions.KindFeatureView, "v", "h2"), put(definitions.KindEntity, "user", "e1"))
	require.Equal(t, int64(2), res.Revision)
	require.Equal(t, []string{"feature_view/v@v2"}, names(res.Versions))
	apply(t, s, 2, put(definitions.KindFeatureView, "v", "h3"))

	c := ctx(t)
	latest, err := s.GetObject(c, project, definitions.KindFeatureView, "v", 0)
	require.NoError(t, err)
	require.Equal(t, 3, latest.Version)
	require.Equal(t, "h3", latest.Hash)
	require.Equal(t, int64(3), latest.Revision)

	v1, err := s.GetObject(c, project, definitions.KindFeatureView, "v", 1)
	require.NoError(t, err)
	require.Equal(t, "h1", v1.Hash)
	require.JSONEq(t, `{"name":"v","hash":"h1"}`, string(v1.Spec))
	require.Equal(t, int64(1), v1.Revision)

	_, err = s.GetObject(c, project, definitions.KindFeatureView, "v", 4)
	require.ErrorIs(t, err, registry.ErrNotFound)

	hist, err := s.ObjectHistory(c, project, definitions.KindFeatureView, "v")
	require.NoError(t, err)
	require.Equal(t, []string{"feature_view/v@v1", "feature_view/v@v2", "feature_view/v@v3"}, names(hist))
	require.Equal(t, []string{"h1", "h2", "h3"}, []string{hist[0].Hash, hist[1].Hash, hist[2].Hash})

	// Going back to an earlier content is a new version, not a rewrite.
	res = apply(t, s, 3, put(definitions.KindFeatureView, "v", "h1"))
	require.Equal(t, []string{"feature_view/v@v4"}, names(res.Versions))

	user, err := s.GetObject(c, project, definitions.KindEntity, "user", 0)
	require.NoError(t, err)
	require.Equal(t, 1, user.Version)
}

func testRemovalIsTombstone(t *testing.T, s registry.Store) {
	apply(t, s, 0, put(definitions.KindFeatureView, "v", "h1"), put(definitions.KindFeatureView, "w", "h1"))
	res := apply(t, s, 1, del(definitions.KindFeatureView, "v"))
	require.Equal(t, int64(2), res.Revision)
	require.Len(t, res.Versions, 1)
	require.True(t, res.Versions[0].Deleted)
	require.Equal(t, 2, res.Versions[0].Version)

	c := ctx(t)
	_, err := s.GetObject(c, project, definitions.KindFeatureView, "v", 0)
	require.ErrorIs(t, err, registry.ErrNotFound)
	objs, err := s.ListObjects(c, project, definitions.KindFeatureView)
	require.NoError(t, err)
	require.Equal(t, []string{"feature_view/w@v1"}, names(objs))

	v1, err := s.GetObject(c, project, definitions.KindFeatureView, "v", 1)
	require.NoError(t, err)
	require.False(t, v1.Deleted)
	require.Equal(t, "h1", v1.Hash)
	tomb, err := s.GetObject(c, project, definitions.KindFeatureView, "v", 2)
	require.NoError(t, err)
	require.True(t, tomb.Deleted)
	require.Empty(t, tomb.Spec)

	// Removing again changes nothing; putting it back is version 3, even with the old hash.
	res = apply(t, s, 2, del(definitions.KindFeatureView, "v"))
	require.Equal(t, int64(2), res.Revision)
	require.Empty(t, res.Versions)
	res = apply(t, s, 2, put(definitions.KindFeatureView, "v", "h1"))
	require.Equal(t, []string{"feature_view/v@v3"}, names(res.Versions))
	back, err := s.GetObject(c, project, definitions.KindFeatureView, "v", 0)
	require.NoError(t, err)
	require.Equal(t, 3, back.Version)
	hist, err := s.ObjectHistory(c, project, definitions.KindFeatureView, "v")
	require.NoError(t, err)
	require.Len(t, hist, 3)
}

func testStaleBaseRevisionConflicts(t *testing.T, s registry.Store) {
	apply(t, s, 0, put(definitions.KindEntity, "user", "h1"))
	for _, base := range []int64{0, 2} {
		_, err := s.Apply(ctx(t), registry.ApplyRequest{Project: project, BaseRevision: base, Author: "bob",
			Changes: []registry.Change{put(definitions.KindEntity, "user", "h2"), put(definitions.KindEntity, "merchant", "m")}})
		require.ErrorIs(t, err, registry.ErrConflict)
		var rc *registry.RevisionConflictError
		require.ErrorAs(t, err, &rc)
		require.Equal(t, base, rc.Planned)
		require.Equal(t, int64(1), rc.Current)
		require.Contains(t, err.Error(), fmt.Sprintf("registry changed since plan: planned against revision %d, now 1; run plan again", base))
	}
	// A conflict even when the request would change nothing.
	_, err := s.Apply(ctx(t), registry.ApplyRequest{Project: project, BaseRevision: 0, Changes: []registry.Change{put(definitions.KindEntity, "user", "h1")}})
	require.ErrorIs(t, err, registry.ErrConflict)

	c := ctx(t)
	rev, err := s.CurrentRevision(c, project)
	require.NoError(t, err)
	require.Equal(t, int64(1), rev)
	objs, err := s.ListObjects(c, project, "")
	require.NoError(t, err)
	require.Equal(t, []string{"entity/user@v1"}, names(objs))
	log, err := s.RevisionLog(c, project, 0)
	require.NoError(t, err)
	require.Len(t, log, 1)
}

func testInvalidApply(t *testing.T, s registry.Store) {
	tests := []struct {
		name string
		req  registry.ApplyRequest
	}{
		{"no project", registry.ApplyRequest{Changes: []registry.Change{put(definitions.KindEntity, "u", "h")}}},
		{"negative base", registry.ApplyRequest{Project: project, BaseRevision: -1}},
		{"unknown kind", registry.ApplyRequest{Project: project, Changes: []registry.Change{put("widget", "u", "h")}}},
		{"empty name", registry.ApplyRequest{Project: project, Changes: []registry.Change{put(definitions.KindEntity, "", "h")}}},
		{"no hash", registry.ApplyRequest{Project: project, Changes: []registry.Change{put(definitions.KindEntity, "u", "")}}},
		{"bad json", registry.ApplyRequest{Project: project, Changes: []registry.Change{{Kind: definitions.KindEntity, Name: "u", Hash: "h", Spec: json.RawMessage(`{`)}}}},
		{"twice", registry.ApplyRequest{Project: project, Changes: []registry.Change{put(definitions.KindEntity, "u", "h"), del(definitions.KindEntity, "u")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Apply(ctx(t), tc.req)
			require.ErrorIs(t, err, registry.ErrInvalid)
		})
	}
	rev, err := s.CurrentRevision(ctx(t), project)
	require.NoError(t, err)
	require.Zero(t, rev)
}

func testProjectsAreIsolated(t *testing.T, s registry.Store) {
	apply(t, s, 0, put(definitions.KindEntity, "user", "h1"))
	c := ctx(t)
	res, err := s.Apply(c, registry.ApplyRequest{Project: "other", BaseRevision: 0,
		Changes: []registry.Change{put(definitions.KindEntity, "user", "h9"), put(definitions.KindEntity, "shop", "h9")}})
	require.NoError(t, err)
	require.Equal(t, int64(1), res.Revision)
	require.Equal(t, []string{"entity/user@v1", "entity/shop@v1"}, names(res.Versions))

	mine, err := s.ListObjects(c, project, definitions.KindEntity)
	require.NoError(t, err)
	require.Equal(t, []string{"entity/user@v1"}, names(mine))
	require.Equal(t, "h1", mine[0].Hash)
	theirs, err := s.ListObjects(c, "other", definitions.KindEntity)
	require.NoError(t, err)
	require.Equal(t, []string{"entity/shop@v1", "entity/user@v1"}, names(theirs))
	log, err := s.RevisionLog(c, project, 0)
	require.NoError(t, err)
	require.Len(t, log, 1)
	require.Len(t, log[0].Objects, 1)
}

func testListAllKinds(t *testing.T, s registry.Store) {
	apply(t, s, 0,
		put(definitions.KindTrainingJob, "train", "h"),
		put(definitions.KindFeatureView, "b_view", "h"),
		put(definitions.KindFeatureView, "a_view", "h"),
		put(definitions.KindEntity, "user", "h"),
		put(definitions.KindSource, "src", "h"),
		put(definitions.KindModel, "churn", "h"),
		put(definitions.KindFeatureService, "svc", "h"),
	)
	apply(t, s, 1, del(definitions.KindFeatureView, "b_view"))
	objs, err := s.ListObjects(ctx(t), project, "")
	require.NoError(t, err)
	require.Equal(t, []string{
		"entity/user@v1", "source/src@v1", "feature_view/a_view@v1", "feature_service/svc@v1",
		"model/churn@v1", "training_job/train@v1",
	}, names(objs))
}

func testRevisionLog(t *testing.T, s registry.Store) {
	before := time.Now().Add(-time.Second)
	apply(t, s, 0, put(definitions.KindFeatureView, "v", "h1"), put(definitions.KindEntity, "user", "h1"))
	_, err := s.Apply(ctx(t), registry.ApplyRequest{Project: project, BaseRevision: 1, Author: "bob", GitCommit: registry.GitDirty,
		Changes: []registry.Change{put(definitions.KindFeatureView, "v", "h2"), del(definitions.KindEntity, "user")}})
	require.NoError(t, err)
	apply(t, s, 2, put(definitions.KindSource, "s", "h1"))

	c := ctx(t)
	log, err := s.RevisionLog(c, project, 0)
	require.NoError(t, err)
	require.Len(t, log, 3)
	require.Equal(t, []int64{3, 2, 1}, []int64{log[0].Revision, log[1].Revision, log[2].Revision})

	r2 := log[1]
	require.Equal(t, project, r2.Project)
	require.Equal(t, "bob", r2.AppliedBy)
	require.Equal(t, registry.GitDirty, r2.GitCommit)
	require.WithinRange(t, r2.AppliedAt, before, time.Now().Add(time.Second))
	require.Equal(t, []registry.ObjectRef{
		{Kind: definitions.KindEntity, Name: "user", Version: 2, Deleted: true},
		{Kind: definitions.KindFeatureView, Name: "v", Version: 2},
	}, r2.Objects)
	require.Equal(t, "alice", log[2].AppliedBy)
	require.Len(t, log[2].Objects, 2)

	limited, err := s.RevisionLog(c, project, 2)
	require.NoError(t, err)
	require.Equal(t, log[:2], limited)
}

func testConcurrentApplies(t *testing.T, s registry.Store) {
	apply(t, s, 0, put(definitions.KindEntity, "user", "h0"))
	const n = 8
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			_, results[i] = s.Apply(context.Background(), registry.ApplyRequest{
				Project: project, BaseRevision: 1, Author: fmt.Sprintf("writer%d", i),
				Changes: []registry.Change{
					put(definitions.KindEntity, "user", fmt.Sprintf("h-%d", i)),
					put(definitions.KindFeatureView, fmt.Sprintf("view_%d", i), "h"),
				},
			})
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range results {
		if err == nil {
			require.Equal(t, -1, winner, "two applies against the same revision both succeeded")
			winner = i
			continue
		}
		require.ErrorIs(t, err, registry.ErrConflict, "writer %d", i)
		require.Contains(t, err.Error(), "planned against revision 1, now 2; run plan again")
	}
	require.NotEqual(t, -1, winner, "no apply succeeded")

	c := ctx(t)
	rev, err := s.CurrentRevision(c, project)
	require.NoError(t, err)
	require.Equal(t, int64(2), rev)
	user, err := s.GetObject(c, project, definitions.KindEntity, "user", 0)
	require.NoError(t, err)
	require.Equal(t, 2, user.Version)
	require.Equal(t, fmt.Sprintf("h-%d", winner), user.Hash)
	require.Equal(t, fmt.Sprintf("writer%d", winner), user.CreatedBy)
	views, err := s.ListObjects(c, project, definitions.KindFeatureView)
	require.NoError(t, err)
	require.Equal(t, []string{fmt.Sprintf("feature_view/view_%d@v1", winner)}, names(views))
	hist, err := s.ObjectHistory(c, project, definitions.KindEntity, "user")
	require.NoError(t, err)
	require.Len(t, hist, 2)
	log, err := s.RevisionLog(c, project, 0)
	require.NoError(t, err)
	require.Len(t, log, 2)
}

func testMaterializationRuns(t *testing.T, s registry.Store) {
	c := ctx(t)
	before := time.Now().Add(-time.Second)
	// Sub-microsecond parts are dropped and zones normalized to UTC.
	start := t0.Add(789 * time.Nanosecond).In(time.FixedZone("X", 3600))
	r, err := s.StartRun(c, project, "user_stats", start, t1)
	require.NoError(t, err)
	require.NotZero(t, r.ID)
	require.Equal(t, project, r.Project)
	require.Equal(t, "user_stats", r.View)
	require.Equal(t, registry.RunRunning, r.Status)
	require.Equal(t, t0, r.Start)
	require.Equal(t, t1, r.End)
	require.WithinRange(t, r.StartedAt, before, time.Now().Add(time.Second))
	require.True(t, r.FinishedAt.IsZero())

	r2, err := s.StartRun(c, project, "user_stats", t1, t2)
	require.NoError(t, err)
	other, err := s.StartRun(c, project, "merchant_stats", t0, t2)
	require.NoError(t, err)
	require.NotEqual(t, r.ID, r2.ID)

	done, err := s.FinishRun(c, r.ID, registry.RunResult{Status: registry.RunSucceeded, RowsRead: 100, RowsWritten: 90, OfflineSnapshotID: 4242})
	require.NoError(t, err)
	require.Equal(t, registry.RunSucceeded, done.Status)
	require.Equal(t, int64(100), done.RowsRead)
	require.Equal(t, int64(90), done.RowsWritten)
	require.Equal(t, int64(4242), done.OfflineSnapshotID)
	require.False(t, done.FinishedAt.IsZero())
	require.False(t, done.FinishedAt.Before(done.StartedAt))

	failed, err := s.FinishRun(c, r2.ID, registry.RunResult{Status: registry.RunFailed, RowsRead: 7, Error: "source: connection reset"})
	require.NoError(t, err)
	require.Equal(t, registry.RunFailed, failed.Status)
	require.Equal(t, "source: connection reset", failed.Error)

	got, err := s.GetRun(c, r.ID)
	require.NoError(t, err)
	require.Equal(t, done, got)

	all, err := s.ListRuns(c, registry.RunFilter{Project: project})
	require.NoError(t, err)
	require.Equal(t, []registry.RunID{other.ID, r2.ID, r.ID}, runIDs(all))
	byView, err := s.ListRuns(c, registry.RunFilter{Project: project, View: "user_stats"})
	require.NoError(t, err)
	require.Equal(t, []registry.RunID{r2.ID, r.ID}, runIDs(byView))
	running, err := s.ListRuns(c, registry.RunFilter{Project: project, Status: registry.RunRunning})
	require.NoError(t, err)
	require.Equal(t, []registry.RunID{other.ID}, runIDs(running))
	limited, err := s.ListRuns(c, registry.RunFilter{Project: project, View: "user_stats", Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []registry.RunID{r2.ID}, runIDs(limited))
	none, err := s.ListRuns(c, registry.RunFilter{Project: "other"})
	require.NoError(t, err)
	require.Empty(t, none)
}

func runIDs(runs []registry.MaterializationRun) []registry.RunID {
	var out []registry.RunID
	for _, r := range runs {
		out = append(out, r.ID)
	}
	return out
}

func testMaterializationRunErrors(t *testing.T, s registry.Store) {
	c := ctx(t)
	_, err := s.StartRun(c, project, "v", t1, t1)
	require.ErrorIs(t, err, registry.ErrInvalid)
	_, err = s.StartRun(c, project, "v", t2, t1)
	require.ErrorIs(t, err, registry.ErrInvalid)
	_, err = s.StartRun(c, project, "", t0, t1)
	require.ErrorIs(t, err, registry.ErrInvalid)

	_, err = s.GetRun(c, 987654)
	require.ErrorIs(t, err, registry.ErrNotFound)
	_, err = s.FinishRun(c, 987654, registry.RunResult{Status: registry.RunSucceeded})
	require.ErrorIs(t, err, registry.ErrNotFound)

	r, err := s.StartRun(c, project, "v", t0, t1)
	require.NoError(t, err)
	_, err = s.FinishRun(c, r.ID, registry.RunResult{Status: registry.RunRunning})
	require.ErrorIs(t, err, registry.ErrInvalid)
	_, err = s.FinishRun(c, r.ID, registry.RunResult{Status: registry.RunFailed, Error: "boom"})
	require.NoError(t, err)
	_, err = s.FinishRun(c, r.ID, registry.RunResult{Status: registry.RunSucceeded})
	require.ErrorIs(t, err, registry.ErrConflict)
	got, err := s.GetRun(c, r.ID)
	require.NoError(t, err)
	require.Equal(t, registry.RunFailed, got.Status)
	require.Equal(t, "boom", got.Error)
}

func testWatermarks(t *testing.T, s registry.Store) {
	c := ctx(t)
	_, err := s.Watermark(c, project, "v")
	require.ErrorIs(t, err, registry.ErrNotFound)
	wms, err := s.ListWatermarks(c, project)
	require.NoError(t, err)
	require.Empty(t, wms)

	w, err := s.AdvanceWatermark(c, registry.WatermarkUpdate{Project: project, View: "v", To: t1, RunID: 7})
	require.NoError(t, err)
	require.Equal(t, t1, w.Time)
	require.Equal(t, registry.RunID(7), w.RunID)
	require.False(t, w.UpdatedAt.IsZero())

	got, err := s.Watermark(c, project, "v")
	require.NoError(t, err)
	require.Equal(t, w, got)

	// Same time: no-op. Later: moves. Earlier: refused, unchanged.
	same, err := s.AdvanceWatermark(c, registry.WatermarkUpdate{Project: project, View: "v", To: t1, RunID: 8})
	require.NoError(t, err)
	require.Equal(t, registry.RunID(7), same.RunID)
	_, err = s.AdvanceWatermark(c, registry.WatermarkUpdate{Project: project, View: "v", To: t2, RunID: 9})
	require.NoError(t, err)
	_, err = s.AdvanceWatermark(c, registry.WatermarkUpdate{Project: project, View: "v", To: t0, RunID: 10})
	require.ErrorIs(t, err, registry.ErrWatermarkBackwards)
	require.ErrorIs(t, err, registry.ErrConflict)
	got, err = s.Watermark(c, project, "v")
	require.NoError(t, err)
	require.Equal(t, t2, got.Time)
	require.Equal(t, registry.RunID(9), got.RunID)

	// Forced: moves back.
	forced, err := s.AdvanceWatermark(c, registry.WatermarkUpdate{Project: project, View: "v", To: t0, Force: true})
	require.NoError(t, err)
	require.Equal(t, t0, forced.Time)
	got, err = s.Watermark(c, project, "v")
	require.NoError(t, err)
	require.Equal(t, t0, got.Time)

	_, err = s.AdvanceWatermark(c, registry.WatermarkUpdate{Project: project, View: "a", To: t2})
	require.NoError(t, err)
	_, err = s.AdvanceWatermark(c, registry.WatermarkUpdate{Project: "other", View: "z", To: t2})
	require.NoError(t, err)
	wms, err = s.ListWatermarks(c, project)
	require.NoError(t, err)
	require.Len(t, wms, 2)
	require.Equal(t, "a", wms[0].View)
	require.Equal(t, "v", wms[1].View)

	_, err = s.AdvanceWatermark(c, registry.WatermarkUpdate{Project: project, View: "v"})
	require.ErrorIs(t, err, registry.ErrInvalid)
}

func testConcurrentWatermarks(t *testing.T, s registry.Store) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// Each writer walks forward; writers interleave, so some updates are behind.
			for j := range 3 {
				to := t0.Add(time.Duration(j*n+i) * time.Minute)
				_, err := s.AdvanceWatermark(context.Background(), registry.WatermarkUpdate{Project: project, View: "v", To: to})
				if err != nil && !errors.Is(err, registry.ErrWatermarkBackwards) {
					errs[i] = err
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	w, err := s.Watermark(ctx(t), project, "v")
	require.NoError(t, err)
	require.Equal(t, t0.Add(time.Duration(2*n+n-1)*time.Minute), w.Time, "the greatest time wins")
}

func testDatasets(t *testing.T, s registry.Store) {
	c := ctx(t)
	_, err := s.GetDataset(c, project, "train", 0)
	require.ErrorIs(t, err, registry.ErrNotFound)

	manifest := json.RawMessage(`{"files":[{"path":"part-0.parquet","rows":10}],  "schema":"x"}`)
	d1, err := s.CreateDataset(c, registry.Dataset{Project: project, Name: "train", ContentID: "c1", InputsHash: "i1",
		Location: "datasets/train/v1", Rows: 10, Manifest: manifest, CreatedBy: "alice"})
	require.NoError(t, err)
	require.Equal(t, 1, d1.Version)
	require.False(t, d1.CreatedAt.IsZero())
	d2, err := s.CreateDataset(c, registry.Dataset{Project: project, Name: "train", ContentID: "c2", InputsHash: "i2", Rows: 20})
	require.NoError(t, err)
	require.Equal(t, 2, d2.Version)
	o1, err := s.CreateDataset(c, registry.Dataset{Project: project, Name: "eval", ContentID: "c3", InputsHash: "i1"})
	require.NoError(t, err)
	require.Equal(t, 1, o1.Version)

	got, err := s.GetDataset(c, project, "train", 1)
	require.NoError(t, err)
	require.Equal(t, d1, got)
	require.Equal(t, string(manifest), string(got.Manifest))
	latest, err := s.GetDataset(c, project, "train", 0)
	require.NoError(t, err)
	require.Equal(t, 2, latest.Version)

	all, err := s.ListDatasets(c, project, "")
	require.NoError(t, err)
	require.Equal(t, []string{"eval@1", "train@1", "train@2"}, datasetNames(all))
	train, err := s.ListDatasets(c, project, "train")
	require.NoError(t, err)
	require.Equal(t, []string{"train@1", "train@2"}, datasetNames(train))

	found, err := s.FindDatasetByInputs(c, project, "train", "i2")
	require.NoError(t, err)
	require.Equal(t, "c2", found.ContentID)
	// The name's own version, though eval was built from the same inputs after it.
	found, err = s.FindDatasetByInputs(c, project, "train", "i1")
	require.NoError(t, err)
	require.Equal(t, "train@1", datasetNames([]registry.Dataset{found})[0])
	found, err = s.FindDatasetByInputs(c, project, "eval", "i1")
	require.NoError(t, err)
	require.Equal(t, "eval@1", datasetNames([]registry.Dataset{found})[0])
	_, err = s.FindDatasetByInputs(c, project, "eval", "i2")
	require.ErrorIs(t, err, registry.ErrNotFound, "another name's inputs")
	_, err = s.FindDatasetByInputs(c, project, "train", "nope")
	require.ErrorIs(t, err, registry.ErrNotFound)
	_, err = s.FindDatasetByInputs(c, "other", "train", "i2")
	require.ErrorIs(t, err, registry.ErrNotFound)
	_, err = s.FindDatasetByInputs(c, project, "", "i2")
	require.ErrorIs(t, err, registry.ErrInvalid)

	require.NoError(t, s.DeleteDataset(c, project, "train", 2))
	require.ErrorIs(t, s.DeleteDataset(c, project, "train", 2), registry.ErrNotFound)
	require.ErrorIs(t, s.DeleteDataset(c, project, "train", 9), registry.ErrNotFound)
	latest, err = s.GetDataset(c, project, "train", 0)
	require.NoError(t, err)
	require.Equal(t, 1, latest.Version)
	gone, err := s.GetDataset(c, project, "train", 2)
	require.NoError(t, err)
	require.True(t, gone.Deleted)
	_, err = s.FindDatasetByInputs(c, project, "train", "i2")
	require.ErrorIs(t, err, registry.ErrNotFound)
	train, err = s.ListDatasets(c, project, "train")
	require.NoError(t, err)
	require.Equal(t, []string{"train@1"}, datasetNames(train))

	// Versions keep counting after a removal.
	d3, err := s.CreateDataset(c, registry.Dataset{Project: project, Name: "train", ContentID: "c4"})
	require.NoError(t, err)
	require.Equal(t, 3, d3.Version)

	_, err = s.CreateDataset(c, registry.Dataset{Project: project, Name: "train"})
	require.ErrorIs(t, err, registry.ErrInvalid)
	_, err = s.CreateDataset(c, registry.Dataset{Project: project, Name: "train", ContentID: "c", Manifest: json.RawMessage(`{`)})
	require.ErrorIs(t, err, registry.ErrInvalid)
}

func datasetNames(ds []registry.Dataset) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s@%d", d.Name, d.Version))
	}
	return out
}

func testConcurrentDatasetVersions(t *testing.T, s registry.Store) {
	const n = 6
	var wg sync.WaitGroup
	versions := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			d, err := s.CreateDataset(context.Background(), registry.Dataset{Project: project, Name: "train", ContentID: fmt.Sprint(i)})
			versions[i], errs[i] = d.Version, err
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for i := range n {
		require.NoError(t, errs[i])
		require.False(t, seen[versions[i]], "version %d given twice", versions[i])
		seen[versions[i]] = true
	}
	for v := 1; v <= n; v++ {
		require.True(t, seen[v], "version %d missing", v)
	}
}
