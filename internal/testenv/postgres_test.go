package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestStartPostgres(t *testing.T) {
	pg := StartPostgres(t)
	ctx := context.Background()

	a, b := pg.NewDatabase(t), pg.NewDatabase(t)
	require.NotEqual(t, a, b)

	connA, err := pgx.Connect(ctx, a)
	require.NoError(t, err)
	defer connA.Close(ctx)
	_, err = connA.Exec(ctx, "CREATE TABLE t (x int)")
	require.NoError(t, err)

	// Each database is isolated: the table made in a does not exist in b.
	connB, err := pgx.Connect(ctx, b)
	require.NoError(t, err)
	defer connB.Close(ctx)
	var n int
	require.NoError(t, connB.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 't'").Scan(&n))
	require.Equal(t, 0, n)

	var fsync string
	require.NoError(t, connA.QueryRow(ctx, "SHOW fsync").Scan(&fsync))
	require.Equal(t, "off", fsync)
}

func TestLookBinaryNamesDebianPackage(t *testing.T) {
	_, err := LookBinary("quiver-no-such-initdb", "postgresql", postgresDirs...)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "quiver-no-such-initdb") && strings.Contains(err.Error(), `"postgresql"`), err.Error())
}
