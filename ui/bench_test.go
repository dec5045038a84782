package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
)

// Scale of BenchmarkPages: the 10,000 runs, 1,000 feature views and 100,000 metric
// points per run. Every run has its params, tags and a few points; the runs the benchmark
// opens (one run page, a comparison of two) have 100,000 points of each of their two
// metrics. Seeding 10^9 points for every run would only grow the metrics index, whose
// lookups are by (run, name) and do not depend on other runs' points.
const (
	benchRuns        = 10_000
	benchViews       = 1_000
	benchPointsOfRun = 100_000
)

// seedScale fills a registry at the benchmark's scale.
func seedScale(b *testing.B) (*fixture, []registry.TrainingRunID) {
	b.Helper()
	ctx := context.Background()
	f := &fixture{reg: openRegistry(b), warehouse: b.TempDir()}
	reg := f.reg
	objs := []definitions.Object{
		&definitions.Entity{Name: "user", JoinKeys: []definitions.Field{field("user_id", "int64", "")}},
		&definitions.Source{Name: "events", Parquet: &definitions.ParquetSource{Path: "data/events.parquet"}, TimestampField: "event_ts"},
	}
	var refs []definitions.FeatureRef
	for i := range benchViews {
		fv := &definitions.FeatureView{Name: fmt.Sprintf("view_%04d", i), Entities: []string{"user"}, Source: "events", Online: true,
			Description: fmt.Sprintf("Counters of family %d for the %d-th product line.", i%37, i),
			Tags:        map[string]string{"owner": fmt.Sprintf("team_%d", i%10), "domain": fmt.Sprintf("d%d", i%5)}}
		for j := range 10 {
			fv.Features = append(fv.Features, field(fmt.Sprintf("feature_%04d_%d", i, j), "float64", fmt.Sprintf("Signal %d of view %d", j, i)))
		}
		objs = append(objs, fv)
		if i%100 == 0 {
			refs = append(refs, definitions.FeatureRef{View: fv.Name, Feature: "*"})
		}
	}
	objs = append(objs, &definitions.FeatureService{Name: "svc", Features: refs},
		&definitions.Model{Name: "churn", FeatureService: "svc", Runtime: "onnx"},
		&definitions.TrainingJob{Name: "job_0", FeatureService: "svc", Command: []string{"train"}})
	apply(b, reg, "alice", objs...)
	for i, view := range []string{"view_0000", "view_0500"} {
		for k := range 50 {
			run, err := reg.StartRun(ctx, project, view, time.Unix(int64(k)*3600, 0), time.Unix(int64(k+1)*3600, 0))
			require.NoError(b, err)
			_, err = reg.FinishRun(ctx, run.ID, registry.RunResult{Status: registry.RunSucceeded, RowsWritten: 100, OfflineSnapshotID: int64(1000*i + k + 1)})
			require.NoError(b, err)
		}
	}
	f.writeDataset(b, "train", 1)

	start := time.Now()
	var ids []registry.TrainingRunID
	for i := range benchRuns {
		run, err := reg.CreateTrainingRun(ctx, registry.TrainingRun{Project: project, Job: fmt.Sprintf("job_%d", i%20), DatasetName: "train", DatasetVersion: 1,
			ID: registry.TrainingRunID(fmt.Sprintf("run-%05d", i))})
		require.NoError(b, err)
		require.NoError(b, reg.SetRunParams(ctx, run.ID, map[string]string{"lr": fmt.Sprint(0.001 * float64(1+i%7)), "epochs": "20"}))
		require.NoError(b, reg.SetRunTags(ctx, run.ID, map[string]string{"team": fmt.Sprintf("t%d", i%4)}))
		require.NoError(b, reg.LogMetrics(ctx, run.ID, []registry.Metric{{Name: "loss", Step: 0, Value: 1}, {Name: "loss", Step: 1, Value: 0.5}}))
		if i%3 != 0 {
			_, err = reg.FinishTrainingRun(ctx, run.ID, registry.TrainingFinished, 0)
			require.NoError(b, err)
		}
		ids = append(ids, run.ID)
	}
	b.Logf("seeded %d runs in %s", benchRuns, time.Since(start).Round(time.Second))
	start = time.Now()
	big := ids[:3]
	for r, id := range big {
		batch := make([]registry.Metric, 0, registry.MaxMetricPage)
		for step := int64(2); step < benchPointsOfRun+2; step++ {
			batch = append(batch, registry.Metric{Name: "loss", Step: step, Value: 1 / (1 + float64(step)*float64(r+1)/1000)},
				registry.Metric{Name: "acc", Step: step, Value: float64(step) / benchPointsOfRun})
			if len(batch) >= registry.MaxMetricPage {
				require.NoError(b, reg.LogMetrics(ctx, id, batch))
				batch = batch[:0]
			}
		}
		require.NoError(b, reg.LogMetrics(ctx, id, batch))
	}
	b.Logf("seeded 2 x %d points for each of %d runs in %s", benchPointsOfRun, len(big), time.Since(start).Round(time.Second))
	for i := range 3 {
		_, err := reg.CreateModelVersion(ctx, registry.ModelVersion{Project: project, Name: "churn", RunID: ids[i], ArtifactURI: "m.onnx", FeatureService: "svc"})
		require.NoError(b, err)
		_, err = reg.SetModelAlias(ctx, registry.AliasUpdate{Project: project, Name: "churn", Alias: "production", Version: i + 1, By: "alice"})
		require.NoError(b, err)
	}
	return f, big
}

// BenchmarkPages measures the server time of each page (handler, registry queries and
// rendering; no network) at the scale above. Results: docs/BENCHMARKS.md.
//
//	go test ./ui -run '^$' -bench BenchmarkPages -benchtime 20x
func BenchmarkPages(b *testing.B) {
	f, big := seedScale(b)
	s, err := New(Options{Project: project, Registry: f.reg, Warehouse: f.warehouse})
	require.NoError(b, err)
	pages := []struct{ name, path string }{
		{"catalog", "/"},
		{"catalog_search", "/?q=feature_0500_3"},
		{"catalog_filter_page", "/?owner=team_3&kind=feature_view&sort=-updated&page=2"},
		{"feature_view", "/views/view_0500"},
		{"object_service", "/objects/feature_service/svc"},
		{"runs", "/runs"},
		{"runs_deep_page", "/runs?page=180"},
		{"runs_filtered", "/runs?job=job_3&status=FINISHED&tag=team%3Dt3&sort=job"},
		{"run_100k_points", "/runs/" + string(big[0])},
		{"compare_2x100k_points", "/runs/compare?id=" + string(big[0]) + "&id=" + string(big[1])},
		{"compare_3x100k_points_acc", "/runs/compare?metric=acc&id=" + string(big[0]) + "&id=" + string(big[1]) + "&id=" + string(big[2])},
		{"models", "/models"},
		{"model", "/models/churn"},
		{"model_lineage", "/models/churn/v/1"},
		{"datasets", "/datasets"},
		{"dataset", "/datasets/train/v/1"},
	}
	// The first catalog request after an apply reads and decodes every definition; later
	// ones use the list cached for the registry revision.
	b.Run("catalog_after_apply", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.catalogC.mu.Lock()
			s.catalogC.loaded = false
			s.catalogC.mu.Unlock()
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("/: %d", rec.Code)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
	})
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p.path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", p.path, rec.Code, rec.Body.String())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
}
