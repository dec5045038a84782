package registrytest

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
)

func applyReq(t *testing.T, s registry.Store, req registry.ApplyRequest) registry.ApplyResult {
	t.Helper()
	req.Project, req.Author, req.GitCommit = project, "alice", "0123abcd"
	res, err := s.Apply(ctx(t), req)
	require.NoError(t, err)
	return res
}

// testGenerations: a breaking change and a removal each end a view's generation, record a
// pending drop and forget its watermark; a view declared again never gets an old generation.
func testGenerations(t *testing.T, s registry.Store) {
	c := ctx(t)
	fv := definitions.KindFeatureView
	res := apply(t, s, 0, put(definitions.KindEntity, "user", "e1"), put(fv, "v", "h1"), put(fv, "w", "h1"))
	require.Empty(t, res.Drops)
	gens, err := s.Generations(c, project)
	require.NoError(t, err)
	require.Empty(t, gens, "every view starts at generation 1")
	require.Equal(t, 1, registry.Generation(gens, "v"))
	_, err = s.AdvanceWatermark(c, registry.WatermarkUpdate{Project: project, View: "v", To: t1})
	require.NoError(t, err)
	_, err = s.AdvanceWatermark(c, registry.WatermarkUpdate{Project: project, View: "w", To: t1})
	require.NoError(t, err)

	// A breaking change of v: generation 2, a drop of generation 1, no watermark.
	res = applyReq(t, s, registry.ApplyRequest{BaseRevision: 1, Changes: []registry.Change{put(fv, "v", "h2")},
		NewGenerations: []string{"v", "never_declared"}})
	require.EqualValues(t, 2, res.Revision)
	require.Len(t, res.Drops, 1)
	d := res.Drops[0]
	require.Equal(t, "v", d.View)
	require.Equal(t, 1, d.Generation)
	require.True(t, d.Online)
	require.True(t, d.Offline)
	require.EqualValues(t, 2, d.Revision)
	gens, err = s.Generations(c, project)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"v": 2}, gens)
	_, err = s.Watermark(c, project, "v")
	require.ErrorIs(t, err, registry.ErrWatermarkNotFound)
	_, err = s.Watermark(c, project, "w")
	require.NoError(t, err, "other views keep their watermark")

	pending, err := s.PendingDrops(c, project)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Equal(t, d.View, pending[0].View)
	require.Equal(t, d.Generation, pending[0].Generation)
	require.False(t, pending[0].CreatedAt.IsZero())
	require.NoError(t, s.FinishDrop(c, project, "v", 1))
	require.NoError(t, s.FinishDrop(c, project, "v", 1), "finishing twice is a no-op")
	pending, err = s.PendingDrops(c, project)
	require.NoError(t, err)
	require.Empty(t, pending)

	// A generation bump with no spec change (a changed entity) still makes a revision.
	res = applyReq(t, s, registry.ApplyRequest{BaseRevision: 2, NewGenerations: []string{"w"}})
	require.EqualValues(t, 3, res.Revision)
	require.Len(t, res.Drops, 1)

	// Removal with the offline data kept; then declared again: generation 3, no new drop.
	res = applyReq(t, s, registry.ApplyRequest{BaseRevision: 3, Changes: []registry.Change{del(fv, "v")}, KeepOfflineData: true})
	require.Len(t, res.Drops, 1)
	require.Equal(t, 2, res.Drops[0].Generation)
	require.False(t, res.Drops[0].Offline)
	require.True(t, res.Drops[0].Online)
	res = apply(t, s, 4, put(fv, "v", "h1"))
	require.Empty(t, res.Drops)
	gens, err = s.Generations(c, project)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"v": 3, "w": 2}, gens)

	// A run that wrote an ended generation cannot move the new generation's watermark.
	_, err = s.AdvanceWatermark(c, registry.WatermarkUpdate{Project: project, View: "v", To: t2, Generation: 2})
	require.ErrorIs(t, err, registry.ErrGenerationChanged)
	require.ErrorIs(t, err, registry.ErrConflict)
	_, err = s.Watermark(c, project, "v")
	require.ErrorIs(t, err, registry.ErrWatermarkNotFound)
	_, err = s.AdvanceWatermark(c, registry.WatermarkUpdate{Project: project, View: "v", To: t2, Generation: 3})
	require.NoError(t, err)
	_, err = s.AdvanceWatermark(c, registry.WatermarkUpdate{Project: project, View: "fresh", To: t2, Generation: 1})
	require.NoError(t, err, "a view with no recorded generation is at 1")

	// Other projects see none of it.
	gens, err = s.Generations(c, "other")
	require.NoError(t, err)
	require.Empty(t, gens)
	pending, err = s.PendingDrops(c, "other")
	require.NoError(t, err)
	require.Empty(t, pending)
}

// testConcurrentBreakingApplies: of concurrent applies against one revision exactly one ends
// the generation.
func testConcurrentBreakingApplies(t *testing.T, s registry.Store) {
	apply(t, s, 0, put(definitions.KindFeatureView, "v", "h1"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Apply(ctx(t), registry.ApplyRequest{Project: project, BaseRevision: 1,
				Changes:        []registry.Change{put(definitions.KindFeatureView, "v", "h"+string(rune('a'+i)))},
				NewGenerations: []string{"v"}})
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else {
				require.ErrorIs(t, err, registry.ErrConflict)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, won)
	gens, err := s.Generations(ctx(t), project)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"v": 2}, gens)
	pending, err := s.PendingDrops(ctx(t), project)
	require.NoError(t, err)
	require.Len(t, pending, 1)
}
