package postgres_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/postgres"
)

// TestLostDatabaseIsUnavailable: a database that goes away after Open makes every call fail
// with registry.ErrUnavailable (the CLI exits 3), not an unclassified driver error.
func TestLostDatabaseIsUnavailable(t *testing.T) {
	lost := testenv.StartPostgres(t)
	ctx := context.Background()
	s, err := postgres.Open(ctx, lost.NewDatabase(t))
	require.NoError(t, err)
	defer s.Close()
	_, err = s.ListObjects(ctx, "p", definitions.KindFeatureView)
	require.NoError(t, err)

	lost.Stop()
	_, err = s.ListObjects(ctx, "p", definitions.KindFeatureView)
	require.ErrorIs(t, err, registry.ErrUnavailable, "a query")
	_, err = s.GetObject(ctx, "p", definitions.KindFeatureView, "v", 0)
	require.ErrorIs(t, err, registry.ErrUnavailable, "a single-row read")
	_, err = s.Apply(ctx, registry.ApplyRequest{Project: "p", Author: "t", Changes: []registry.Change{{Kind: definitions.KindEntity, Name: "e", Hash: "h", Spec: []byte(`{}`)}}})
	require.ErrorIs(t, err, registry.ErrUnavailable, "a transaction")
}

// TestUnknownRoleIsUnavailable: credentials the server refuses are a store we cannot use.
func TestUnknownRoleIsUnavailable(t *testing.T) {
	url := "postgres://nobody_here:s3cret@127.0.0.1:" + strconv.Itoa(pg.Port()) + "/postgres?sslmode=disable"
	_, err := postgres.Open(context.Background(), url)
	require.ErrorIs(t, err, registry.ErrUnavailable)
	require.NotContains(t, err.Error(), "s3cret")
}
