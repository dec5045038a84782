package registry

import (
	"context"
	"fmt"

	"github.com/quiverfs/quiver/definitions"
)

// Applied is a project's applied definitions, checked as a whole.
type Applied struct {
	Repo *definitions.Repo
	// Revision is the registry revision they were read at.
	Revision int64
	// Versions is the version read of every object, by kind and name.
	Versions map[definitions.Kind]map[string]int
	// Generations is the definition generation of every feature view that moved past
	// generation 1 (registry.Generation reads it). Data of other generations is never read.
	Generations map[string]int
}

// Generation is the current definition generation of feature view name.
func (a *Applied) Generation(name string) int { return Generation(a.Generations, name) }

// LoadApplied reads the latest live version of every definition of a project and checks them
// as a whole.
func LoadApplied(ctx context.Context, reg DefinitionReader, project string) (*Applied, error) {
	rev, err := reg.CurrentRevision(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("read registry revision of project %q: %w", project, err)
	}
	objs, err := reg.ListObjects(ctx, project, "")
	if err != nil {
		return nil, fmt.Errorf("read definitions of project %q from the registry: %w", project, err)
	}
	// Generations are read after the objects: an apply landing in between shows as newer
	// generations with the older revision, which a poller of CurrentRevision reloads.
	gens, err := reg.Generations(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("read view generations of project %q: %w", project, err)
	}
	a := &Applied{Versions: map[definitions.Kind]map[string]int{}, Generations: gens}
	decoded := make([]definitions.Object, 0, len(objs))
	for _, o := range objs {
		if o.Deleted {
			continue
		}
		d, err := definitions.DecodeSpec(o.Kind, o.Spec)
		if err != nil {
			return nil, fmt.Errorf("registry %s %q v%d: %w", o.Kind.Label(), o.Name, o.Version, err)
		}
		decoded = append(decoded, d)
		if a.Versions[o.Kind] == nil {
			a.Versions[o.Kind] = map[string]int{}
		}
		a.Versions[o.Kind][o.Name] = o.Version
		// An apply that landed between the two reads shows in the objects: report its revision.
		rev = max(rev, o.Revision)
	}
	a.Revision = rev
	if a.Repo, err = definitions.NewRepo(decoded); err != nil {
		return nil, fmt.Errorf("definitions of project %q in the registry (revision %d) are inconsistent: %w", project, rev, err)
	}
	return a, nil
}
