package catalog_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const defs = `
entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: activity
    parquet: { path: activity.parquet }
    timestamp_field: ts
    created_timestamp_field: created
  - name: live
    push: {}
    timestamp_field: ts
feature_views:
  - name: user_stats
    entities: [user]
    source: activity
    online: true
    features:
      - { name: clicks, type: int64 }
  - name: user_live
    entities: [user]
    source: live
    online: false
    features:
      - { name: page, type: string }
`

// apply applies yaml to the registry as quiver apply does, starting new generations of the
// views named.
func apply(t *testing.T, reg registry.Store, yaml string, newGenerations ...string) {
	t.Helper()
	ctx := context.Background()
	f, err := definitions.Parse("defs.yaml", []byte(yaml))
	require.NoError(t, err)
	repo, err := definitions.NewRepo(f.Objects)
	require.NoError(t, err)
	objs, err := reg.ListObjects(ctx, "shop", "")
	require.NoError(t, err)
	applied := make([]definitions.Applied, len(objs))
	for i, o := range objs {
		applied[i] = definitions.Applied{Kind: o.Kind, Name: o.Name, Version: o.Version, Hash: o.Hash, Spec: o.Spec}
	}
	changes, err := definitions.Plan(repo, applied)
	require.NoError(t, err)
	rev, err := reg.CurrentRevision(ctx, "shop")
	require.NoError(t, err)
	req := registry.ApplyRequest{Project: "shop", BaseRevision: rev, Author: "test", NewGenerations: newGenerations}
	for _, c := range changes {
		req.Changes = append(req.Changes, registry.Change{Kind: c.Kind, Name: c.Name, Hash: c.Hash, Spec: c.Spec, Delete: c.Op == definitions.OpRemove})
	}
	_, err = reg.Apply(ctx, req)
	require.NoError(t, err)
}

func openRegistry(t *testing.T) registry.Store {
	reg, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "registry.db"))
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	return reg
}

func TestLoadResolvesEveryView(t *testing.T) {
	ctx := context.Background()
	reg := openRegistry(t)
	empty, err := catalog.Load(ctx, reg, "shop")
	require.NoError(t, err)
	require.Zero(t, empty.Revision)
	views, err := empty.Views()
	require.NoError(t, err)
	require.Empty(t, views)

	apply(t, reg, defs)
	apply(t, reg, strings.Replace(defs, "{ name: clicks, type: int64 }", "{ name: clicks, type: float64 }", 1), "user_stats")
	snap, err := catalog.Load(ctx, reg, "shop")
	require.NoError(t, err)
	require.EqualValues(t, 2, snap.Revision)
	v, err := snap.View("user_stats")
	require.NoError(t, err)
	require.Equal(t, 2, v.Generation)
	require.Equal(t, 2, v.Schema.Generation)
	require.Equal(t, 2, v.Online.Generation)
	require.Equal(t, "user_id", v.Schema.JoinKeys[0].Name)
	require.Equal(t, definitions.Float64, v.Schema.Features[0].Type.Elem)
	require.Equal(t, "created", v.Fields.Created)
	o, err := reg.GetObject(ctx, "shop", definitions.KindFeatureView, "user_stats", 0)
	require.NoError(t, err)
	require.Equal(t, catalog.Ref{Kind: definitions.KindFeatureView, Name: "user_stats", Version: 2, Hash: o.Hash}, v.Ref)
	require.True(t, v.Materialized())

	live, err := snap.View("user_live")
	require.NoError(t, err)
	require.True(t, live.Push())
	require.Nil(t, live.Online, "online: false")
	require.Equal(t, 1, live.Generation)

	_, err = snap.View("user_stat")
	require.Equal(t, errkind.Invalid, errkind.Of(err))
	require.ErrorContains(t, err, `did you mean "user_stats"`)
	views, err = snap.Views("user_live", "user_stats")
	require.NoError(t, err)
	require.Equal(t, []string{"user_live", "user_stats"}, []string{views[0].Name, views[1].Name})
}

func TestWatcherTellsSubscribersOfANewRevision(t *testing.T) {
	ctx := context.Background()
	reg := openRegistry(t)
	apply(t, reg, defs)
	snap, err := catalog.Load(ctx, reg, "shop")
	require.NoError(t, err)
	w := catalog.NewWatcher(reg, snap, catalog.WatcherOptions{Interval: 10 * time.Millisecond})
	var seen []string
	for _, name := range []string{"server", "ingester"} {
		w.OnChange(func(old, cur *catalog.Snapshot) {
			require.Same(t, cur, w.Current(), "Current is the new snapshot before subscribers hear of it")
			seen = append(seen, fmt.Sprintf("%s %d→%d", name, old.Revision, cur.Revision))
		})
	}
	changed, err := w.Check(ctx)
	require.NoError(t, err)
	require.False(t, changed)
	require.Empty(t, seen)

	apply(t, reg, strings.Replace(defs, "{ name: page, type: string }", "{ name: page, type: string }\n      - { name: n, type: int64 }", 1))
	changed, err = w.Check(ctx)
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, []string{"server 1→2", "ingester 1→2"}, seen)
	v, err := w.Current().View("user_live")
	require.NoError(t, err)
	require.Len(t, v.Schema.Features, 2)

	// Run polls until its context ends.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	apply(t, reg, defs)
	require.Eventually(t, func() bool { return w.Current().Revision == 3 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}
