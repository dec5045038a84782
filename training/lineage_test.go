package training_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

// applyingRegistry is the fixture's real registry that, on the first registry call a dataset
// build makes, first lands an apply: the feature service names fewer features and the view
// gets a description, both new versions.
type applyingRegistry struct {
	registry.Store
	t    *testing.T
	once sync.Once
}

func (r *applyingRegistry) landApply(ctx context.Context) {
	r.once.Do(func() {
		f, err := definitions.Parse("defs.yaml", []byte(strings.Replace(strings.Replace(defs,
			"features: [user_stats:*]", "features: [user_stats:clicks]", 1),
			"ttl: 12h\n", "ttl: 12h\n    description: changed mid-build\n", 1)))
		require.NoError(r.t, err)
		repo, err := definitions.NewRepo(f.Objects)
		require.NoError(r.t, err)
		objs, err := r.ListObjects(ctx, project, "")
		require.NoError(r.t, err)
		applied := make([]definitions.Applied, len(objs))
		for i, o := range objs {
			applied[i] = definitions.Applied{Kind: o.Kind, Name: o.Name, Version: o.Version, Hash: o.Hash, Spec: o.Spec}
		}
		changes, err := definitions.Plan(repo, applied)
		require.NoError(r.t, err)
		rev, err := r.CurrentRevision(ctx, project)
		require.NoError(r.t, err)
		req := registry.ApplyRequest{Project: project, BaseRevision: rev, Author: "test"}
		for _, c := range changes {
			req.Changes = append(req.Changes, registry.Change{Kind: c.Kind, Name: c.Name, Hash: c.Hash, Spec: c.Spec})
		}
		res, err := r.Apply(ctx, req)
		require.NoError(r.t, err)
		require.Len(r.t, res.Versions, 2, "the apply changes the service and the view")
	})
}

func (r *applyingRegistry) GetObject(ctx context.Context, project string, kind definitions.Kind, name string, version int) (registry.ObjectVersion, error) {
	r.landApply(ctx)
	return r.Store.GetObject(ctx, project, kind, name, version)
}

func (r *applyingRegistry) Generations(ctx context.Context, project string) (map[string]int, error) {
	r.landApply(ctx)
	return r.Store.Generations(ctx, project)
}

func (r *applyingRegistry) FindDatasetByInputs(ctx context.Context, project, name, inputsHash string) (registry.Dataset, error) {
	r.landApply(ctx)
	return r.Store.FindDatasetByInputs(ctx, project, name, inputsHash)
}

func (r *applyingRegistry) BeginDatasetBuild(ctx context.Context, b registry.DatasetBuild) (registry.DatasetBuild, error) {
	r.landApply(ctx)
	return r.Store.BeginDatasetBuild(ctx, b)
}

// TestDatasetLineageNamesTheDefinitionsJoined (issue 23): an apply that lands while a
// dataset is being built does not change its lineage, which names exactly the definition
// versions (and hashes) whose features were joined.
func TestDatasetLineageNamesTheDefinitionsJoined(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	joined := map[definitions.Kind]registry.ObjectVersion{}
	for _, k := range []definitions.Kind{definitions.KindFeatureService, definitions.KindFeatureView} {
		name := map[definitions.Kind]string{definitions.KindFeatureService: "churn", definitions.KindFeatureView: "user_stats"}[k]
		o, err := fx.reg.GetObject(ctx, project, k, name, 0)
		require.NoError(t, err)
		joined[k] = o
	}
	ents := filepath.Join(fx.dir, "entities.parquet")
	writeEntities(t, ents)
	reg := &applyingRegistry{Store: fx.reg, t: t}
	res, err := training.CreateDataset(ctx, reg, fx.off, fx.snap, training.DatasetRequest{
		Project: project, Name: "mid_apply", Service: "churn", Entities: ents, Warehouse: filepath.Join(fx.dir, "warehouse"), QuiverVersion: "test",
	})
	require.NoError(t, err)
	latest, err := fx.reg.GetObject(ctx, project, definitions.KindFeatureService, "churn", 0)
	require.NoError(t, err)
	require.Equal(t, 2, latest.Version, "the apply landed during the build")

	m, _, err := training.ReadManifest(res.Dir)
	require.NoError(t, err)
	require.Equal(t, []string{"label", "user_id", "event_timestamp", "clicks", "score"}, columnNames(m), "the definitions read before the apply were joined")
	svc := joined[definitions.KindFeatureService]
	require.Equal(t, training.ObjectRef{Name: "churn", Version: svc.Version, Hash: svc.Hash}, m.Lineage.FeatureService)
	require.Len(t, m.Lineage.FeatureViews, 1)
	view := joined[definitions.KindFeatureView]
	require.Equal(t, training.ObjectRef{Name: "user_stats", Version: view.Version, Hash: view.Hash}, m.Lineage.FeatureViews[0].ObjectRef)
}
