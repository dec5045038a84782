package project

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/config"
)

// Issue 18 item 2: definitions applied before paths were checked cannot read outside the repo.
func TestSourcesRefuseParquetPathsOutsideTheRepo(t *testing.T) {
	root := t.TempDir()
	set, err := Sources(&config.Config{Root: root}, nil, false)
	require.NoError(t, err)
	for _, p := range []string{"/etc", "../outside/secret.parquet"} {
		_, err := set.Open(&definitions.Source{Name: "s", Parquet: &definitions.ParquetSource{Path: p}, TimestampField: "ts"})
		require.ErrorIs(t, err, definitions.ErrInvalid, p)
		require.ErrorContains(t, err, `source "s" parquet: `)
		require.ErrorContains(t, err, "is outside the feature repo")
	}
	src, err := set.Open(&definitions.Source{Name: "s", Parquet: &definitions.ParquetSource{Path: "data/x.parquet"}, TimestampField: "ts"})
	require.NoError(t, err)
	require.NotNil(t, src)
}
