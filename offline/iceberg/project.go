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

	"github.com/quiverfs/quiver/offline"
)

// LegacyNamespace held every project's view tables before each project had a namespace of
// its own.
const LegacyNamespace = DefaultNamespace

// ProjectNamespace is the Iceberg namespace of a project's view tables: "quiver_" and the
// project's key (ProjectKey). Distinct projects never share one.
func ProjectNamespace(project string) string { return "quiver_" + ProjectKey(project) }

// ProjectKey is the name a project's storage is filed under: its Iceberg namespace is
// quiver_KEY and its warehouse folder projects/KEY. It is injective — no two project names
// share a key — and holds only lower-case letters, digits and '_', so keys stay distinct
// where engines (Trino) or file systems (macOS, Windows) fold case.
//
// A plain name — lower-case letters, digits and '_', not starting with a digit — is its own
// key (every project named so keeps the namespace and folder it always had). Any other name
// is '0' followed by its bytes escaped: a-z and 0-9 stay, '_' becomes "__", an upper-case
// letter '_' and the letter in lower case, any other byte '_' and its value as three decimal
// digits ("Shop" → "0_shop", "a.b" → "0a_046b"). A plain name never starts with a digit, and
// the escaping is prefix-free, so the key can be decoded back into the name.
func ProjectKey(project string) string {
	if plainProject(project) {
		return project
	}
	b := make([]byte, 0, 2*len(project)+1)
	b = append(b, '0')
	for i := 0; i < len(project); i++ {
		c := project[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b = append(b, c)
		case c == '_':
			b = append(b, '_', '_')
		case c >= 'A' && c <= 'Z':
			b = append(b, '_', c+('a'-'A'))
		default:
			b = append(b, '_', '0'+c/100, '0'+c/10%10, '0'+c%10)
		}
	}
	return string(b)
}

// plainProject reports whether a project name is its own key: lower-case letters, digits and
// '_', not empty and not starting with a digit.
func plainProject(p string) bool {
	if p == "" || (p[0] >= '0' && p[0] <= '9') {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// FoldedNamespace is the namespace earlier versions gave a project whose name is not plain:
// the name folded to lower case, anything else replaced by '_', with "_" and 8 hex digits of
// its SHA-256 after. It could collide with a plain name ("Shop" and "shop_d00aae6b" shared
// quiver_shop_d00aae6b). It returns "" for a plain name, whose namespace never changed.
// Tables a project wrote there are adopted into ProjectNamespace (AdoptTablesFrom).
func FoldedNamespace(project string) string {
	if plainProject(project) {
		return ""
	}
	var b strings.Builder
	for _, r := range project {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
		default:
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(project))
	return "quiver_" + b.String() + "_" + hex.EncodeToString(sum[:4])
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
		mine, err := owns(ctx, view, snap.Summary.Properties[offline.SummaryRunID])
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

// RunProject names the project whose materialization run wrote a snapshot, from the run id
// recorded in the snapshot's summary; "" when the id names no known run (a push commit, a
// table written by hand).
type RunProject func(ctx context.Context, runID string) (string, error)

// currentWriter returns the project whose run wrote a table's current snapshot, "" when
// unknown. Run ids are looked up once per cache.
func currentWriter(ctx context.Context, tbl *table.Table, who RunProject, cache map[string]string) (string, error) {
	snap := tbl.CurrentSnapshot()
	if snap == nil || snap.Summary == nil || snap.Summary.Properties[offline.SummaryRunID] == "" {
		return "", nil
	}
	id := snap.Summary.Properties[offline.SummaryRunID]
	if p, ok := cache[id]; ok {
		return p, nil
	}
	p, err := who(ctx, id)
	if err != nil {
		return "", err
	}
	cache[id] = p
	return p, nil
}

// ForeignWriter reports whether tables of the store's namespace belong to another project: a
// table belongs to the project whose run wrote its current snapshot (the rule AdoptLegacyTables
// follows too), and another project's tables are here when an earlier mapping gave it this
// namespace (see FoldedNamespace). It returns that project and its tables, or "" when there is
// none. It reads every table's metadata, so callers ask once, before they first claim the
// namespace.
func (s *Store) ForeignWriter(ctx context.Context, project string, who RunProject) (string, []string, error) {
	var owner string
	var tables []string
	cache := map[string]string{}
	for id, err := range s.cat.cat.ListTables(ctx, s.ns) {
		if err != nil {
			return "", nil, fmt.Errorf("%s: list tables of %s: %w", s.cat, strings.Join(s.ns, "."), err)
		}
		tbl, err := s.cat.cat.LoadTable(ctx, id)
		if errors.Is(err, catalog.ErrNoSuchTable) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("load offline table %s: %w", strings.Join(id, "."), err)
		}
		p, err := currentWriter(ctx, tbl, who, cache)
		if err != nil {
			return "", nil, fmt.Errorf("writer of offline table %s: %w", strings.Join(id, "."), err)
		}
		if p != "" && p != project && (owner == "" || p == owner) {
			owner = p
			tables = append(tables, strings.Join(id, "."))
		}
	}
	return owner, tables, nil
}

// AdoptTablesFrom moves tables of namespace from into the store's namespace under the same
// name (a catalog rename: files stay where they are): those whose current snapshot the
// project's runs wrote, when the store has no table of that name yet. It is how a project whose namespace changed
// (FoldedNamespace) keeps its tables. It returns the tables moved; it is safe to run
// concurrently.
func (s *Store) AdoptTablesFrom(ctx context.Context, from, project string, who RunProject) ([]string, error) {
	ns := strings.Split(from, ".")
	if from == "" || from == strings.Join(s.ns, ".") {
		return nil, nil
	}
	ok, err := s.cat.cat.CheckNamespaceExists(ctx, ns)
	if err != nil {
		return nil, fmt.Errorf("%s: check namespace %s: %w", s.cat, from, err)
	}
	if !ok {
		return nil, nil
	}
	var idents []table.Identifier
	for id, err := range s.cat.cat.ListTables(ctx, ns) {
		if err != nil {
			return nil, fmt.Errorf("%s: list tables of %s: %w", s.cat, from, err)
		}
		idents = append(idents, id)
	}
	var moved []string
	cache := map[string]string{}
	for _, id := range idents {
		name := id[len(id)-1]
		to := append(append(table.Identifier{}, s.ns...), name)
		if exists, err := s.cat.cat.CheckTableExists(ctx, to); err != nil {
			return moved, fmt.Errorf("%s: check table %s: %w", s.cat, strings.Join(to, "."), err)
		} else if exists {
			continue
		}
		tbl, err := s.cat.cat.LoadTable(ctx, id)
		if errors.Is(err, catalog.ErrNoSuchTable) {
			continue // moved concurrently
		}
		if err != nil {
			return moved, fmt.Errorf("load offline table %s: %w", strings.Join(id, "."), err)
		}
		p, err := currentWriter(ctx, tbl, who, cache)
		if err != nil {
			return moved, fmt.Errorf("writer of offline table %s: %w", strings.Join(id, "."), err)
		}
		if p != project {
			continue
		}
		if _, err := s.cat.cat.RenameTable(ctx, id, to); err != nil {
			if errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, catalog.ErrTableAlreadyExists) {
				continue
			}
			return moved, fmt.Errorf("move offline table %s to %s: %w", strings.Join(id, "."), strings.Join(to, "."), err)
		}
		moved = append(moved, name)
	}
	return moved, nil
}
