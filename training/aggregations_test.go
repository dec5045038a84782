package training_test

import (
	"context"
	"path/filepath"
	"testing"

	pq "github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/offline/parquet"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/sqlite"
	"github.com/quiverfs/quiver/training"
)

const aggDefs = `
entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: activity
    parquet: { path: activity.parquet }
    timestamp_field: ts
    created_timestamp_field: created
feature_views:
  - name: activity_aggs
    entities: [user]
    source: activity
    online: false
    columns: [{ name: clicks, type: int64 }]
    aggregations:
      - { column: clicks, function: sum, windows: [6h] }
      - { column: clicks, function: count, windows: [6h] }
feature_services:
  - name: aggs
    features: [activity_aggs:clicks_count_6h, activity_aggs:clicks_sum_6h]
`

// TestCreateDatasetWithAggregations: dataset create over an aggregation view materialized into
// Iceberg gives, for every entity row at T, the window (T - 6h, T], in the service's order.
func TestCreateDatasetWithAggregations(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeActivity(t, filepath.Join(dir, "activity.parquet"), map[int64][]int{1: {0, 5, 10}, 2: {3}, 3: {1, 30}})
	f, err := definitions.Parse("defs.yaml", []byte(aggDefs))
	require.NoError(t, err)
	repo, err := definitions.NewRepo(f.Objects)
	require.NoError(t, err)
	reg, err := sqlite.Open(ctx, filepath.Join(dir, "registry.db"))
	require.NoError(t, err)
	defer reg.Close()
	changes, err := definitions.Plan(repo, nil)
	require.NoError(t, err)
	req := registry.ApplyRequest{Project: project, Author: "test"}
	for _, c := range changes {
		req.Changes = append(req.Changes, registry.Change{Kind: c.Kind, Name: c.Name, Hash: c.Hash, Spec: c.Spec})
	}
	_, err = reg.Apply(ctx, req)
	require.NoError(t, err)
	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: "sqlite://" + filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")})
	require.NoError(t, err)
	defer cat.Close()
	off, err := iceberg.NewStore(ctx, cat, iceberg.StoreOptions{SpillDir: dir})
	require.NoError(t, err)
	src, err := parquet.New(repo.Source("activity"), parquet.Options{BaseDir: dir})
	require.NoError(t, err)
	vs, err := offline.NewViewSchema(repo.FeatureView("activity_aggs"), map[string]*definitions.Entity{"user": repo.Entity("user")})
	require.NoError(t, err)
	require.Equal(t, []offline.Column{{Name: "clicks", Type: definitions.MustType("int64")}}, vs.Features, "the offline table holds the raw event columns")
	_, err = materialize.Run(ctx, reg, materialize.Job{Project: project, Schema: vs, Source: src, Offline: off}, t0, at(48), materialize.Options{})
	require.NoError(t, err)

	ents := filepath.Join(dir, "entities.parquet")
	writeEntities(t, ents)
	snap, err := catalog.Load(ctx, reg, project)
	require.NoError(t, err)
	res, err := training.CreateDataset(ctx, reg, off, snap, training.DatasetRequest{Project: project, Name: "aggs_train", Service: "aggs", Entities: ents,
		Warehouse: filepath.Join(dir, "warehouse"), QuiverVersion: "test"})
	require.NoError(t, err)
	type row struct {
		UserID int64  `parquet:"user_id"`
		Count  int64  `parquet:"clicks_count_6h"`
		Sum    *int64 `parquet:"clicks_sum_6h,optional"`
	}
	rows, err := pq.ReadFile[row](filepath.Join(res.Dir, "part-00000.parquet"))
	require.NoError(t, err)
	sum := func(v int64) *int64 { return &v }
	want := []row{
		{1, 1, sum(51)},       // T 7h: (1h, 7h] holds hour 5
		{1, 2, sum(51 + 101)}, // T 10h: (4h, 10h] holds hours 5 and 10 (exactly T)
		{2, 0, nil},           // T 16h: hour 3 left the window
		{2, 0, nil},           // T 15h: (9h, 15h]; hour 3 is out
		{4, 0, nil},           // no events
		{3, 0, nil},           // T 0h: before hour 1
		{3, 1, sum(13)},       // T 1h: exactly at hour 1
	}
	require.Equal(t, want, rows)
	m, _, err := training.ReadManifest(res.Dir)
	require.NoError(t, err)
	require.Equal(t, []string{"label", "user_id", "event_timestamp", "clicks_count_6h", "clicks_sum_6h"}, columnNames(m))
}
