package postgres_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/postgres"
	"github.com/quiverfs/quiver/registry/registrytest"
)

var pg *testenv.Postgres

func TestMain(m *testing.M) {
	tb := testenv.NewMainTB("registry/postgres")
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

func open(t *testing.T, url string) registry.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// TestConformance runs the suite, its unavailable case on a server of its own that it stops.
func TestConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Store { return open(t, pg.NewDatabase(t)) },
		func(t *testing.T) (registry.Store, func()) {
			lost := testenv.StartPostgres(t)
			s, err := postgres.Open(context.Background(), lost.NewDatabase(t))
			require.NoError(t, err)
			return s, lost.Stop
		})
}

// Several processes opening a new database at once migrate it once, without errors.
func TestConcurrentOpen(t *testing.T) {
	url := pg.NewDatabase(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), url)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	s := open(t, url) // and again, on a migrated database
	_, err := s.CurrentRevision(context.Background(), "p")
	require.NoError(t, err)

	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var count int
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&count))
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	require.NoError(t, err)
	require.Equal(t, len(files), count, "each migration recorded once")
}

// Two stores on one database are like two processes: only one of two applies planned
// against the same revision wins.
func TestTwoStoresConflict(t *testing.T) {
	url := pg.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	ctx := context.Background()
	req := registry.ApplyRequest{Project: "p", Changes: []registry.Change{{Kind: "entity", Name: "user", Hash: "h", Spec: []byte(`{}`)}}}
	_, err := a.Apply(ctx, req)
	require.NoError(t, err)
	_, err = b.Apply(ctx, req)
	require.ErrorIs(t, err, registry.ErrConflict)
}

func TestUnreachable(t *testing.T) {
	port, err := testenv.FreePort()
	require.NoError(t, err)
	url := fmt.Sprintf("postgres://quiver:s3cret@127.0.0.1:%d/registry?sslmode=disable", port)
	_, err = postgres.Open(context.Background(), url)
	require.ErrorIs(t, err, registry.ErrUnavailable)
	require.Contains(t, err.Error(), fmt.Sprintf("postgres://quiver:[redacted]@127.0.0.1:%d/registry", port))
	require.NotContains(t, err.Error(), "s3cret")
}
