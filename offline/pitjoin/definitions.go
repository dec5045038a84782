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
		views[i].Features = append(views[i].Features, f.Feature.Name)
	}
	return views, nil
}
