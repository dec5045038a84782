// Package iceberg reads Apache Iceberg tables as a source and is Quiver's offline store: one
// Iceberg table per feature view, each materialization run one snapshot. It uses iceberg-go
// with an Iceberg SQL catalog kept in a SQLite database (pure Go, modernc.org/sqlite) by
// default, or a REST catalog by configuration.
package iceberg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // registers the s3:// (and s3a://, s3n://) file IO
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the pure-Go "sqlite" database/sql driver

	"github.com/quiverfs/quiver/internal/redact"
	"github.com/quiverfs/quiver/offline"
)

// DefaultCatalogName is the catalog name used when CatalogConfig.Name is empty. The SQL catalog
// stores it in every row, so one database can hold several catalogs.
const DefaultCatalogName = "quiver"

// CatalogConfig says which Iceberg catalog to use.
type CatalogConfig struct {
	// URI is "sqlite://PATH" for an Iceberg SQL catalog in a SQLite file (created if missing;
	// a relative PATH is relative to the working directory), "postgres://..." for an Iceberg
	// SQL catalog in a PostgreSQL database (the registry's), or an http(s) URL of an Iceberg
	// REST catalog.
	URI string
	// Name is the catalog name; empty means DefaultCatalogName.
	Name string
	// Warehouse is where new tables' files go: a local directory or a URL (file://, s3://...).
	// Required for a SQL catalog; optional for REST, where the server may choose.
	Warehouse string
	// Props are extra catalog properties passed to iceberg-go (REST credentials, S3
	// settings such as S3Props gives, ...).
	Props map[string]string
}

// S3Props are the catalog properties that reach an s3:// warehouse as the standard AWS
// environment describes it (getenv is os.Getenv in production): the endpoint of an
// S3-compatible store from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (addressed path-style, as
// such stores want), the region from AWS_REGION or AWS_DEFAULT_REGION. Credentials are not
// copied: iceberg-go's S3 file IO takes them from the AWS SDK's default chain
// (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE and the shared
// config files, or the instance's role).
func S3Props(getenv func(string) string) map[string]string {
	props := map[string]string{}
	for _, k := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		if v := getenv(k); v != "" {
			props["s3.endpoint"] = v
			break
		}
	}
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if v := getenv(k); v != "" {
			props["s3.region"] = v
			break
		}
	}
	return props
}

// Catalog is an open Iceberg catalog. Close releases it.
type Catalog struct {
	cat   catalog.Catalog
	db    *sql.DB // the SQLite handle of a SQL catalog, nil for REST
	label string
}

// OpenCatalog opens the catalog cfg describes.
func OpenCatalog(ctx context.Context, cfg CatalogConfig) (*Catalog, error) {
	name := cfg.Name
	if name == "" {
		name = DefaultCatalogName
	}
	props := ice.Properties{}
	for k, v := range cfg.Props {
		props[k] = v
	}
	if cfg.Warehouse != "" {
		wh, err := warehouseURL(cfg.Warehouse)
		if err != nil {
			return nil, err
		}
		props["warehouse"] = wh
	}
	switch {
	case strings.HasPrefix(cfg.URI, "sqlite://"):
		if cfg.Warehouse == "" {
			return nil, fmt.Errorf("open iceberg catalog %s: %w: no warehouse", cfg.URI, offline.ErrInvalidSource)
		}
		path := strings.TrimPrefix(cfg.URI, "sqlite://")
		if path == "" {
			return nil, fmt.Errorf("open iceberg catalog %s: %w: no database path", cfg.URI, offline.ErrInvalidSource)
		}
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("open iceberg catalog %s: %w", cfg.URI, err)
			}
		}
		// WAL and a busy timeout on every pooled connection let several processes share the
		// catalog; the SQL catalog retries "database is locked" on its own as well.
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open iceberg catalog %s: %w", cfg.URI, err)
		}
		c, err := sqlcat.NewCatalog(name, db, sqlcat.SQLite, props)
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open iceberg catalog %s: %w", cfg.URI, err)
		}
		return &Catalog{cat: c, db: db, label: cfg.URI}, nil
	case strings.HasPrefix(cfg.URI, "postgres://"), strings.HasPrefix(cfg.URI, "postgresql://"):
		if cfg.Warehouse == "" {
			return nil, fmt.Errorf("open iceberg catalog %s: %w: no warehouse", redact.URL(cfg.URI), offline.ErrInvalidSource)
		}
		db, err := sql.Open("pgx", cfg.URI)
		if err != nil {
			return nil, fmt.Errorf("open iceberg catalog %s: %w", redact.URL(cfg.URI), err)
		}
		c, err := newPostgresCatalog(name, db, props)
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open iceberg catalog %s: %w", redact.URL(cfg.URI), err)
		}
		return &Catalog{cat: c, db: db, label: redact.URL(cfg.URI)}, nil
	case strings.HasPrefix(cfg.URI, "http://"), strings.HasPrefix(cfg.URI, "https://"):
		var opts []rest.Option
		if wh := props["warehouse"]; wh != "" {
			opts = append(opts, rest.WithWarehouseLocation(wh))
		}
		opts = append(opts, rest.WithAdditionalProps(props))
		c, err := rest.NewCatalog(ctx, name, cfg.URI, opts...)
		if err != nil {
			return nil, fmt.Errorf("open iceberg rest catalog %s: %w", redact.URL(cfg.URI), err)
		}
		return &Catalog{cat: c, label: redact.URL(cfg.URI)}, nil
	}
	return nil, fmt.Errorf("open iceberg catalog %q: %w: want sqlite://PATH, postgres://... or an http(s) REST catalog URL", redact.URL(cfg.URI), offline.ErrInvalidSource)
}

// newPostgresCatalog opens the SQL catalog on db. iceberg-go creates the catalog's tables with
// CREATE TABLE IF NOT EXISTS, which PostgreSQL does not make safe against itself: two
// processes opening a new catalog at once (two quiver stream processes of one consumer group)
// can fail with a unique violation on pg_type. The loser's tables exist by then: it tries again.
func newPostgresCatalog(name string, db *sql.DB, props ice.Properties) (*sqlcat.Catalog, error) {
	for attempt := 1; ; attempt++ {
		c, err := sqlcat.NewCatalog(name, db, sqlcat.Postgres, props)
		var pgErr *pgconn.PgError
		if err == nil || attempt == 5 || !errors.As(err, &pgErr) || !pgCreateRace[pgErr.Code] {
			return c, err
		}
		time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
	}
}

// pgCreateRace are the PostgreSQL error codes of a concurrent CREATE TABLE IF NOT EXISTS:
// unique_violation (on pg_type), duplicate_table, duplicate_object (the table's row type).
var pgCreateRace = map[string]bool{"23505": true, "42P07": true, "42710": true}

// Iceberg returns the iceberg-go catalog, for callers that need more than this package offers.
func (c *Catalog) Iceberg() catalog.Catalog { return c.cat }

func (c *Catalog) String() string { return "iceberg catalog " + c.label }

// Close releases the catalog's database handle, if it has one.
func (c *Catalog) Close() error {
	if c.db != nil {
		return c.db.Close()
	}
	return nil
}

// ParseIdentifier splits "namespace.table" (the namespace may itself be dotted) into an
// identifier.
func ParseIdentifier(name string) (table.Identifier, error) {
	parts := strings.Split(name, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%w: iceberg table %q is not of the form namespace.table", offline.ErrInvalidSource, name)
	}
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("%w: iceberg table %q has an empty name part", offline.ErrInvalidSource, name)
		}
	}
	return parts, nil
}

// ensureNamespace creates ns if it does not exist.
func (c *Catalog) ensureNamespace(ctx context.Context, ns table.Identifier) error {
	ok, err := c.cat.CheckNamespaceExists(ctx, ns)
	if err != nil {
		return fmt.Errorf("%s: check namespace %s: %w", c, strings.Join(ns, "."), err)
	}
	if ok {
		return nil
	}
	if err := c.cat.CreateNamespace(ctx, ns, nil); err != nil {
		if ok, err2 := c.cat.CheckNamespaceExists(ctx, ns); err2 == nil && ok {
			return nil // created concurrently
		}
		return fmt.Errorf("%s: create namespace %s: %w", c, strings.Join(ns, "."), err)
	}
	return nil
}

// warehouseURL turns a local directory into an absolute file:// URL and passes URLs through.
func warehouseURL(wh string) (string, error) {
	if strings.Contains(wh, "://") {
		return strings.TrimSuffix(wh, "/"), nil
	}
	abs, err := filepath.Abs(wh)
	if err != nil {
		return "", fmt.Errorf("warehouse %s: %w", wh, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("create warehouse %s: %w", abs, err)
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), nil
}
