package serving

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/transform"
)

// Definitions is what the server serves from one catalog snapshot: the snapshot's resolved
// views, each feature service's resolved features and the compiled on-demand programs. The
// server swaps it atomically when the catalog moves to a new revision, so a request sees one
// consistent set from start to end.
type Definitions struct {
	Project  string
	Revision int64
	Repo     *definitions.Repo
	// Versions holds each object's registry version, by kind and name (models use it as
	// their version until model versions are registered).
	Versions map[definitions.Kind]map[string]int
	// Catalog is the snapshot served.
	Catalog *catalog.Snapshot

	keys map[string]bool // every join key name of every entity
	// services caches each service's resolved features.
	services map[string][]definitions.ResolvedFeature
	// plans caches the read plan of each feature service (key: name, full names flag).
	plans sync.Map
	// transforms holds the compiled programs of the on-demand views.
	transforms *transform.Set
}

// NewDefinitions builds what is served from a validated repo, every view at its first
// generation (tests, and definitions not read from a registry). versions may be nil.
func NewDefinitions(project string, revision int64, repo *definitions.Repo, versions map[definitions.Kind]map[string]int) (*Definitions, error) {
	snap, err := catalog.New(project, revision, repo, versions, nil, nil)
	if err != nil {
		return nil, err
	}
	return FromCatalog(snap)
}

// FromCatalog builds what is served from a catalog snapshot.
func FromCatalog(snap *catalog.Snapshot) (*Definitions, error) {
	repo := snap.Repo
	d := &Definitions{
		Project:  snap.Project,
		Revision: snap.Revision,
		Repo:     repo,
		Versions: snap.Versions,
		Catalog:  snap,
		keys:     map[string]bool{},
		services: map[string][]definitions.ResolvedFeature{},
	}
	for _, e := range repo.Entities {
		for _, k := range e.JoinKeys {
			d.keys[k.Name] = true
		}
	}
	ts, err := transform.Compile(repo)
	if err != nil {
		return nil, fmt.Errorf("definitions revision %d: %w", snap.Revision, err)
	}
	d.transforms = ts
	for _, s := range repo.FeatureServices {
		fs, err := repo.ResolveService(s.Name)
		if err != nil {
			return nil, fmt.Errorf("definitions revision %d: feature service %q: %w", snap.Revision, s.Name, err)
		}
		d.services[s.Name] = fs
	}
	return d, nil
}

// View returns the online view of a feature view (at its current generation: rows of an
// earlier definition generation are never served), or nil for a view that is unknown or
// not online.
func (d *Definitions) View(name string) *online.View {
	if v, err := d.Catalog.View(name); err == nil {
		return v.Online
	}
	return nil
}

// LoadDefinitions reads the project's applied definitions from the registry (one consistent
// read) and builds what is served.
func LoadDefinitions(ctx context.Context, reg catalog.Reader, project string) (*Definitions, error) {
	snap, err := catalog.Load(ctx, reg, project)
	if err != nil {
		return nil, err
	}
	return FromCatalog(snap)
}

// definitionsHolder is the current Definitions behind an atomic pointer.
type definitionsHolder struct {
	cur atomic.Pointer[Definitions]
}

func (h *definitionsHolder) get() (*Definitions, error) {
	d := h.cur.Load()
	if d == nil {
		return nil, ErrNotReady
	}
	return d, nil
}
