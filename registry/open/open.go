// Package open opens a registry store from its URL. It is the one place that chooses a
// backend by URL scheme:
//
//	sqlite://relative/path.db    a file relative to the working directory
//	sqlite:///abs/path.db        an absolute path
//	postgres://user:pw@host:5432/db?sslmode=disable   (or postgresql://)
package open

import (
	"context"
	"fmt"
	"strings"

	"github.com/quiverfs/quiver/internal/redact"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/postgres"
	"github.com/quiverfs/quiver/registry/sqlite"
)

// Open opens the registry store at url and applies its migrations. An unreachable store
// gives an error that names the URL with its password redacted and matches
// registry.ErrUnavailable; an unsupported or malformed URL matches registry.ErrInvalid.
func Open(ctx context.Context, url string) (registry.Store, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return nil, fmt.Errorf("open registry %q: not a URL; use sqlite://PATH or postgres://...: %w", redact.URL(url), registry.ErrInvalid)
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		return sqlite.Open(ctx, rest)
	case "postgres", "postgresql":
		return postgres.Open(ctx, url)
	}
	return nil, fmt.Errorf("open registry %s: unsupported scheme %q; use sqlite:// or postgres://: %w",
		redact.URL(url), scheme, registry.ErrInvalid)
}
