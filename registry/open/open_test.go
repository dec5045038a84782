package open_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/open"
)

var pg *testenv.Postgres

func TestMain(m *testing.M) {
	tb := testenv.NewMainTB("registry/open")
	pg = testenv.StartPostgres(tb)
	code := m.Run()
	tb.Close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func roundTrip(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	s, err := open.Open(ctx, url)
	require.NoError(t, err)
	defer s.Close()
	res, err := s.Apply(ctx, registry.ApplyRequest{Project: "p",
		Changes: []registry.Change{{Kind: "entity", Name: "user", Hash: "h", Spec: []byte(`{}`)}}})
	require.NoError(t, err)
	require.Equal(t, int64(1), res.Revision)
}

func TestOpen(t *testing.T) {
	t.Run("sqlite relative", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		roundTrip(t, "sqlite://.quiver/registry.db")
		require.FileExists(t, filepath.Join(dir, ".quiver", "registry.db"))
	})
	t.Run("sqlite absolute", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "deep", "registry.db")
		require.True(t, filepath.IsAbs(path))
		roundTrip(t, "sqlite://"+path)
		require.FileExists(t, path)
	})
	t.Run("postgres", func(t *testing.T) {
		roundTrip(t, pg.NewDatabase(t))
	})
	t.Run("postgresql", func(t *testing.T) {
		url := pg.NewDatabase(t)
		roundTrip(t, "postgresql://"+strings.TrimPrefix(url, "postgres://"))
	})
}

func TestOpenErrors(t *testing.T) {
	port, err := testenv.FreePort()
	require.NoError(t, err)
	tests := []struct {
		name    string
		url     string
		is      error
		message string // must appear in the error
	}{
		{"postgres unreachable", fmt.Sprintf("postgres://quiver:hunter2@127.0.0.1:%d/reg?sslmode=disable", port),
			registry.ErrUnavailable, fmt.Sprintf("postgres://quiver:[redacted]@127.0.0.1:%d/reg?sslmode=disable", port)},
		{"postgresql unreachable", fmt.Sprintf("postgresql://quiver:hunter2@127.0.0.1:%d/reg", port),
			registry.ErrUnavailable, "postgresql://quiver:[redacted]@127.0.0.1"},
		{"sqlite unopenable", "sqlite:///proc/quiver-no-such/registry.db", registry.ErrUnavailable, "sqlite:///proc/quiver-no-such/registry.db"},
		{"postgres bad port", "postgres://quiver:hunter2@127.0.0.1:notaport/reg", registry.ErrInvalid, "postgres://quiver:[redacted]@127.0.0.1:notaport/reg"},
		{"unknown scheme", "mysql://root:hunter2@localhost/db", registry.ErrInvalid, `unsupported scheme "mysql"`},
		{"not a url", "registry.db", registry.ErrInvalid, "use sqlite://PATH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := open.Open(context.Background(), tc.url)
			require.ErrorIs(t, err, tc.is)
			require.Contains(t, err.Error(), tc.message)
			require.NotContains(t, err.Error(), "hunter2")
		})
	}
}
