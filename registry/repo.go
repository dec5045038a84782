package registry

import (
	"context"
	"fmt"

	"github.com/quiverfs/quiver/definitions"
)

// LoadRepo reads a project's applied definitions from the registry and checks them as a
// whole. It returns the registry revision they were read at.
func LoadRepo(ctx context.Context, reg DefinitionReader, project string) (*definitions.Repo, int64, error) {
	rev, err := reg.CurrentRevision(ctx, project)
	if err != nil {
		return nil, 0, fmt.Errorf("read registry revision: %w", err)
	}
	objs, err := reg.ListObjects(ctx, project, "")
	if err != nil {
		return nil, 0, fmt.Errorf("read definitions from registry: %w", err)
	}
	decoded := make([]definitions.Object, 0, len(objs))
	for _, o := range objs {
		d, err := definitions.DecodeSpec(o.Kind, o.Spec)
		if err != nil {
			return nil, 0, fmt.Errorf("registry %s %q v%d: %w", o.Kind.Label(), o.Name, o.Version, err)
		}
		decoded = append(decoded, d)
	}
	repo, err := definitions.NewRepo(decoded)
	if err != nil {
		return nil, 0, fmt.Errorf("definitions in the registry (revision %d) are inconsistent: %w", rev, err)
	}
	return repo, rev, nil
}
