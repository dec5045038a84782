package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

type result struct {
	code           int
	stdout, stderr string
}

// quiver runs one command line in-process with the given environment overrides.
func quiver(t testing.TB, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if strings.HasPrefix(k, "QUIVER_") { // never pick up a developer's settings
			return ""
		}
		return os.Getenv(k)
	}
	code := run(context.Background(), args, &out, &errOut, getenv)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test -update")
	require.Equal(t, string(want), got)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func TestInitValidateApplyWithNoServer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	r := quiver(t, nil, "init", dir)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.FileExists(t, filepath.Join(dir, "data", "user_activity.parquet"))

	r = quiver(t, nil, "-C", dir, "validate")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, "Definitions are valid: 1 entity, 1 source, 1 request source, 1 feature view, 1 on demand feature view, 2 feature services, 2 models, 2 training jobs.\n", r.stdout)

	r = quiver(t, nil, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Applied registry revision 1")
	require.FileExists(t, filepath.Join(dir, ".quiver", "registry.db"))

	r = quiver(t, nil, "-C", dir, "-o", "json", "list", "view")
	require.Equal(t, exitOK, r.code, r.stderr)
	var views []objectJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &views))
	require.Len(t, views, 1)
	require.Equal(t, "user_stats", views[0].Name)
	require.Equal(t, 1, views[0].Version)

	// A second init must not clobber the repo.
	r = quiver(t, nil, "init", dir)
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "already has a quiver.yaml")
}

const plantedA = `entities:
  - name: user
    join_keys: [{ name: user_id, type: int65 }]
sources:
  - name: activity
    parquet: { path: a.parquet }
    timestamp_field: ts
feature_views:
  - name: user_stats
    entities: [user]
    source: activity
    ttl: 7days
    features:
      - { name: clicks, type: int64 }
`

const plantedB = `feature_services:
  - name: churn
    features: [user_stat:clicks]
models:
  - name: churn
    feature_service: churn
    runtime: onnx
    colour: blue
`

func TestValidateReportsEveryPlantedError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "quiver.yaml"), "project: planted\n")
	writeFile(t, filepath.Join(dir, "features", "a.yaml"), plantedA)
	writeFile(t, filepath.Join(dir, "features", "b.yaml"), plantedB)

	r := quiver(t, nil, "-C", dir, "validate")
	require.Equal(t, exitInvalid, r.code)
	require.Empty(t, r.stdout)
	golden(t, "validate_planted.txt", r.stderr)

	r = quiver(t, nil, "-C", dir, "-o", "json", "validate")
	require.Equal(t, exitInvalid, r.code)
	var out struct {
		Valid  bool        `json:"valid"`
		Errors []errorJSON `json:"errors"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.False(t, out.Valid)
	require.Len(t, out.Errors, 4)
	require.Equal(t, errorJSON{File: "features/a.yaml", Line: 3, Col: 40, Message: out.Errors[0].Message}, out.Errors[0])

	// apply refuses invalid definitions the same way, touching nothing.
	r = quiver(t, nil, "-C", dir, "apply")
	require.Equal(t, exitInvalid, r.code)
	require.NoFileExists(t, filepath.Join(dir, ".quiver", "registry.db"))
}

func TestUsageAndConnectionErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir).code)

	for _, args := range [][]string{
		{"-C", dir, "list"},
		{"-C", dir, "list", "tables"},
		{"-C", dir, "describe", "view"},
		{"-C", dir, "--no-such-flag", "validate"},
		{"-C", dir, "-o", "yaml", "validate"},
		{"-C", dir, "nonsense"},
	} {
		r := quiver(t, nil, args...)
		require.Equal(t, exitUsage, r.code, "%v: %s", args, r.stderr)
	}

	r := quiver(t, nil, "-C", t.TempDir(), "validate")
	require.Equal(t, exitInvalid, r.code)
	require.Contains(t, r.stderr, "has no quiver.yaml")

	port, err := testenv.FreePort()
	require.NoError(t, err)
	url := "postgres://quiver:s3cret@127.0.0.1:" + itoa(port) + "/nowhere?connect_timeout=2"
	r = quiver(t, map[string]string{"QUIVER_REGISTRY": url}, "-C", dir, "apply")
	require.Equal(t, exitUnavailable, r.code, r.stderr)
	require.Contains(t, r.stderr, "127.0.0.1:"+itoa(port))
	require.Contains(t, r.stderr, "[redacted]")
	require.NotContains(t, r.stderr, "s3cret")

	r = quiver(t, map[string]string{"QUIVER_REGISTRY": "mysql://x"}, "-C", dir, "apply")
	require.Equal(t, exitInvalid, r.code)
	require.Contains(t, r.stderr, `registry URL scheme "mysql" is not supported`)
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestPostgresVersionedApply is the foundation issue's acceptance flow on a real Postgres.
func TestPostgresVersionedApply(t *testing.T) {
	pg := testenv.StartPostgres(t)
	env := map[string]string{"QUIVER_REGISTRY": pg.NewDatabase(t)}
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)

	r := quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NoFileExists(t, filepath.Join(dir, ".quiver", "registry.db"), "the env override must win over quiver.yaml")

	path := filepath.Join(dir, "features", "user_activity.yaml")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	writeFile(t, path, strings.Replace(string(b), "{ name: sessions_7d, type: int32 }", "{ name: sessions_7d, type: int64 }", 1))

	r = quiver(t, env, "-C", dir, "plan")
	require.Equal(t, exitOK, r.code, r.stderr)
	golden(t, "plan_type_change.txt", r.stdout)

	r = quiver(t, env, "-C", dir, "-o", "json", "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	var applied struct {
		Revision int64 `json:"revision"`
		Versions []struct {
			Kind    string `json:"kind"`
			Name    string `json:"name"`
			Version int    `json:"version"`
		} `json:"versions"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &applied))
	require.EqualValues(t, 2, applied.Revision)
	require.Len(t, applied.Versions, 1)
	require.Equal(t, 2, applied.Versions[0].Version)

	r = quiver(t, env, "-C", dir, "describe", "view", "user_stats", "--version", "1")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Version:  v1 of 2")
	require.Contains(t, r.stdout, "- name: sessions_7d\n      type: int32")

	r = quiver(t, env, "-C", dir, "describe", "view", "user_stats")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Version:  v2 of 2")
	require.Contains(t, r.stdout, "- name: sessions_7d\n      type: int64")

	// Removing a definition is only applied with --prune; history stays readable.
	require.NoError(t, os.Remove(filepath.Join(dir, "features", "churn.yaml")))
	writeFile(t, path, "sources:\n  - name: user_activity\n    parquet: { path: data/user_activity.parquet }\n    timestamp_field: event_ts\n")
	r = quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "9 object(s) no longer declared were kept")
	r = quiver(t, env, "-C", dir, "apply", "--prune")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "(removed)")
	r = quiver(t, env, "-C", dir, "describe", "view", "user_stats")
	require.Equal(t, exitInvalid, r.code)
	r = quiver(t, env, "-C", dir, "describe", "view", "user_stats", "--version", "2")
	require.Equal(t, exitOK, r.code, r.stderr)

	// An apply planned against an old revision is refused with exit code 3.
	r = quiver(t, env, "-C", dir, "apply", "--expect-revision", "1")
	require.Equal(t, exitUnavailable, r.code)
	require.Contains(t, r.stderr, "registry changed since plan")
}
