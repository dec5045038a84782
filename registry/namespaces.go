package registry

import (
	"context"
	"fmt"

	"github.com/quiverfs/quiver/internal/errkind"
)

// NamespaceStore records which project owns each storage namespace: the Iceberg namespace of
// its view tables, which also names its warehouse folder (offline/iceberg.ProjectKey). A
// namespace is claimed by the first project that uses it and is never given to another, so
// that a project can refuse tables that another project's data lives in.
type NamespaceStore interface {
	// ClaimNamespace records project as namespace's owner when the namespace has none; it
	// is a no-op when project owns it already. When another project owns it, it returns a
	// *NamespaceOwnedError (matching ErrConflict) and records nothing. Of concurrent claims
	// of a free namespace exactly one wins.
	ClaimNamespace(ctx context.Context, namespace, project string) error
	// NamespaceOwner returns the project that owns namespace; ErrNotFound when none has
	// claimed it.
	NamespaceOwner(ctx context.Context, namespace string) (string, error)
}

// NamespaceOwnedError refuses a project a storage namespace that belongs to another project:
// the registry records the other project as its owner, or the namespace holds tables that
// the other project's materialization runs wrote. It matches ErrConflict.
type NamespaceOwnedError struct {
	Namespace string
	Owner     string // the project the namespace belongs to
	Project   string // the project refused
	// Tables are tables of the namespace the owner's runs wrote, when that is how the owner
	// is known (empty when the registry records the owner).
	Tables []string
}

func (e *NamespaceOwnedError) Error() string {
	if len(e.Tables) > 0 {
		return fmt.Sprintf("project %q cannot use offline namespace %s: its tables %v were written by project %q (an earlier Quiver mapped both projects there); open project %q once to move them to its own namespace, or drop them",
			e.Project, e.Namespace, e.Tables, e.Owner, e.Owner)
	}
	return fmt.Sprintf("project %q cannot use offline namespace %s: the registry records it as project %q's", e.Project, e.Namespace, e.Owner)
}

// Unwrap makes errors.Is(err, ErrConflict) and errors.Is(err, errkind.ProjectConflict) true.
func (e *NamespaceOwnedError) Unwrap() []error { return []error{ErrConflict, errkind.ProjectConflict} }
