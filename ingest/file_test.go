package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/ingest"
)

// TestReadFileWithoutRows: a pushed CSV file with a header and no rows, or nothing at all, is
// refused naming the file (arrow-go's CSV reader panicked on the first, crashing `quiver push`).
func TestReadFileWithoutRows(t *testing.T) {
	set, err := ingest.NewViewSet("shop", repoFrom(t, strings.Replace(defs, `      - { name: tags, type: "array<string>" }`+"\n", "", 1)), func(string) int { return 1 })
	require.NoError(t, err)
	v, err := set.View("user_clicks")
	require.NoError(t, err)
	for _, content := range []string{"user_id,ts,clicks,score\n", ""} {
		path := filepath.Join(t.TempDir(), "rows.csv")
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
		_, _, err := ingest.ReadFile(context.Background(), v, path, nil)
		require.ErrorIs(t, err, ingest.ErrInvalidBatch)
		require.ErrorIs(t, err, definitions.ErrInvalid)
		require.ErrorContains(t, err, "push file "+path+" has no rows")
	}
}
