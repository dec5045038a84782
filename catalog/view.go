package catalog

import (
	"fmt"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
)

// View is a feature view resolved against the definitions it was applied with: everything
// a package needs to read or write its data. It is immutable.
type View struct {
	Name   string
	Def    *definitions.FeatureView
	Source *definitions.Source
	// Entities are the view's entities, in the order the view names them.
	Entities []definitions.Entity
	// Generation is the view's current definition generation (1 or more): its data is that
	// generation's, in that generation's offline table and online rows.
	Generation int
	// Schema is the view's canonical offline schema, with Generation set.
	Schema offline.ViewSchema
	// Online is the view in the online store, at Generation; nil for a view with online: false.
	Online *online.View
	// Fields name the source's columns that hold the event and created times.
	Fields offline.Fields
	// Ref is the view's applied version and hash.
	Ref Ref
}

// NewView resolves feature view fv of repo at the given definition generation (values below
// 1 mean the first). It is the one resolver of a feature view; Snapshot resolves each of its
// views with it once.
func NewView(project string, repo *definitions.Repo, fv *definitions.FeatureView, generation int, ref Ref) (*View, error) {
	v := &View{Name: fv.Name, Def: fv, Source: repo.Source(fv.Source), Generation: max(generation, 1), Ref: ref}
	byName := map[string]*definitions.Entity{}
	for _, name := range fv.Entities {
		e := repo.Entity(name)
		if e == nil {
			return nil, fmt.Errorf("view %q: entity %q: %w", fv.Name, name, definitions.ErrInvalid)
		}
		byName[name] = e
		v.Entities = append(v.Entities, *e)
	}
	vs, err := offline.NewViewSchema(fv, byName)
	if err != nil {
		return nil, err
	}
	vs.Generation = v.Generation
	v.Schema = vs
	if v.Source != nil {
		v.Fields = offline.Fields{Timestamp: v.Source.TimestampField, Created: v.Source.CreatedTimestampField}
	}
	if fv.Online {
		ov, err := online.NewView(project, fv, v.Entities)
		if err != nil {
			return nil, err
		}
		v.Online = ov.WithGeneration(v.Generation)
	}
	return v, nil
}

// Push reports whether the view's rows arrive by push or stream (a push or a kafka source)
// rather than from materialization.
func (v *View) Push() bool { return v.Source.IsPush() }

// Kafka reports whether the view's rows are streamed from a Kafka source.
func (v *View) Kafka() bool { return v.Source != nil && v.Source.Kafka != nil }

// Materialized reports whether materialization loads the view from its source: every view
// but those whose rows are pushed or streamed.
func (v *View) Materialized() bool { return !v.Push() }
