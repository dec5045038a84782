package definitions

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const pathsRepo = `entities:
  - name: user
    join_keys: [{name: user_id, type: int64}]
sources:
  - name: s
    parquet: {path: %SOURCE%}
    timestamp_field: ts
feature_views:
  - name: v
    entities: [user]
    source: s
    features: [{name: a, type: int64}]
feature_services:
  - name: svc
    features: ["v:*"]
models:
  - name: m
    feature_service: svc
    runtime: onnx
    path: %MODEL%
training_jobs:
  - name: j
    feature_service: svc
    command: [python, train.py]
    entities: {path: %ENTITIES%}
`

func writePathsRepo(t *testing.T, source, model, entities string) string {
	t.Helper()
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	require.NoError(t, os.MkdirAll(filepath.Join(repo, "data"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(base, "outside"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(base, "outside", "secret.parquet"), []byte("x"), 0o644))
	y := strings.NewReplacer("%SOURCE%", source, "%MODEL%", model, "%ENTITIES%", entities).Replace(pathsRepo)
	require.NoError(t, os.WriteFile(filepath.Join(repo, "defs.yaml"), []byte(y), 0o644))
	return repo
}

func TestPathsOutsideTheRepoAreRefused(t *testing.T) {
	repo := writePathsRepo(t, "../outside/secret.parquet", "../../etc/passwd", "/etc/shadow")
	_, err := Load(repo)
	require.ErrorIs(t, err, ErrInvalid)
	msg := err.Error()
	require.Contains(t, msg, `defs.yaml:6:21: source "s" parquet: path "../outside/secret.parquet" is outside the feature repo`)
	require.Contains(t, msg, `defs.yaml:20:11: model "m": path "../../etc/passwd" is outside the feature repo`)
	require.Contains(t, msg, `defs.yaml:25:22: training job "j" entities: absolute path "/etc/shadow" is outside the feature repo`)
	require.Contains(t, msg, "allowed_paths")

	repo = writePathsRepo(t, "/etc", "models/m.onnx", "data/labels.parquet")
	_, err = Load(repo)
	require.ErrorContains(t, err, `absolute path "/etc" is outside the feature repo`)
}

func TestPathsInsideTheRepoAndAllowedRoots(t *testing.T) {
	repo := writePathsRepo(t, "data/*.parquet", "models/m.onnx", "./data/../data/labels.parquet")
	_, err := Load(repo)
	require.NoError(t, err)

	// An allowed root opens exactly that root, relative or absolute.
	repo = writePathsRepo(t, "../outside/secret.parquet", "models/m.onnx", filepath.Join(filepath.Dir(t.TempDir()), "nowhere.csv"))
	_, err = LoadAllowing(repo, []string{"../outside"})
	require.ErrorContains(t, err, "nowhere.csv\" is outside the feature repo or allowed_paths (../outside)")
	require.NotContains(t, err.Error(), "secret.parquet")

	outside := filepath.Join(filepath.Dir(repo), "outside")
	repo = writePathsRepo(t, outside+"/secret.parquet", "models/m.onnx", "data/labels.csv")
	_, err = LoadAllowing(repo, []string{outside})
	require.NoError(t, err)
}

func TestSymlinksOutOfTheRepoAreRefused(t *testing.T) {
	// A directory link, a file link matched by a glob, and a link found walking a directory.
	for name, tc := range map[string]struct{ link, target, source string }{
		"linked dir":    {"data/lake", "outside", "data/lake/secret.parquet"},
		"glob match":    {"data/x.parquet", "outside/secret.parquet", "data/*.parquet"},
		"walked dir":    {"data/x.parquet", "outside/secret.parquet", "data"},
		"linked source": {"data/y.parquet", "outside/secret.parquet", "data/y.parquet"},
	} {
		t.Run(name, func(t *testing.T) {
			repo := writePathsRepo(t, tc.source, "models/m.onnx", "data/labels.csv")
			require.NoError(t, os.Symlink(filepath.Join(filepath.Dir(repo), tc.target), filepath.Join(repo, tc.link)))
			_, err := Load(repo)
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, "defs.yaml:6:21: source \"s\" parquet: path \""+tc.source+"\" resolves through a symlink to ")
		})
	}
	// A link that stays inside the repo is fine.
	repo := writePathsRepo(t, "data/link.parquet", "models/m.onnx", "data/labels.csv")
	require.NoError(t, os.WriteFile(filepath.Join(repo, "real.parquet"), []byte("x"), 0o644))
	require.NoError(t, os.Symlink(filepath.Join(repo, "real.parquet"), filepath.Join(repo, "data", "link.parquet")))
	_, err := Load(repo)
	require.NoError(t, err)
}
