package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/quiverfs/quiver/registry"
)

// ClaimNamespace implements registry.NamespaceStore.
func (s *Store) ClaimNamespace(ctx context.Context, namespace, project string) error {
	if namespace == "" || project == "" {
		return fmt.Errorf("claim namespace %q for project %q: empty name: %w", namespace, project, registry.ErrInvalid)
	}
	var owner string
	err := s.inTx(ctx, func(tx q) error {
		if _, err := tx.exec(ctx, `INSERT INTO namespace_owners (namespace, project, claimed_at) VALUES (?, ?, ?)
			ON CONFLICT (namespace) DO NOTHING`, namespace, project, tx.d.encTime(Now())); err != nil {
			return err
		}
		return tx.row(ctx, `SELECT project FROM namespace_owners WHERE namespace = ?`, namespace).Scan(&owner)
	})
	if err != nil {
		return fmt.Errorf("claim namespace %s for project %q: %w", namespace, project, err)
	}
	if owner != project {
		return &registry.NamespaceOwnedError{Namespace: namespace, Owner: owner, Project: project}
	}
	return nil
}

// NamespaceOwner implements registry.NamespaceStore.
func (s *Store) NamespaceOwner(ctx context.Context, namespace string) (string, error) {
	var owner string
	err := s.q().row(ctx, `SELECT project FROM namespace_owners WHERE namespace = ?`, namespace).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("owner of namespace %s: %w", namespace, registry.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("owner of namespace %s: %w", namespace, err)
	}
	return owner, nil
}
