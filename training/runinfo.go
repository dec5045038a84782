package training

import (
	"context"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
)

// RunDefinitions lists the applied definition versions a job's run depends on, by
// "kind/name": the job, its feature service, the model it registers, and each feature view
// (with its source) and on-demand view (with the request sources and views it reads) the
// service resolves to (RunInfo.Definitions).
func RunDefinitions(snap *catalog.Snapshot, job *definitions.TrainingJob) map[string]int {
	repo := snap.Repo
	out := map[string]int{}
	add := func(kind definitions.Kind, name string) {
		if v, ok := snap.Versions[kind][name]; ok {
			out[string(kind)+"/"+name] = v
		}
	}
	add(definitions.KindTrainingJob, job.Name)
	add(definitions.KindFeatureService, job.FeatureService)
	if job.RegisterModel != "" {
		add(definitions.KindModel, job.RegisterModel)
	}
	view := func(name string) {
		if fv := repo.FeatureView(name); fv != nil {
			add(definitions.KindFeatureView, name)
			add(definitions.KindSource, fv.Source)
		}
	}
	feats, err := repo.ResolveService(job.FeatureService)
	if err != nil {
		return out
	}
	for _, f := range feats {
		if f.OnDemand == nil {
			view(f.View.Name)
			continue
		}
		add(definitions.KindOnDemandView, f.OnDemand.Name)
		for _, in := range f.OnDemand.Inputs {
			if repo.RequestSource(in) != nil {
				add(definitions.KindRequestSource, in)
			} else {
				view(in)
			}
		}
	}
	return out
}

// MetricReader reads a run's metric points.
type MetricReader interface {
	Metrics(ctx context.Context, id registry.TrainingRunID, q registry.MetricQuery) ([]registry.Metric, error)
}

// MetricValues reads the whole history of one metric of a run, page by page.
func MetricValues(ctx context.Context, reg MetricReader, id registry.TrainingRunID, name string) ([]float64, error) {
	const page = 5000
	var out []float64
	var after int64
	for {
		points, err := reg.Metrics(ctx, id, registry.MetricQuery{Name: name, AfterSeq: after, Limit: page})
		if err != nil {
			return nil, err
		}
		for _, p := range points {
			out = append(out, p.Value)
			after = p.Seq
		}
		if len(points) < page {
			return out, nil
		}
	}
}
