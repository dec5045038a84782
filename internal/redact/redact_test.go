package redact_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/redact"
)

func TestURL(t *testing.T) {
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
			require.Equal(t, tc.want, redact.URL(tc.in))
		})
	}
}
