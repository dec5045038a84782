package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// trainedRepo is a demo repo, applied, materialized and trained once (with a shell script
// standing in for the trainer), so it has a dataset, a run and model churn v1.
func trainedRepo(t *testing.T, env map[string]string) string {
	t.Helper()
	dir := initRepo(t)
	script := filepath.Join(dir, "train.sh")
	writeFile(t, script, "#!/bin/sh\necho '{\"key\":\"loss\",\"value\":0.5,\"step\":1}' >> \"$QUIVER_METRICS_FILE\"\necho fake-onnx > \"$QUIVER_OUTPUT_DIR/model.onnx\"\n")
	require.NoError(t, os.Chmod(script, 0o755))
	jobs := filepath.Join(dir, "features", "churn.yaml")
	b, err := os.ReadFile(jobs)
	require.NoError(t, err)
	writeFile(t, jobs, strings.Replace(string(b), `command: ["shop-trainer"]`, `command: ["./train.sh"]`, 1))
	r := quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	end := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	r = quiver(t, env, "-C", dir, "materialize", "--start", time.Now().UTC().Add(-40*24*time.Hour).Format(time.RFC3339), "--end", end)
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, env, "-C", dir, "train", "churn_train")
	require.Equal(t, exitOK, r.code, r.stderr)
	return dir
}

// Issue 18 item 4: alias names are checked; principals from the environment are escaped.
func TestAliasNamesAndPrincipals(t *testing.T) {
	forged := "eve\n2026-01-01 00:00:00  applied by admin\x1b[31m"
	env := map[string]string{"QUIVER_USER": forged}
	dir := trainedRepo(t, env)

	for _, bad := range []string{"../x", "v2", "2", "latest", "current"} {
		r := quiver(t, env, "-C", dir, "models", "alias", "churn", "1", bad)
		require.Equal(t, exitInvalid, r.code, "alias %q: %s", bad, r.stdout)
		require.Contains(t, r.stderr, "alias \""+bad+"\"")
	}
	r := quiver(t, env, "-C", dir, "models", "alias", "churn", "1", "production")
	require.Equal(t, exitOK, r.code, r.stderr)

	for _, args := range [][]string{
		{"describe", "feature_view", "user_stats"},
		{"models", "show", "churn@production"},
		{"runs", "list"},
		{"list", "feature_view"},
	} {
		r = quiver(t, env, append([]string{"-C", dir}, args...)...)
		require.Equal(t, exitOK, r.code, "%v: %s", args, r.stderr)
		require.NotContains(t, r.stdout, "\x1b", "%v", args)
		require.NotContains(t, r.stdout, "\n2026-01-01 00:00:00  applied by admin", "%v", args)
	}
	r = quiver(t, env, "-C", dir, "models", "show", "churn@production")
	require.Contains(t, r.stdout, `eve\n2026-01-01 00:00:00  applied by admin\x1b[31m`)
}
