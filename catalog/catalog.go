// Package catalog is a project's applied definitions at one registry revision, loaded once:
// the objects (a definitions.Repo), their versions and content hashes, and every feature
// view's definition generation, all from one consistent registry read
// (registry.DefinitionReader.ReadApplied). It is the one place a feature view is resolved
// (View: its definition, source, entities, generation, offline schema and online view), and
// its Watcher is the one poller that tells a process of a new revision.
//
// A Snapshot is immutable: serving, ingestion, materialization and dataset builds each work
// on one from start to end, so an apply that lands meanwhile changes nothing they read.
package catalog

import (
	"context"
	"fmt"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
)

// Reader is what Load and Watcher read of the registry.
type Reader interface {
	CurrentRevision(ctx context.Context, project string) (int64, error)
	ReadApplied(ctx context.Context, project string) (registry.AppliedState, error)
}

// Ref names one applied version of an object: the lineage of what was read.
type Ref struct {
	Kind    definitions.Kind
	Name    string
	Version int
	Hash    string
}

// Snapshot is a project's applied definitions at one revision.
type Snapshot struct {
	Project  string
	Revision int64
	Repo     *definitions.Repo
	// Versions and Hashes are each live object's registry version and content hash, by kind
	// and name.
	Versions map[definitions.Kind]map[string]int
	Hashes   map[definitions.Kind]map[string]string
	// Generations are the views' definition generations past the first, by name (Generation
	// reads them). Data of another generation is never read.
	Generations map[string]int

	views map[string]*View
}

// Load reads the project's applied definitions in one consistent registry read and checks
// them as a whole. A project never applied to gives an empty snapshot at revision 0.
func Load(ctx context.Context, reg Reader, project string) (*Snapshot, error) {
	st, err := reg.ReadApplied(ctx, project)
	if err != nil {
		return nil, err
	}
	return FromState(st)
}

// FromState decodes a registry's applied state into a snapshot.
func FromState(st registry.AppliedState) (*Snapshot, error) {
	versions := map[definitions.Kind]map[string]int{}
	hashes := map[definitions.Kind]map[string]string{}
	objs := make([]definitions.Object, 0, len(st.Objects))
	for _, o := range st.Objects {
		if o.Deleted {
			continue
		}
		d, err := definitions.DecodeSpec(o.Kind, o.Spec)
		if err != nil {
			return nil, fmt.Errorf("registry %s %q v%d: %w", o.Kind.Label(), o.Name, o.Version, err)
		}
		objs = append(objs, d)
		if versions[o.Kind] == nil {
			versions[o.Kind], hashes[o.Kind] = map[string]int{}, map[string]string{}
		}
		versions[o.Kind][o.Name], hashes[o.Kind][o.Name] = o.Version, o.Hash
	}
	repo, err := definitions.NewRepo(objs)
	if err != nil {
		return nil, fmt.Errorf("definitions of project %q in the registry (revision %d) are inconsistent: %w", st.Project, st.Revision, err)
	}
	return New(st.Project, st.Revision, repo, versions, hashes, st.Generations)
}

// New makes a snapshot of a checked repo (tests, and definitions not read from a registry).
// versions, hashes and generations may be nil: every object is then at version 0 with no
// hash, every view at its first generation.
func New(project string, revision int64, repo *definitions.Repo, versions map[definitions.Kind]map[string]int,
	hashes map[definitions.Kind]map[string]string, generations map[string]int) (*Snapshot, error) {
	s := &Snapshot{Project: project, Revision: revision, Repo: repo, Versions: versions, Hashes: hashes,
		Generations: generations, views: make(map[string]*View, len(repo.FeatureViews))}
	if s.Versions == nil {
		s.Versions = map[definitions.Kind]map[string]int{}
	}
	if s.Hashes == nil {
		s.Hashes = map[definitions.Kind]map[string]string{}
	}
	if s.Generations == nil {
		s.Generations = map[string]int{}
	}
	for _, fv := range repo.FeatureViews {
		v, err := NewView(project, repo, fv, s.Generation(fv.Name), s.Ref(definitions.KindFeatureView, fv.Name))
		if err != nil {
			return nil, fmt.Errorf("definitions of project %q (revision %d): %w", project, revision, err)
		}
		s.views[fv.Name] = v
	}
	return s, nil
}

// Generation is the current definition generation of feature view name (1 when it never
// started another).
func (s *Snapshot) Generation(name string) int { return registry.Generation(s.Generations, name) }

// Ref is the applied version of an object; Version 0 when it is not applied.
func (s *Snapshot) Ref(kind definitions.Kind, name string) Ref {
	return Ref{Kind: kind, Name: name, Version: s.Versions[kind][name], Hash: s.Hashes[kind][name]}
}

// View returns the resolved feature view name, or an error (errkind.Invalid) that names the
// applied views.
func (s *Snapshot) View(name string) (*View, error) {
	if v, ok := s.views[name]; ok {
		return v, nil
	}
	return nil, s.Repo.UnknownError(definitions.KindFeatureView, name)
}

// Views returns the feature views in the order they are defined; with names, those views in
// that order (an error for a name that is not applied).
func (s *Snapshot) Views(names ...string) ([]*View, error) {
	if len(names) == 0 {
		out := make([]*View, len(s.Repo.FeatureViews))
		for i, fv := range s.Repo.FeatureViews {
			out[i] = s.views[fv.Name]
		}
		return out, nil
	}
	out := make([]*View, len(names))
	for i, n := range names {
		v, err := s.View(n)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
