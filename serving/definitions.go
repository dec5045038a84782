package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/transform"
)

// Definitions is one immutable snapshot of a project's applied definitions, with the online
// views built from them. The server swaps snapshots atomically when the registry changes, so
// a request sees one consistent set from start to end.
type Definitions struct {
	Project  string
	Revision int64
	Repo     *definitions.Repo
	// Versions holds each object's registry version, by kind and name (models use it as
	// their version until model versions are registered).
	Versions map[definitions.Kind]map[string]int

	views map[string]*online.View // online feature views by name
	keys  map[string]bool         // every join key name of every entity
	// services caches each service's resolved features.
	services map[string][]definitions.ResolvedFeature
	// plans caches the read plan of each feature service (key: name, full names flag).
	plans sync.Map
	// transforms holds the compiled programs of the on-demand views.
	transforms *transform.Set
}

// NewDefinitions builds a snapshot from a validated repo. versions may be nil.
func NewDefinitions(project string, revision int64, repo *definitions.Repo, versions map[definitions.Kind]map[string]int) (*Definitions, error) {
	return newDefinitions(project, revision, repo, versions, nil)
}

// newDefinitions is NewDefinitions reading each view's rows of its definition generation in
// generations (registry.Generation; nil: every view at its first).
func newDefinitions(project string, revision int64, repo *definitions.Repo, versions map[definitions.Kind]map[string]int, generations map[string]int) (*Definitions, error) {
	d := &Definitions{
		Project:  project,
		Revision: revision,
		Repo:     repo,
		Versions: versions,
		views:    map[string]*online.View{},
		keys:     map[string]bool{},
		services: map[string][]definitions.ResolvedFeature{},
	}
	if d.Versions == nil {
		d.Versions = map[definitions.Kind]map[string]int{}
	}
	entities := make([]definitions.Entity, len(repo.Entities))
	for i, e := range repo.Entities {
		entities[i] = *e
		for _, k := range e.JoinKeys {
			d.keys[k.Name] = true
		}
	}
	for _, fv := range repo.FeatureViews {
		v, err := online.NewView(project, fv, entities)
		if err != nil {
			return nil, fmt.Errorf("definitions revision %d: %w", revision, err)
		}
		// Rows written for an earlier definition generation are never served.
		d.views[fv.Name] = v.WithGeneration(registry.Generation(generations, fv.Name))
	}
	ts, err := transform.Compile(repo)
	if err != nil {
		return nil, fmt.Errorf("definitions revision %d: %w", revision, err)
	}
	d.transforms = ts
	for _, s := range repo.FeatureServices {
		fs, err := repo.ResolveService(s.Name)
		if err != nil {
			return nil, fmt.Errorf("definitions revision %d: feature service %q: %w", revision, s.Name, err)
		}
		d.services[s.Name] = fs
	}
	return d, nil
}

// View returns the online view of a feature view, or nil.
func (d *Definitions) View(name string) *online.View { return d.views[name] }

// LoadDefinitions reads every live object of project from the registry and builds a snapshot.
func LoadDefinitions(ctx context.Context, reg registry.DefinitionReader, project string) (*Definitions, error) {
	a, err := registry.LoadApplied(ctx, reg, project)
	if err != nil {
		return nil, err
	}
	return newDefinitions(project, a.Revision, a.Repo, a.Versions, a.Generations)
}

// definitionsHolder is the current snapshot behind an atomic pointer, and the loop that
// refreshes it.
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

// refreshLoop polls the registry revision every interval and reloads the definitions when it
// changed, until ctx is done. A failed reload keeps the current snapshot and is retried at the
// next tick. onSwap is called after each swap.
func refreshLoop(ctx context.Context, h *definitionsHolder, reg registry.DefinitionReader, project string, interval time.Duration, log *slog.Logger, m *metrics, onSwap func(old, cur *Definitions)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := refreshOnce(ctx, h, reg, project, log, m, onSwap); err != nil && ctx.Err() == nil {
			log.Warn("refresh definitions", "project", project, "err", err)
			m.refreshErrors.Inc()
		}
	}
}

func refreshOnce(ctx context.Context, h *definitionsHolder, reg registry.DefinitionReader, project string, log *slog.Logger, m *metrics, onSwap func(old, cur *Definitions)) error {
	old := h.cur.Load()
	rev, err := reg.CurrentRevision(ctx, project)
	if err != nil {
		return err
	}
	if old != nil && rev == old.Revision {
		return nil
	}
	d, err := LoadDefinitions(ctx, reg, project)
	if err != nil {
		return err
	}
	if old != nil && d.Revision == old.Revision {
		return nil
	}
	if !h.cur.CompareAndSwap(old, d) {
		return errors.New("definitions changed concurrently")
	}
	m.revision.Set(float64(d.Revision))
	log.Info("definitions loaded", "project", project, "revision", d.Revision,
		"views", len(d.Repo.FeatureViews), "services", len(d.Repo.FeatureServices), "models", len(d.Repo.Models))
	if onSwap != nil {
		onSwap(old, d)
	}
	return nil
}
