package registry_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/registry"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"password", "postgres://quiver:s3cret@db:5432/reg?sslmode=disable", "postgres://quiver:[redacted]@db:5432/reg?sslmode=disable"},
		{"user only", "postgres://quiver@db/reg", "postgres://quiver@db/reg"},
		{"no user", "redis://localhost:6379/0", "redis://localhost:6379/0"},
		{"escaped password", "postgres://u:p%40ss%3Aw@h/db", "postgres://u:[redacted]@h/db"},
		{"password query", "postgres://h/db?user=u&password=s3cret", "postgres://h/db?password=[redacted]&user=u"},
		{"sqlite", "sqlite://.quiver/registry.db", "sqlite://.quiver/registry.db"},
		{"unparsable", "postgres://u:s3cret@h:port:x/%zz", "postgres://u:[redacted]@h:port:x/%zz"},
		{"not a url", "registry.db", "registry.db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, registry.RedactURL(tc.in))
		})
	}
}

func TestRevisionConflictError(t *testing.T) {
	err := fmt.Errorf("apply to project %q: %w", "shop", &registry.RevisionConflictError{Project: "shop", Planned: 4, Current: 5})
	require.ErrorIs(t, err, registry.ErrConflict)
	require.False(t, errors.Is(err, registry.ErrNotFound))
	require.EqualError(t, err, `apply to project "shop": registry changed since plan: planned against revision 4, now 5; run plan again`)
}

func TestSentinelLayers(t *testing.T) {
	require.ErrorIs(t, registry.ErrObjectNotFound, registry.ErrNotFound)
	require.ErrorIs(t, registry.ErrDatasetNotFound, registry.ErrNotFound)
	require.ErrorIs(t, registry.ErrWatermarkBackwards, registry.ErrConflict)
}
