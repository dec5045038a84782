package ingest

import (
	"fmt"
	"sort"
	"strings"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
)

// View is a push-enabled feature view as ingestion needs it.
type View struct {
	Name string
	// Schema is the canonical schema, Generation set to the view's current generation.
	Schema offline.ViewSchema
	// Online is the view in the online store; nil for a view with online: false.
	Online *online.View
	// Fields name the columns of pushed files that hold the event and created times (the
	// source's timestamp_field and created_timestamp_field).
	Fields offline.Fields
}

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

// NewViewSet resolves the push views of a repository. generation gives each view's current
// definition generation.
func NewViewSet(project string, repo *definitions.Repo, generation func(view string) int) (*ViewSet, error) {
	set := &ViewSet{views: map[string]*View{}, other: map[string]bool{}}
	for _, fv := range repo.FeatureViews {
		src := repo.Source(fv.Source)
		if !src.IsPush() {
			set.other[fv.Name] = true
			continue
		}
		v, err := NewView(project, repo, fv, generation(fv.Name))
		if err != nil {
			return nil, err
		}
		set.views[fv.Name] = v
		set.all = append(set.all, fv.Name)
	}
	sort.Strings(set.all)
	return set, nil
}

// NewView resolves one view of a repository for ingestion at the given generation.
func NewView(project string, repo *definitions.Repo, fv *definitions.FeatureView, generation int) (*View, error) {
	entities := map[string]*definitions.Entity{}
	var ents []definitions.Entity
	for _, name := range fv.Entities {
		e := repo.Entity(name)
		if e == nil {
			return nil, fmt.Errorf("view %q: entity %q: %w", fv.Name, name, definitions.ErrInvalid)
		}
		entities[name] = e
		ents = append(ents, *e)
	}
	vs, err := offline.NewViewSchema(fv, entities)
	if err != nil {
		return nil, err
	}
	vs.Generation = max(generation, 1)
	v := &View{Name: fv.Name, Schema: vs}
	if src := repo.Source(fv.Source); src != nil {
		v.Fields = offline.Fields{Timestamp: src.TimestampField, Created: src.CreatedTimestampField}
	}
	if fv.Online {
		ov, err := online.NewView(project, fv, ents)
		if err != nil {
			return nil, err
		}
		v.Online = ov.WithGeneration(vs.Generation)
	}
	return v, nil
}
