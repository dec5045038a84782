// Package config reads a feature repo's quiver.yaml, applies the QUIVER_* environment
// overrides and the embedded defaults, and resolves relative paths against the repo root.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/internal/redact"
)

// FileName is the repo configuration file at the root of a feature repo.
const FileName = "quiver.yaml"

// ErrNoRepo is returned when the directory has no quiver.yaml.
var ErrNoRepo = errkind.New(errkind.Invalid, "not a feature repo")

// Environment variables that override quiver.yaml.
const (
	EnvRegistry  = "QUIVER_REGISTRY"
	EnvOnline    = "QUIVER_ONLINE"
	EnvWarehouse = "QUIVER_WAREHOUSE"
	EnvTrinoDSN  = "QUIVER_TRINO_DSN"
)

// Defaults, relative to the repo root: everything embedded, no server needed.
const (
	DefaultRegistry  = "sqlite://.quiver/registry.db"
	DefaultOnline    = "sqlite://.quiver/online.db"
	DefaultWarehouse = ".quiver/warehouse"
	DefaultCatalog   = "sql"
)

// Config is a feature repo's configuration after defaults and overrides.
type Config struct {
	// Root is the feature repo's directory (absolute).
	Root    string
	Project string
	// Registry and Online are store URLs. sqlite:// URLs with relative paths are resolved
	// against Root.
	Registry string
	Online   string
	Offline  Offline
	Trino    Trino
	// Definitions are the files or directories holding definitions, relative to Root; empty
	// means the whole repo.
	Definitions []string
	// AllowedPaths are directories outside Root that file paths in definitions may point
	// into (a shared data lake), absolute after Load. Empty: only the repo itself.
	AllowedPaths []string
	// Serving is the serving: section as written (nil when absent); serving/auth decodes
	// it (auth.ParseConfig), with positions for its errors.
	Serving *yaml.Node
}

// Offline configures the offline store.
type Offline struct {
	// Warehouse is where Iceberg tables and dataset snapshots live: a directory (resolved
	// against Root) or an object-store URL.
	Warehouse string `yaml:"warehouse"`
	// Catalog is the Iceberg catalog: "sql" (kept in the registry's database) or "rest".
	Catalog string `yaml:"catalog"`
	// CatalogURI is the REST catalog's URL (catalog: rest only).
	CatalogURI string `yaml:"catalog_uri"`
	// GC tunes quiver gc.
	GC OfflineGC `yaml:"gc"`
}

// DefaultMinOrphanAge is offline.gc.min_orphan_age's default: 3 days, Iceberg's own
// remove_orphan_files default, longer than any one write (a backfill commits chunk by chunk),
// and a weekend's margin for a stuck writer.
const DefaultMinOrphanAge = 72 * time.Hour

// OfflineGC tunes quiver gc's offline sweep.
type OfflineGC struct {
	// MinOrphanAge is how old a file in a view table's location that no snapshot references
	// must be before gc removes it: another engine's write in flight looks the same until it
	// commits. Load sets DefaultMinOrphanAge when quiver.yaml leaves it out.
	MinOrphanAge *time.Duration `yaml:"min_orphan_age"`
}

// Trino configures the optional Trino connection.
type Trino struct {
	DSN string `yaml:"dsn"`
}

type file struct {
	Project      string   `yaml:"project"`
	Registry     string   `yaml:"registry"`
	Online       string   `yaml:"online"`
	Offline      Offline  `yaml:"offline"`
	Trino        Trino    `yaml:"trino"`
	Definitions  []string `yaml:"definitions"`
	AllowedPaths []string `yaml:"allowed_paths"`

	// Serving is kept as a node: serving/auth decodes it strictly, with positions.
	Serving yaml.Node `yaml:"serving"`
}

// Load reads dir/quiver.yaml. getenv is os.Getenv in production; tests pass their own.
func Load(dir string, getenv func(string) string) (*Config, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve repo dir %s: %w", dir, err)
	}
	path := filepath.Join(root, FileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s (run quiver init %s, or pass -C DIR)", ErrNoRepo, dir, FileName, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: %s (valid keys: project, registry, online, offline{warehouse, catalog, catalog_uri, gc{min_orphan_age}}, trino{dsn}, definitions, allowed_paths, serving)", definitions.ErrInvalid, FileName, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	c := &Config{
		Root:        root,
		Project:     f.Project,
		Registry:    pick(getenv(EnvRegistry), f.Registry, DefaultRegistry),
		Online:      pick(getenv(EnvOnline), f.Online, DefaultOnline),
		Offline:     f.Offline,
		Trino:       f.Trino,
		Definitions: f.Definitions,
	}
	if f.Serving.Kind != 0 {
		c.Serving = &f.Serving
	}
	c.Offline.Warehouse = pick(getenv(EnvWarehouse), f.Offline.Warehouse, DefaultWarehouse)
	c.Offline.Catalog = pick("", f.Offline.Catalog, DefaultCatalog)
	c.Trino.DSN = pick(getenv(EnvTrinoDSN), f.Trino.DSN, "")
	if c.Offline.GC.MinOrphanAge == nil {
		d := DefaultMinOrphanAge
		c.Offline.GC.MinOrphanAge = &d
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", definitions.ErrInvalid, FileName, err)
	}
	for _, p := range f.AllowedPaths {
		if p == "" || strings.Contains(p, "://") {
			return nil, fmt.Errorf("%w: %s: allowed_paths entry %q: want a local directory, absolute or relative to the repo", definitions.ErrInvalid, FileName, p)
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		c.AllowedPaths = append(c.AllowedPaths, filepath.Clean(p))
	}
	c.Registry = c.resolveSQLite(c.Registry)
	c.Online = c.resolveSQLite(c.Online)
	if !strings.Contains(c.Offline.Warehouse, "://") && !filepath.IsAbs(c.Offline.Warehouse) {
		c.Offline.Warehouse = filepath.Join(root, c.Offline.Warehouse)
	}
	return c, nil
}

func pick(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func (c *Config) validate() error {
	if c.Project == "" {
		return errors.New("project is required: name the project, e.g. project: shop")
	}
	if !definitions.ValidName(c.Project) {
		return fmt.Errorf("invalid project name %q: use letters, digits and '_'", c.Project)
	}
	for _, u := range []struct{ key, url string }{{"registry", c.Registry}, {"online", c.Online}} {
		scheme, _, ok := strings.Cut(u.url, "://")
		if !ok {
			return fmt.Errorf("%s %q is not a URL; want e.g. %s", u.key, redact.URL(u.url), map[string]string{"registry": DefaultRegistry + " or postgres://user@host:5432/db", "online": DefaultOnline + " or redis://host:6379/0"}[u.key])
		}
		valid := map[string][]string{"registry": {"sqlite", "postgres", "postgresql"}, "online": {"sqlite", "redis", "rediss", "redis-cluster"}}[u.key]
		found := false
		for _, v := range valid {
			found = found || v == scheme
		}
		if !found {
			return fmt.Errorf("%s URL scheme %q is not supported; valid schemes: %s", u.key, scheme, strings.Join(valid, ", "))
		}
	}
	if d := c.Offline.GC.MinOrphanAge; d != nil && *d < 0 {
		return fmt.Errorf("offline.gc.min_orphan_age %s is negative; want a duration such as 72h, or 0s for no minimum", *d)
	}
	switch c.Offline.Catalog {
	case "sql":
	case "rest":
		if c.Offline.CatalogURI == "" {
			return errors.New("offline catalog rest needs catalog_uri: the REST catalog's URL")
		}
	default:
		return fmt.Errorf("offline catalog %q is not supported; valid catalogs: sql, rest", c.Offline.Catalog)
	}
	return nil
}

// resolveSQLite makes a relative sqlite:// path absolute against the repo root, so that the
// CLI behaves the same from any working directory.
func (c *Config) resolveSQLite(url string) string {
	path, ok := strings.CutPrefix(url, "sqlite://")
	if !ok || filepath.IsAbs(path) || path == "" {
		return url
	}
	return "sqlite://" + filepath.Join(c.Root, path)
}
