package ui

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/sqlite"
	"github.com/quiverfs/quiver/training"
)

const project = "shop"

// fixture is a registry (SQLite) and warehouse holding a small, complete project: every page
// of the UI has something to show.
type fixture struct {
	reg       registry.Store
	warehouse string
	runs      []registry.TrainingRunID
}

func spec(t testing.TB, o definitions.Object) registry.Change {
	t.Helper()
	b, err := definitions.Spec(o)
	require.NoError(t, err)
	return registry.Change{Kind: o.ObjectKind(), Name: o.ObjectName(), Hash: definitions.HashSpec(b), Spec: b}
}

func apply(t testing.TB, reg registry.Store, author string, objs ...definitions.Object) {
	t.Helper()
	ctx := context.Background()
	rev, err := reg.CurrentRevision(ctx, project)
	require.NoError(t, err)
	var changes []registry.Change
	for _, o := range objs {
		changes = append(changes, spec(t, o))
	}
	_, err = reg.Apply(ctx, registry.ApplyRequest{Project: project, BaseRevision: rev, Author: author, GitCommit: "0123456789abcdef0123", Changes: changes})
	require.NoError(t, err)
}

func field(name, typ, desc string) definitions.Field {
	return definitions.Field{Name: name, Type: definitions.MustType(typ), Description: desc}
}

func userStats(v int) *definitions.FeatureView {
	fv := &definitions.FeatureView{Name: "user_stats", Entities: []string{"user"}, Source: "user_activity", Online: true,
		TTL: definitions.Duration(7 * 24 * time.Hour), Description: "Rolling activity counters per user.",
		Tags:     map[string]string{"owner": "growth", "tier": "gold"},
		Features: []definitions.Field{field("clicks_7d", "int64", "Clicks in the last 7 days")}}
	if v >= 2 {
		fv.TTL = definitions.Duration(30 * 24 * time.Hour)
		fv.Features = append(fv.Features, field("spend_30d", "float64", "Spend over 30 days, in EUR"))
	}
	return fv
}

func openRegistry(t testing.TB) registry.Store {
	t.Helper()
	reg, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "registry.db"))
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	return reg
}

// newFixture seeds the project in a new SQLite registry.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	return seedFixture(t, openRegistry(t))
}

// seedFixture seeds the project in reg.
func seedFixture(t testing.TB, reg registry.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{reg: reg, warehouse: t.TempDir()}
	entity := &definitions.Entity{Name: "user", JoinKeys: []definitions.Field{field("user_id", "int64", "")}, Description: "A shop customer."}
	merchant := &definitions.Entity{Name: "merchant", JoinKeys: []definitions.Field{field("merchant_id", "int64", "")}}
	src := &definitions.Source{Name: "user_activity", Parquet: &definitions.ParquetSource{Path: "data/user_activity.parquet"}, TimestampField: "event_ts"}
	msrc := &definitions.Source{Name: "merchant_activity", Parquet: &definitions.ParquetSource{Path: "data/merchant_activity.parquet"}, TimestampField: "event_ts"}
	mstats := &definitions.FeatureView{Name: "merchant_stats", Entities: []string{"merchant"}, Source: "merchant_activity", Online: true,
		Tags: map[string]string{"owner": "risk"}, Description: "Merchant risk signals.",
		Features: []definitions.Field{field("chargeback_rate", "float64", "Share of charged-back orders")}}
	service := &definitions.FeatureService{Name: "churn_v1", Description: "Features of the churn model.",
		Features: []definitions.FeatureRef{{View: "user_stats", Feature: "*"}, {View: "merchant_stats", Feature: "chargeback_rate"}}}
	model := &definitions.Model{Name: "churn", FeatureService: "churn_v1", Runtime: "onnx", Description: "Will the user leave?", Tags: map[string]string{"owner": "growth"}}
	job := &definitions.TrainingJob{Name: "churn_train", FeatureService: "churn_v1", Command: []string{"python", "train.py"}, RegisterModel: "churn"}
	apply(t, reg, "alice", entity, merchant, src, msrc, userStats(1), mstats, service, model, job)
	apply(t, reg, "bob", userStats(2))

	// Materialization: two runs of user_stats, each committing an offline snapshot.
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i, snap := range []int64{7001, 7002} {
		run, err := reg.StartRun(ctx, project, "user_stats", day.Add(time.Duration(i)*24*time.Hour), day.Add(time.Duration(i+1)*24*time.Hour))
		require.NoError(t, err)
		_, err = reg.FinishRun(ctx, run.ID, registry.RunResult{Status: registry.RunSucceeded, RowsRead: 1000, RowsWritten: 990, OfflineSnapshotID: snap})
		require.NoError(t, err)
		_, err = reg.AdvanceWatermark(ctx, registry.WatermarkUpdate{Project: project, View: "user_stats", To: run.End, RunID: run.ID})
		require.NoError(t, err)
	}

	// Two dataset versions with real snapshots, so statistics and the diff read files.
	for v := 1; v <= 2; v++ {
		f.writeDataset(t, "churn_training", v)
	}

	// Training runs, each with params, tags and two metric curves.
	for i := range 3 {
		run, err := reg.CreateTrainingRun(ctx, registry.TrainingRun{Project: project, Job: "churn_train", ID: registry.TrainingRunID(fmt.Sprintf("run-%c", 'a'+i)),
			DatasetName: "churn_training", DatasetVersion: 2, CreatedBy: "carol", Info: []byte(`{"command":["python","train.py"],"host":"gpu-1"}`)})
		require.NoError(t, err)
		require.NoError(t, reg.SetRunParams(ctx, run.ID, map[string]string{"lr": fmt.Sprint(0.1 / float64(i+1)), "epochs": "30", "seed": "7"}))
		require.NoError(t, reg.SetRunTags(ctx, run.ID, map[string]string{"team": "growth"}))
		var pts []registry.Metric
		for step := range int64(200) {
			pts = append(pts,
				registry.Metric{Name: "loss", Step: step, Value: 1 / (1 + float64(step)*(0.02+0.02*float64(i)))},
				registry.Metric{Name: "auc", Step: step, Value: 0.5 + 0.4*float64(step)/(200+float64(i*50))})
		}
		require.NoError(t, reg.LogMetrics(ctx, run.ID, pts))
		_, err = reg.FinishTrainingRun(ctx, run.ID, registry.TrainingFinished, 0)
		require.NoError(t, err)
		f.runs = append(f.runs, run.ID)
	}
	// Model versions from the first two runs; aliases moved and removed.
	for i := range 2 {
		_, err := reg.CreateModelVersion(ctx, registry.ModelVersion{Project: project, Name: "churn", RunID: f.runs[i], ArtifactURI: fmt.Sprintf("models/churn/%d/model.onnx", i+1),
			Runtime: "onnx", FeatureService: "churn_v1", CreatedBy: "carol"})
		require.NoError(t, err)
	}
	for _, u := range []registry.AliasUpdate{{Alias: "production", Version: 1, By: "alice"}, {Alias: "staging", Version: 2, By: "bob"}, {Alias: "production", Version: 2, By: "carol"}} {
		u.Project, u.Name = project, "churn"
		_, err := reg.SetModelAlias(ctx, u)
		require.NoError(t, err)
	}
	require.NoError(t, reg.DeleteModelAlias(ctx, project, "churn", "staging", "dave"))
	return f
}

// writeDataset writes version v of a dataset snapshot (v changes the values and adds a column
// from v2) and registers it.
func (f *fixture) writeDataset(t testing.TB, name string, v int) {
	t.Helper()
	f.writeDatasetWith(t, name, v, nil)
}

// writeDatasetWith is writeDataset with the lineage changed by edit (when not nil).
func (f *fixture) writeDatasetWith(t testing.TB, name string, v int, edit func(*training.Lineage)) {
	t.Helper()
	ctx := context.Background()
	fields := []arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
		{Name: "label", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "user_stats__clicks_7d", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}
	cols := []training.ColumnInfo{
		{Name: "user_id", Type: "int64", Role: "entity"},
		{Name: "event_timestamp", Type: "timestamp[us, tz=UTC]", Role: "entity"},
		{Name: "label", Type: "bool", Role: "entity"},
		{Name: "user_stats__clicks_7d", Type: "int64", Nullable: true, Role: "feature", Feature: "user_stats:clicks_7d"},
	}
	if v >= 2 {
		fields = append(fields, arrow.Field{Name: "user_stats__spend_30d", Type: arrow.PrimitiveTypes.Float64, Nullable: true})
		cols = append(cols, training.ColumnInfo{Name: "user_stats__spend_30d", Type: "double", Nullable: true, Role: "feature", Feature: "user_stats:spend_30d"})
	}
	schema := arrow.NewSchema(fields, nil)
	const rows = 500
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	t0 := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.Add(time.Duration(i) * time.Minute).UnixMicro()))
		b.Field(2).(*array.BooleanBuilder).Append(i%3 == 0)
		if i%(10+v) == 0 {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.Int64Builder).Append(int64((i * i * v) % 97))
		}
		if v >= 2 {
			b.Field(4).(*array.Float64Builder).Append(float64(i%50) * 1.5)
		}
	}
	rec := b.NewRecordBatch()
	done := false
	next := func(context.Context) (arrow.RecordBatch, error) {
		if done {
			return nil, io.EOF
		}
		done = true
		return rec, nil
	}
	lineage := &training.Lineage{FeatureService: training.ObjectRef{Name: "churn_v1", Version: 1},
		FeatureViews: []training.ViewInput{{ObjectRef: training.ObjectRef{Name: "user_stats", Version: v}, OfflineSnapshotID: int64(7000 + v)},
			{ObjectRef: training.ObjectRef{Name: "merchant_stats", Version: 1}, OfflineSnapshotID: 8001}},
		Entities: training.EntityInput{Kind: "file", Path: "data/entities.parquet", SHA256: "ab12cd34ef56", Rows: rows},
		Engine:   "local", QuiverVersion: "test"}
	if edit != nil {
		edit(lineage)
	}
	staged, err := training.WriteStaged(ctx, f.warehouse, schema, cols, lineage, next, training.WriteOptions{})
	require.NoError(t, err)
	loc := fmt.Sprintf("projects/%s/datasets/%s-v%d", project, name, v)
	require.NoError(t, staged.Publish(filepath.Join(f.warehouse, filepath.FromSlash(loc))))
	_, err = f.reg.CreateDataset(ctx, registry.Dataset{Project: project, Name: name, ContentID: staged.ContentID, Location: loc,
		Rows: rows, Manifest: staged.Raw, CreatedBy: "carol"})
	require.NoError(t, err)
}

func (f *fixture) server(t testing.TB) *Server {
	t.Helper()
	s, err := New(Options{Project: project, Registry: f.reg, Warehouse: f.warehouse,
		Now: func() time.Time { return time.Date(2026, 11, 4, 12, 0, 0, 0, time.UTC) }})
	require.NoError(t, err)
	return s
}
