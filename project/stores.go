package project

// The stores a feature repo's configuration names. This file is the one place that chooses a
// backend by URL scheme or definition kind: registries (through registry/open), online
// stores, the offline store and sources.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/redact"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/offline/sources"
	"github.com/quiverfs/quiver/offline/trino"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/embedded"
	"github.com/quiverfs/quiver/online/redis"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/open"
)

// OpenRegistry opens the configured registry.
func OpenRegistry(ctx context.Context, cfg *config.Config) (registry.Store, error) {
	return open.Open(ctx, cfg.Registry)
}

// CountsCheaply reports whether the configured online store counts a view's rows without
// scanning the whole store (the embedded store does; Redis scans every key of the project).
func CountsCheaply(cfg *config.Config) bool { return strings.HasPrefix(cfg.Online, "sqlite://") }

// OpenOnline opens the configured online store: sqlite:// is the embedded store, redis://,
// rediss:// and redis-cluster:// are Redis.
func OpenOnline(ctx context.Context, cfg *config.Config) (online.Store, error) {
	// Each branch returns a nil interface on error: a nil *Store in an online.Store would not
	// compare equal to nil.
	switch {
	case strings.HasPrefix(cfg.Online, "sqlite://"):
		s, err := embedded.Open(ctx, cfg.Online, embedded.Options{})
		if err != nil {
			return nil, err
		}
		return s, nil
	case strings.HasPrefix(cfg.Online, "redis://"), strings.HasPrefix(cfg.Online, "rediss://"), strings.HasPrefix(cfg.Online, "redis-cluster://"):
		s, err := redis.Open(ctx, cfg.Online, redis.Options{})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("online store %s: unsupported scheme; valid: sqlite://, redis://, rediss://, redis-cluster://: %w", redact.URL(cfg.Online), definitions.ErrInvalid)
}

// Offline is an open offline store and the catalog behind it.
type Offline struct {
	*iceberg.Store
	Catalog *iceberg.Catalog
}

// Close releases the catalog.
func (o *Offline) Close() error { return o.Catalog.Close() }

// CatalogURI is where the Iceberg catalog lives: for catalog: sql, in the registry's own
// database (its SQLite file, or its Postgres database); for catalog: rest, the REST URL.
func CatalogURI(cfg *config.Config) (string, error) {
	switch cfg.Offline.Catalog {
	case "rest":
		return cfg.Offline.CatalogURI, nil
	case "sql":
		if strings.HasPrefix(cfg.Registry, "sqlite://") {
			path := strings.TrimPrefix(cfg.Registry, "sqlite://")
			if i := strings.IndexByte(path, '?'); i >= 0 {
				path = path[:i]
			}
			return "sqlite://" + path, nil
		}
		// The Iceberg SQL catalog's tables (iceberg_tables, iceberg_namespace_properties) live
		// beside the registry's own in the same Postgres database.
		return cfg.Registry, nil
	}
	return "", fmt.Errorf("offline catalog %q: valid catalogs: sql, rest: %w", cfg.Offline.Catalog, definitions.ErrInvalid)
}

// IsObjectStore reports whether a warehouse is on object storage (s3://, s3a://, gs://, ...)
// rather than a local directory or file:// URL.
func IsObjectStore(warehouse string) bool {
	return strings.Contains(warehouse, "://") && !strings.HasPrefix(warehouse, "file://")
}

// RunReader looks up materialization runs; OpenOffline uses it to recognise a project's tables
// in a warehouse written before projects had namespaces.
type RunReader interface {
	GetRun(ctx context.Context, id registry.RunID) (registry.MaterializationRun, error)
}

// Registry is what OpenOffline needs of the registry: runs, to tell which project wrote a
// table, and namespace ownership.
type Registry interface {
	RunReader
	registry.NamespaceStore
}

// OpenOffline opens the configured project's offline store: its view tables live in the
// project's own Iceberg namespace (iceberg.ProjectNamespace). When reg is not nil:
//
//   - a namespace the registry records as another project's is refused with a
//     *registry.NamespaceOwnedError; so is one that holds tables another project's runs wrote
//     (an earlier Quiver mapped "Shop" and "shop_d00aae6b" to one namespace), until that
//     project has moved them out;
//   - tables the project wrote where an earlier Quiver put them — the shared legacy namespace
//     "quiver", or, for a name that is not plain lower case, iceberg.FoldedNamespace — are
//     moved into its namespace;
//   - the project is recorded as the namespace's owner.
func OpenOffline(ctx context.Context, cfg *config.Config, reg Registry) (*Offline, error) {
	return openOffline(ctx, cfg, reg, true)
}

// InspectOffline is OpenOffline for a command that must write nothing (gc --dry-run): it
// refuses a namespace another project owns the same way, but moves no table and records no
// owner.
func InspectOffline(ctx context.Context, cfg *config.Config, reg Registry) (*Offline, error) {
	return openOffline(ctx, cfg, reg, false)
}

func openOffline(ctx context.Context, cfg *config.Config, reg Registry, write bool) (*Offline, error) {
	uri, err := CatalogURI(cfg)
	if err != nil {
		return nil, err
	}
	ns := iceberg.ProjectNamespace(cfg.Project)
	claimed := false
	if reg != nil { // a recorded owner is checked before anything is opened or written
		switch owner, err := reg.NamespaceOwner(ctx, ns); {
		case err == nil && owner != cfg.Project:
			return nil, &registry.NamespaceOwnedError{Namespace: ns, Owner: owner, Project: cfg.Project}
		case err == nil:
			claimed = true
		case !errors.Is(err, registry.ErrNotFound):
			return nil, err
		}
	}
	cc := iceberg.CatalogConfig{URI: uri, Warehouse: cfg.Offline.Warehouse}
	if IsObjectStore(cfg.Offline.Warehouse) {
		cc.Props = iceberg.S3Props(os.Getenv)
	}
	cat, err := iceberg.OpenCatalog(ctx, cc)
	if err != nil {
		return nil, err
	}
	st, err := iceberg.NewStore(ctx, cat, iceberg.StoreOptions{Namespace: ns})
	if err != nil {
		cat.Close()
		return nil, err
	}
	if reg != nil {
		if err := settleNamespace(ctx, st, reg, cfg.Project, ns, claimed, write); err != nil {
			cat.Close()
			return nil, err
		}
	}
	return &Offline{Store: st, Catalog: cat}, nil
}

// settleNamespace moves the project's tables out of the namespaces earlier versions used and,
// on first use, checks that no other project's tables are in its namespace and claims it.
func settleNamespace(ctx context.Context, st *iceberg.Store, reg Registry, project, ns string, claimed, write bool) error {
	who := runProject(reg)
	if write {
		if _, err := st.AdoptLegacyTables(ctx, ownedBy(reg, project)); err != nil {
			return err
		}
		if folded := iceberg.FoldedNamespace(project); folded != "" {
			// Never out of a namespace another project has claimed since.
			owner, err := reg.NamespaceOwner(ctx, folded)
			if err != nil && !errors.Is(err, registry.ErrNotFound) {
				return err
			}
			if owner == "" || owner == project {
				if _, err := st.AdoptTablesFrom(ctx, folded, project, who); err != nil {
					return err
				}
			}
		}
	}
	if claimed {
		return nil
	}
	owner, tables, err := st.ForeignWriter(ctx, project, who)
	if err != nil {
		return err
	}
	if owner != "" {
		return &registry.NamespaceOwnedError{Namespace: ns, Owner: owner, Project: project, Tables: tables}
	}
	if !write {
		return nil
	}
	return reg.ClaimNamespace(ctx, ns, project)
}

// runProject names the project of a materialization run by id ("" when there is none).
func runProject(runs RunReader) iceberg.RunProject {
	return func(ctx context.Context, runID string) (string, error) {
		id, err := strconv.ParseInt(runID, 10, 64)
		if err != nil {
			return "", nil //nolint:nilerr // not written by a materialization run
		}
		run, err := runs.GetRun(ctx, registry.RunID(id))
		if errors.Is(err, registry.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return run.Project, nil
	}
}

// ownedBy recognises a project's legacy tables by the run that committed their current
// snapshot.
func ownedBy(runs RunReader, project string) iceberg.OwnsTable {
	return func(ctx context.Context, view, runID string) (bool, error) {
		id, err := strconv.ParseInt(runID, 10, 64)
		if err != nil {
			return false, nil //nolint:nilerr // not written by a materialization run: not this project's
		}
		run, err := runs.GetRun(ctx, registry.RunID(id))
		if errors.Is(err, registry.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return run.Project == project && run.View == view, nil
	}
}

// Sources opens the sources of a feature repo: Parquet paths resolve against the repo, Iceberg
// sources read through the offline store's catalog, Trino sources through the configured DSN
// (opened only when some source needs it).
func Sources(cfg *config.Config, off *Offline, needTrino bool) (*SourceSet, error) {
	set := &SourceSet{cfg: sources.Config{BaseDir: cfg.Root}, paths: definitions.PathPolicy{Root: cfg.Root, Allowed: cfg.AllowedPaths}}
	if off != nil {
		set.cfg.Catalog = off.Catalog
	}
	if needTrino {
		if cfg.Trino.DSN == "" {
			return nil, fmt.Errorf("a trino source needs trino.dsn in quiver.yaml (or QUIVER_TRINO_DSN): %w", definitions.ErrInvalid)
		}
		client, err := trino.Open(cfg.Trino.DSN)
		if err != nil {
			return nil, err
		}
		set.cfg.Trino = client
	}
	return set, nil
}

// SourceSet opens sources sharing one catalog and one Trino connection.
type SourceSet struct {
	cfg   sources.Config
	paths definitions.PathPolicy
}

// Open returns the reader of a source definition. A Parquet path must stay inside the repo or
// its allowed_paths, as validate checks; it is checked again here because the definitions
// may have been applied before that check existed.
func (s *SourceSet) Open(src *definitions.Source) (offline.Source, error) {
	if errs := definitions.CheckPaths([]definitions.Object{src}, s.paths); len(errs) > 0 {
		return nil, errs.Err()
	}
	if src.Iceberg != nil && s.cfg.Catalog == nil {
		return nil, fmt.Errorf("source %q: iceberg sources need the offline store's catalog: %w", src.Name, definitions.ErrInvalid)
	}
	return sources.Open(src, s.cfg)
}

// Close releases the Trino connection, if any.
func (s *SourceSet) Close() error {
	if s.cfg.Trino != nil {
		return s.cfg.Trino.Close()
	}
	return nil
}
