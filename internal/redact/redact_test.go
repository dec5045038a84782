package redact_test

import (
	"net/url"
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

func TestText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"url in message", `open registry postgres://quiver:s3cret@db:5432/reg: refused`, `open registry postgres://quiver:[redacted]@db:5432/reg: refused`},
		{"quoted url", `parse "redis://:hunter2@h:6379/0": invalid port`, `parse "redis://:[redacted]@h:6379/0": invalid port`},
		{"query password", `dsn http://u@h:8080?catalog=c&password=pw1&schema=s`, `dsn http://u@h:8080?catalog=c&password=[redacted]&schema=s`},
		{"no secret", `redis 127.0.0.1:6379: ping: connection refused`, `redis 127.0.0.1:6379: ping: connection refused`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, redact.Text(tc.in))
		})
	}
}

func TestParseErrorNeverQuotesThePassword(t *testing.T) {
	for _, raw := range []string{
		"redis://:pa ss%zz@localhost:6379/0", // a space and a bad escape in the password
		"postgres://u:pa ss@h:port/db",
		"http://user:pa ss@trino:8080?catalog=iceberg",
	} {
		_, err := url.Parse(raw)
		require.Error(t, err)
		got := redact.ParseError("open store", raw, err).Error()
		require.NotContains(t, got, "pa ss", raw)
		require.NotContains(t, got, "pa%20ss", raw)
		require.Contains(t, got, "open store ")
	}
}

func TestPasswords(t *testing.T) {
	require.Equal(t, []string{"p%40ss", "p@ss"}, redact.Passwords("postgres://u:p%40ss@h/db"))
	require.Equal(t, []string{"pw"}, redact.Passwords("http://u@h?password=pw"))
	require.Empty(t, redact.Passwords("redis://h:6379"))
}
