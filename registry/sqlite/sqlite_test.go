package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/registrytest"
	"github.com/quiverfs/quiver/registry/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func open(t *testing.T, path string) registry.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// TestConformance: a SQLite registry is a file, with no server to lose (no unavailable case).
func TestConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Store {
		return open(t, filepath.Join(t.TempDir(), "registry.db"))
	}, nil)
}

func TestCreatesParentDirAndPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "registry.db")
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	_, err = s.Apply(ctx, registry.ApplyRequest{Project: "p", Changes: []registry.Change{{Kind: "entity", Name: "user", Hash: "h", Spec: []byte(`{}`)}}})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s = open(t, path)
	rev, err := s.CurrentRevision(ctx, "p")
	require.NoError(t, err)
	require.Equal(t, int64(1), rev)
}

// Several processes opening a new file at once migrate it once, without errors; two stores
// on one file behave like two processes.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	const n = 4
	var wg sync.WaitGroup
	stores := make([]registry.Store, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = sqlite.Open(context.Background(), path) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		t.Cleanup(func() { stores[i].Close() })
	}
	ctx := context.Background()
	req := registry.ApplyRequest{Project: "p", Changes: []registry.Change{{Kind: "entity", Name: "user", Hash: "h", Spec: []byte(`{}`)}}}
	_, err := stores[0].Apply(ctx, req)
	require.NoError(t, err)
	_, err = stores[1].Apply(ctx, req)
	require.ErrorIs(t, err, registry.ErrConflict)
}

func TestUnopenable(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	_, err := sqlite.Open(context.Background(), filepath.Join(blocker, "registry.db"))
	require.ErrorIs(t, err, registry.ErrUnavailable)
	require.Contains(t, err.Error(), "sqlite://"+blocker)

	_, err = sqlite.Open(context.Background(), "x.db?mode=ro")
	require.ErrorIs(t, err, registry.ErrInvalid)
}
