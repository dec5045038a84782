package iceberg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// LegacyNamespace held every project's view tables before each project had a namespace of
// its own.
const LegacyNamespace = DefaultNamespace

// ProjectNamespace is the Iceberg namespace of a project's view tables: "quiver_" and the
// project name in lower case (Trino and most engines fold identifiers to lower case). A name
// with upper-case letters also gets "_" and 8 hex digits of its SHA-256, so that "Shop" and
// "shop" never share a namespace. Project names are letters, digits and '_' (see
// definitions.ValidName); anything else is replaced by '_' and likewise disambiguated.
func ProjectNamespace(project string) string {
	var b strings.Builder
	changed := false
	for _, r := range project {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
			changed = true
		default:
			b.WriteByte('_')
			changed = true
		}
	}
	ns := "quiver_" + b.String()
	if changed {
		sum := sha256.Sum256([]byte(project))
		ns += "_" + hex.EncodeToString(sum[:4])
	}
	return ns
}

// OwnsTable reports whether a legacy table belongs to the caller's project, given the view it
// holds and the materialization run id recorded in its current snapshot's summary.
type OwnsTable func(ctx context.Context, view, runID string) (bool, error)

// AdoptLegacyTables moves the view tables of the store's project out of LegacyNamespace into
// the store's own namespace (a catalog rename: data and metadata files stay where they are),
// so that a warehouse written before projects had namespaces keeps its history. A legacy table
// is moved only when owns says its current snapshot was written by this project and the
// project's namespace has no table of that name; tables of other projects, and empty ones,
// stay. It returns the views moved. It is safe to run concurrently: a table is renamed at most
// once.
func (s *Store) AdoptLegacyTables(ctx context.Context, owns OwnsTable) ([]string, error) {
	legacy := table.Identifier{LegacyNamespace}
	if strings.Join(s.ns, ".") == LegacyNamespace {
		return nil, nil
	}
	ok, err := s.cat.cat.CheckNamespaceExists(ctx, legacy)
	if err != nil {
		return nil, fmt.Errorf("%s: check namespace %s: %w", s.cat, LegacyNamespace, err)
	}
	if !ok {
		return nil, nil
	}
	var idents []table.Identifier
	for id, err := range s.cat.cat.ListTables(ctx, legacy) {
		if err != nil {
			return nil, fmt.Errorf("%s: list tables of %s: %w", s.cat, LegacyNamespace, err)
		}
		idents = append(idents, id)
	}
	var moved []string
	for _, id := range idents {
		view := id[len(id)-1]
		if exists, err := s.cat.cat.CheckTableExists(ctx, s.Identifier(view, 1)); err != nil {
			return moved, fmt.Errorf("%s: check table %s: %w", s.cat, s.tableName(view, 1), err)
		} else if exists {
			continue
		}
		tbl, err := s.cat.cat.LoadTable(ctx, id)
		if errors.Is(err, catalog.ErrNoSuchTable) {
			continue // moved concurrently
		}
		if err != nil {
			return moved, fmt.Errorf("load legacy offline table %s: %w", strings.Join(id, "."), err)
		}
		snap := tbl.CurrentSnapshot()
		if snap == nil || snap.Summary == nil {
			continue
		}
		mine, err := owns(ctx, view, snap.Summary.Properties[SummaryRunID])
		if err != nil {
			return moved, fmt.Errorf("owner of legacy offline table %s: %w", strings.Join(id, "."), err)
		}
		if !mine {
			continue
		}
		if _, err := s.cat.cat.RenameTable(ctx, id, s.Identifier(view, 1)); err != nil {
			if errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, catalog.ErrTableAlreadyExists) {
				continue // another process moved it first
			}
			return moved, fmt.Errorf("move legacy offline table %s to %s: %w", strings.Join(id, "."), s.tableName(view, 1), err)
		}
		moved = append(moved, view)
	}
	return moved, nil
}
