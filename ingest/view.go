package ingest

import (
	"sort"
	"strings"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
)

// View is a feature view as ingestion writes it: the catalog's resolved view (its canonical
// schema at its current generation, its online view, the source's timestamp fields).
type View struct{ *catalog.View }

// Views looks up push-enabled views by name.
type Views interface {
	// View returns the named view, ErrUnknownView or ErrNotPushable.
	View(name string) (*View, error)
}

// ViewSet is a fixed set of views.
type ViewSet struct {
	views map[string]*View
	all   []string
	other map[string]bool // applied views that are not push views
	// revision is the catalog revision of the views (0: not of a snapshot).
	revision int64
}

// View implements Views.
func (s *ViewSet) View(name string) (*View, error) {
	if v, ok := s.views[name]; ok {
		return v, nil
	}
	if s.other[name] {
		return nil, notPushablef("feature view %q: its source is not a push source (add a source with push: {})", name)
	}
	valid := "none"
	if len(s.all) > 0 {
		valid = strings.Join(s.all, ", ")
	}
	return nil, unknownViewf("feature view %q (push views: %s)", name, valid)
}

// Names lists the push views, sorted.
func (s *ViewSet) Names() []string { return s.all }

// Revision is the catalog revision the set was made of (0 when not made of a snapshot).
func (s *ViewSet) Revision() int64 { return s.revision }

// ViewSetOf is the push views (those of a push or kafka source) of a catalog snapshot.
func ViewSetOf(snap *catalog.Snapshot) *ViewSet {
	views, _ := snap.Views() // every view of a snapshot is resolved
	set := newViewSet(views)
	set.revision = snap.Revision
	return set
}

// NewViewSet resolves the push views of a repository; generation gives each view's current
// definition generation.
func NewViewSet(project string, repo *definitions.Repo, generation func(view string) int) (*ViewSet, error) {
	views := make([]*catalog.View, 0, len(repo.FeatureViews))
	for _, fv := range repo.FeatureViews {
		v, err := catalog.NewView(project, repo, fv, generation(fv.Name), catalog.Ref{})
		if err != nil {
			return nil, err
		}
		views = append(views, v)
	}
	return newViewSet(views), nil
}

func newViewSet(views []*catalog.View) *ViewSet {
	set := &ViewSet{views: map[string]*View{}, other: map[string]bool{}}
	for _, v := range views {
		if !v.Push() {
			set.other[v.Name] = true
			continue
		}
		set.views[v.Name] = &View{v}
		set.all = append(set.all, v.Name)
	}
	sort.Strings(set.all)
	return set
}

// NewView resolves one view of a repository for ingestion at the given generation.
func NewView(project string, repo *definitions.Repo, fv *definitions.FeatureView, generation int) (*View, error) {
	v, err := catalog.NewView(project, repo, fv, generation, catalog.Ref{})
	if err != nil {
		return nil, err
	}
	return &View{v}, nil
}
