package postgres_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/postgres"
)

// TestUnknownRoleIsUnavailable: credentials the server refuses are a store we cannot use.
func TestUnknownRoleIsUnavailable(t *testing.T) {
	url := "postgres://nobody_here:s3cret@127.0.0.1:" + strconv.Itoa(pg.Port()) + "/postgres?sslmode=disable"
	_, err := postgres.Open(context.Background(), url)
	require.ErrorIs(t, err, registry.ErrUnavailable)
	require.NotContains(t, err.Error(), "s3cret")
}
