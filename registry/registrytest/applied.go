package registrytest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
)

// testReadApplied: ReadApplied returns the revision, the live objects (as ListObjects) and
// the generations of one revision, also while applies land: every read sees an apply wholly
// or not at all.
func testReadApplied(t *testing.T, s registry.Store) {
	c := ctx(t)
	fv := definitions.KindFeatureView
	st, err := s.ReadApplied(c, project)
	require.NoError(t, err)
	require.Equal(t, project, st.Project)
	require.Zero(t, st.Revision)
	require.Empty(t, st.Objects)
	require.Empty(t, st.Generations)

	apply(t, s, 0, put(definitions.KindEntity, "user", "e1"), put(fv, "v", "h1"), put(fv, "gone", "g1"))
	apply(t, s, 1, del(fv, "gone"))
	applyReq(t, s, registry.ApplyRequest{BaseRevision: 2, Changes: []registry.Change{put(fv, "v", "h2")}, NewGenerations: []string{"v"}})
	st, err = s.ReadApplied(c, project)
	require.NoError(t, err)
	require.EqualValues(t, 3, st.Revision)
	listed, err := s.ListObjects(c, project, "")
	require.NoError(t, err)
	require.Equal(t, listed, st.Objects, "the live objects, as ListObjects lists them")
	require.Equal(t, []string{"entity/user@v1", "feature_view/v@v2"}, names(st.Objects))
	require.Equal(t, map[string]int{"v": 2, "gone": 2}, st.Generations, "a removed view keeps its ended generation")
	other, err := s.ReadApplied(c, "other")
	require.NoError(t, err)
	require.Zero(t, other.Revision)
	require.Empty(t, other.Objects)

	// Every apply of the writer below makes view w's version, its generation and the
	// project's revision move together: revision r holds w@v(r-3) at generation r-3.
	apply(t, s, 3, put(fv, "w", "w1"))
	const applies = 15
	var done atomic.Bool
	var mu sync.Mutex
	var bad []string
	var reads atomic.Int64
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() || reads.Load() == 0 {
				st, err := s.ReadApplied(c, project)
				reads.Add(1)
				problem := ""
				switch {
				case err != nil:
					problem = err.Error()
				default:
					want := int(st.Revision - 3)
					for _, o := range st.Objects {
						if o.Kind == fv && o.Name == "w" && (o.Version != want || o.Revision > st.Revision) {
							problem = fmt.Sprintf("revision %d holds w@v%d (of revision %d), want v%d", st.Revision, o.Version, o.Revision, want)
						}
					}
					if g := registry.Generation(st.Generations, "w"); problem == "" && g != want {
						problem = fmt.Sprintf("revision %d holds w at generation %d, want %d", st.Revision, g, want)
					}
				}
				if problem != "" {
					mu.Lock()
					bad = append(bad, problem)
					mu.Unlock()
					return
				}
			}
		}()
	}
	for i := 2; i <= applies; i++ {
		applyReq(t, s, registry.ApplyRequest{BaseRevision: int64(i + 2),
			Changes: []registry.Change{put(fv, "w", fmt.Sprintf("w%d", i))}, NewGenerations: []string{"w"}})
	}
	done.Store(true)
	wg.Wait()
	require.Empty(t, bad, "inconsistent reads")
	st, err = s.ReadApplied(c, project)
	require.NoError(t, err)
	require.EqualValues(t, applies+3, st.Revision)
	require.Equal(t, applies, registry.Generation(st.Generations, "w"))
}
