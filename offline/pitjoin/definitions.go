package pitjoin

import (
	"fmt"
	"time"

	"github.com/quiverfs/quiver/definitions"
)

// ViewsFor turns a service's resolved features (definitions.Repo.ResolveService) into Join's
// views: one per feature view, in order of first appearance, with the view's join keys (from
// its entities), TTL and the requested features in service order. open supplies each view's
// feature rows (typically its offline table at a pinned snapshot).
func ViewsFor(repo *definitions.Repo, features []definitions.ResolvedFeature, open func(*definitions.FeatureView) OpenFunc) ([]View, error) {
	var views []View
	index := map[string]int{}
	for _, f := range features {
		if f.View == nil {
			return nil, fmt.Errorf("feature %q has no view: %w", f.Feature.Name, ErrInvalidInput)
		}
		i, ok := index[f.View.Name]
		if !ok {
			keys := repo.JoinKeys(f.View)
			if len(keys) == 0 {
				return nil, fmt.Errorf("view %q: no join keys: %w", f.View.Name, ErrInvalidInput)
			}
			v := View{Name: f.View.Name, TTL: time.Duration(f.View.TTL), Open: open(f.View)}
			for _, k := range keys {
				v.JoinKeys = append(v.JoinKeys, k.Name)
			}
			i = len(views)
			index[f.View.Name] = i
			views = append(views, v)
		}
		if f.View.IsAggregation() {
			a, err := aggregationFor(f.View, f.Feature.Name)
			if err != nil {
				return nil, err
			}
			views[i].Aggregations = append(views[i].Aggregations, a)
			continue
		}
		views[i].Features = append(views[i].Features, f.Feature.Name)
	}
	return views, nil
}

// aggregationFor is the engine's Aggregation for a feature of an aggregation view.
func aggregationFor(v *definitions.FeatureView, name string) (Aggregation, error) {
	for _, af := range v.AggFeatures() {
		if af.Name == name {
			return Aggregation{Name: af.Name, Column: af.Column.Name, Function: string(af.Function), Window: af.Window}, nil
		}
	}
	return Aggregation{}, fmt.Errorf("view %q has no aggregation feature %q: %w", v.Name, name, ErrInvalidInput)
}

// AggregationsFor returns the engine's aggregations for the named features of an aggregation
// view (names that are not its aggregation features are skipped), and the event columns they
// read.
func AggregationsFor(v *definitions.FeatureView, features []string) ([]Aggregation, []string) {
	var aggs []Aggregation
	for _, name := range features {
		if a, err := aggregationFor(v, name); err == nil {
			aggs = append(aggs, a)
		}
	}
	return aggs, aggColumns(aggs)
}
