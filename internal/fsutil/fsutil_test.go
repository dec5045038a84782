package fsutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteFileSyncReplacesAndSyncDir(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	require.NoError(t, WriteFileSync(p, []byte("a longer first content")))
	require.NoError(t, WriteFileSync(p, []byte("second")))
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "second", string(got), "a second write truncates")
	require.NoError(t, SyncDir(dir))

	require.Error(t, WriteFileSync(filepath.Join(dir, "missing", "f"), nil), "no parent directory")
	require.Error(t, SyncDir(filepath.Join(dir, "missing")))
}
