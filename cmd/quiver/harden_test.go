package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// initRepo makes a fresh demo feature repo with quiver init.
func initRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	r := quiver(t, nil, "init", dir)
	require.Equal(t, exitOK, r.code, r.stderr)
	return dir
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(content)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// Issue 18 item 2: paths in definitions stay in the repo unless quiver.yaml allows a root.
func TestValidateRefusesPathsOutsideTheRepo(t *testing.T) {
	dir := initRepo(t)
	lake := filepath.Join(filepath.Dir(dir), "lake")
	writeFile(t, filepath.Join(lake, "secret.parquet"), "x")
	writeFile(t, filepath.Join(dir, "features", "lake.yaml"), "sources:\n  - name: lake_src\n    parquet: {path: ../lake/secret.parquet}\n    timestamp_field: ts\n")
	r := quiver(t, nil, "-C", dir, "validate")
	require.Equal(t, exitInvalid, r.code, r.stdout)
	require.Contains(t, r.stderr, `features/lake.yaml:3:21: source "lake_src" parquet: path "../lake/secret.parquet" is outside the feature repo`)

	appendFile(t, filepath.Join(dir, "quiver.yaml"), "allowed_paths: [../lake]\n")
	r = quiver(t, nil, "-C", dir, "validate")
	require.Equal(t, exitOK, r.code, r.stderr)
}
