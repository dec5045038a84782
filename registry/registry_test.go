package registry_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/registry"
)

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
