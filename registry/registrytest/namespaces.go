package registrytest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/registry"
)

// testNamespaces: the first project to claim a namespace owns it; claiming it again is a
// no-op; another project — one whose name differs only in case, too — is refused with an
// error naming both; owners are per namespace.
func testNamespaces(t *testing.T, s registry.Store) {
	c := ctx(t)
	_, err := s.NamespaceOwner(c, "quiver_shop")
	require.ErrorIs(t, err, registry.ErrNotFound)

	require.NoError(t, s.ClaimNamespace(c, "quiver_shop", "shop"))
	require.NoError(t, s.ClaimNamespace(c, "quiver_shop", "shop"), "claiming again is a no-op")
	owner, err := s.NamespaceOwner(c, "quiver_shop")
	require.NoError(t, err)
	require.Equal(t, "shop", owner)

	err = s.ClaimNamespace(c, "quiver_shop", "Shop")
	require.ErrorIs(t, err, registry.ErrConflict)
	var owned *registry.NamespaceOwnedError
	require.ErrorAs(t, err, &owned)
	require.Equal(t, registry.NamespaceOwnedError{Namespace: "quiver_shop", Owner: "shop", Project: "Shop"}, *owned)
	require.Contains(t, err.Error(), `"Shop"`)
	require.Contains(t, err.Error(), `"shop"`)
	owner, err = s.NamespaceOwner(c, "quiver_shop")
	require.NoError(t, err)
	require.Equal(t, "shop", owner, "a refused claim records nothing")

	require.NoError(t, s.ClaimNamespace(c, "quiver_0_shop", "Shop"))
	owner, err = s.NamespaceOwner(c, "quiver_0_shop")
	require.NoError(t, err)
	require.Equal(t, "Shop", owner)

	require.ErrorIs(t, s.ClaimNamespace(c, "", "shop"), registry.ErrInvalid)
	require.ErrorIs(t, s.ClaimNamespace(c, "quiver_x", ""), registry.ErrInvalid)
}

// testConcurrentNamespaceClaims: of projects claiming one free namespace at once, exactly one
// wins and every other is told the winner's name.
func testConcurrentNamespaceClaims(t *testing.T, s registry.Store) {
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.ClaimNamespace(ctx(t), "quiver_race", fmt.Sprintf("p%d", i)) })
	}
	wg.Wait()
	owner, err := s.NamespaceOwner(ctx(t), "quiver_race")
	require.NoError(t, err)
	wins := 0
	for i, err := range errs {
		if err == nil {
			wins++
			require.Equal(t, fmt.Sprintf("p%d", i), owner)
			continue
		}
		var owned *registry.NamespaceOwnedError
		require.True(t, errors.As(err, &owned), "claim %d: %v", i, err)
		require.Equal(t, owner, owned.Owner)
	}
	require.Equal(t, 1, wins)
}
