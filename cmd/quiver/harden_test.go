package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
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

// treeState is every file under dir (except the directories skipped) with its mode and content
// hash, for byte-for-byte comparisons.
func treeState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[rel] = "dir " + info.Mode().String()
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[rel] = info.Mode().String() + " " + hex.EncodeToString(sum[:])
		return nil
	})
	require.NoError(t, err)
	return out
}

// dryRunCommands lists every command that has a --dry-run flag, by command path.
func dryRunCommands(c *cobra.Command) []string {
	var out []string
	if c.Flags().Lookup("dry-run") != nil {
		out = append(out, c.CommandPath())
	}
	for _, sub := range c.Commands() {
		out = append(out, dryRunCommands(sub)...)
	}
	return out
}

// Issue 18 item 6: every --dry-run leaves the registry database, the online store and the
// warehouse byte-for-byte as they were.
func TestEveryDryRunWritesNothing(t *testing.T) {
	dir := trainedRepo(t, nil)
	now := time.Now().UTC()
	writeFile(t, filepath.Join(dir, "data", "new_labels.csv"), "user_id,event_timestamp,churned\n1,"+now.Add(-time.Hour).Format(time.RFC3339)+",true\n")
	start, end := now.Add(-3*24*time.Hour).Format(time.RFC3339), now.Add(2*time.Hour).Format(time.RFC3339)
	// A Feast repository for import feast: the kitchen-sink registry of definitions/feast's tests.
	feastRepo := filepath.Join(t.TempDir(), "feature_repo")
	reg, err := os.ReadFile(filepath.Join("..", "..", "definitions", "feast", "testdata", "kitchen_sink_registry.db"))
	require.NoError(t, err)
	writeFile(t, filepath.Join(feastRepo, "data", "registry.db"), string(reg))
	writeFile(t, filepath.Join(feastRepo, "feature_store.yaml"), "project: shop\nregistry: data/registry.db\nprovider: local\n")
	cases := map[string][][]string{
		"quiver import feast":            {{"import", "feast", feastRepo, "--out", filepath.Join(t.TempDir(), "imported"), "--dry-run"}},
		"quiver materialize":             {{"materialize", "--start", start, "--end", end, "--dry-run"}},
		"quiver materialize-incremental": {{"materialize-incremental", "--end", end, "--dry-run"}},
		"quiver gc":                      {{"gc", "--dry-run"}, {"gc", "--dry-run", "--older-than", "0s"}},
		"quiver train": {
			{"train", "churn_train", "--dry-run"},
			{"train", "churn_train", "--dry-run", "--entities", filepath.Join(dir, "data", "new_labels.csv")},
			{"train", "churn_train", "--dry-run", "--dataset", "churn_train@v1"},
			{"train", "churn_train", "--backend", "kubernetes", "--dry-run"},
			{"train", "churn_train", "--backend", "kubernetes", "--dry-run", "--entities", filepath.Join(dir, "data", "new_labels.csv")},
			{"train", "churn_train", "--backend", "kubernetes", "--dry-run", "--dataset", "churn_train@v1"},
		},
	}
	found := dryRunCommands((&app{getenv: func(string) string { return "" }}).rootCommand())
	require.NotEmpty(t, found)
	for _, c := range found {
		require.Contains(t, cases, c, "%s has --dry-run: add it to this test", c)
	}

	state := func() map[string]string {
		s := treeState(t, filepath.Join(dir, ".quiver"))
		require.Contains(t, s, "registry.db")
		manifests, err := filepath.Glob(filepath.Join(dir, ".quiver", "warehouse", "projects", "*", "datasets", "sha256-*", "manifest.json"))
		require.NoError(t, err)
		require.Len(t, manifests, 1, "the dataset the dry runs may reuse")
		return s
	}
	for _, c := range found {
		for _, args := range cases[c] {
			before := state()
			r := quiver(t, nil, append([]string{"-C", dir}, args...)...)
			require.Equal(t, exitOK, r.code, "%v: %s", args, r.stderr)
			require.Equal(t, before, state(), "%v changed the registry, online store or warehouse", args)
		}
	}

	// What the dry runs say.
	r := quiver(t, nil, "-C", dir, "train", "churn_train", "--backend", "kubernetes", "--dry-run", "--entities", filepath.Join(dir, "data", "new_labels.csv"))
	require.Contains(t, r.stderr, "Dry run: no dataset was built")
	require.Contains(t, r.stderr, "Warning: the Job uses local paths ("+filepath.Join(dir, ".quiver", "warehouse", "projects", "demo", "datasets"))
	require.Contains(t, r.stdout, "kind: Job")
	r = quiver(t, nil, "-C", dir, "train", "churn_train", "--dry-run", "--entities", filepath.Join(dir, "data", "new_labels.csv"))
	require.Contains(t, r.stdout, "Dry run: would build (or reuse) a dataset \"churn_train\"")
	r = quiver(t, nil, "-C", dir, "train", "churn_train", "--dry-run", "--entities", filepath.Join(dir, "data", "missing.csv"))
	require.Equal(t, exitInvalid, r.code)
	require.Contains(t, r.stderr, "missing.csv")
}

// The Kubernetes backend refuses a job without an image before building anything.
func TestKubernetesDryRunValidatesBeforeWork(t *testing.T) {
	dir := trainedRepo(t, nil)
	jobs := filepath.Join(dir, "features", "churn.yaml")
	b, err := os.ReadFile(jobs)
	require.NoError(t, err)
	require.Contains(t, string(b), "image:")
	var kept []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "image:") {
			kept = append(kept, line)
		}
	}
	writeFile(t, jobs, strings.Join(kept, "\n"))
	r := quiver(t, nil, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	writeFile(t, filepath.Join(dir, "data", "new_labels.csv"), "user_id,event_timestamp,churned\n1,2026-01-01T00:00:00Z,true\n")
	before := treeState(t, filepath.Join(dir, ".quiver", "warehouse"))
	r = quiver(t, nil, "-C", dir, "train", "churn_train", "--backend", "kubernetes", "--dry-run", "--entities", filepath.Join(dir, "data", "new_labels.csv"))
	require.Equal(t, exitInvalid, r.code, r.stdout)
	require.Contains(t, r.stderr, `training job "churn_train" cannot run on Kubernetes: it has no image`)
	require.NotContains(t, r.stderr, "Built dataset")
	require.Equal(t, before, treeState(t, filepath.Join(dir, ".quiver", "warehouse")))
}

// Issue 18 item 7: sizes with units, params reported as params, run id prefixes, and serve
// checking the ONNX Runtime at start.
func TestSmallContractGaps(t *testing.T) {
	dir := trainedRepo(t, nil)
	now := time.Now().UTC()
	start, end := now.Add(-24*time.Hour).Format(time.RFC3339), now.Format(time.RFC3339)

	// Byte sizes with units, on every flag that takes one; errors name the flag.
	r := quiver(t, nil, "-C", dir, "materialize", "--start", start, "--end", end, "--memory-budget", "512MiB", "--dry-run")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", dir, "materialize-incremental", "--memory-budget", "2GB", "--dry-run")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", dir, "dataset", "create", "sized", "--service", "churn_v1", "--entities", filepath.Join(dir, "data", "labels.parquet"), "--memory-budget", "64MiB")
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, args := range [][]string{
		{"materialize", "--start", start, "--end", end, "--memory-budget", "lots", "--dry-run"},
		{"dataset", "create", "x", "--service", "churn_v1", "--entities", "e.csv", "--memory-budget", "12XB"},
		{"serve", "--max-recv-bytes", "big"},
	} {
		r = quiver(t, nil, append([]string{"-C", dir}, args...)...)
		require.Equal(t, exitUsage, r.code, "%v", args)
		flag := args[len(args)-2]
		if args[0] == "materialize" {
			flag = args[len(args)-3]
		}
		require.Contains(t, r.stderr, `for "`+flag+`" flag: invalid byte size`, "%v", args)
		require.Contains(t, r.stderr, "like 512MiB, 2GB or 1048576")
	}

	// A bad --param is an invalid param, not invalid dataset input.
	r = quiver(t, nil, "-C", dir, "train", "churn_train", "--param", "epochs=abc")
	require.Equal(t, exitInvalid, r.code)
	require.Contains(t, r.stderr, `invalid param: --param epochs=abc: param value "abc" is not an int`)
	require.NotContains(t, r.stderr, "invalid dataset input")

	// runs show takes a unique prefix.
	r = quiver(t, nil, "-C", dir, "-o", "json", "runs", "list")
	require.Equal(t, exitOK, r.code, r.stderr)
	var runs []struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs))
	require.Len(t, runs, 1)
	r = quiver(t, nil, "-C", dir, "runs", "show", runs[0].ID[:6])
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, runs[0].ID+" (job churn_train")
	r = quiver(t, nil, "-C", dir, "runs", "show", "zz-no-such-run")
	require.Equal(t, exitInvalid, r.code)
	require.Contains(t, r.stderr, "no run has this id or id prefix")

	// serve refuses to start when an onnx model's runtime cannot be loaded.
	missing := filepath.Join(t.TempDir(), "libonnxruntime.so")
	r = quiver(t, map[string]string{"QUIVER_ONNXRUNTIME_LIB": missing}, "-C", dir, "serve", "--addr", "127.0.0.1:0", "--metrics-addr", "")
	require.NotEqual(t, exitOK, r.code)
	require.Contains(t, r.stderr, `model "churn" uses the onnx runtime, but the ONNX Runtime library `+missing+" cannot be loaded")
	require.Contains(t, r.stderr, "scripts/onnxruntime.sh")
}

// Issue 18 item 1 through the CLI: the alias bomb is one clear error, and long error lists end
// with the count of the rest.
func TestValidateBoundedErrors(t *testing.T) {
	dir := initRepo(t)
	var b strings.Builder
	b.WriteString("feature_views:\n  - &v\n    name: v\n    source: s\n    entities: [e]\n    features:\n      - &f {name: a, type: int64}\n")
	for range 1000 {
		b.WriteString("      - *f\n")
	}
	for range 1000 {
		b.WriteString("  - *v\n")
	}
	writeFile(t, filepath.Join(dir, "features", "bomb.yaml"), b.String())
	r := quiver(t, nil, "-C", dir, "validate")
	require.Equal(t, exitInvalid, r.code)
	require.Contains(t, r.stderr, "features/bomb.yaml:")
	require.Contains(t, r.stderr, "YAML aliases expand this file by more than 10000 nodes")
	require.Contains(t, r.stderr, "1 error(s) in the definitions")

	b.Reset()
	b.WriteString("entities:\n")
	for i := range 300 {
		b.WriteString("  - {name: e" + strconv.Itoa(i) + ", bogus: 1, join_keys: [{name: k, type: int64}]}\n")
	}
	writeFile(t, filepath.Join(dir, "features", "bomb.yaml"), b.String())
	r = quiver(t, nil, "-C", dir, "validate")
	require.Equal(t, exitInvalid, r.code)
	require.Contains(t, r.stderr, "and 200 more problems (only the first 100 are listed)\n300 error(s) in the definitions")
	r = quiver(t, nil, "-C", dir, "-o", "json", "validate")
	require.Equal(t, exitInvalid, r.code)
	var out struct {
		Errors []struct{ Message string }
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Len(t, out.Errors, 101)
	require.Equal(t, "and 200 more problems (only the first 100 are listed)", out.Errors[100].Message)
}

// Issue 18 item 3 through the CLI: a non-empty target is invalid input (exit 1) without --force.
func TestDatasetExportRefusesNonEmptyTarget(t *testing.T) {
	dir := trainedRepo(t, nil)
	to := filepath.Join(t.TempDir(), "out")
	writeFile(t, filepath.Join(to, "notes.txt"), "mine")
	r := quiver(t, nil, "-C", dir, "dataset", "export", "churn_train@v1", "--to", to, "--format", "csv")
	require.Equal(t, exitInvalid, r.code, r.stdout)
	require.Contains(t, r.stderr, "is not empty (it has notes.txt)")
	r = quiver(t, nil, "-C", dir, "dataset", "export", "churn_train@v1", "--to", to, "--format", "csv", "--force")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.FileExists(t, filepath.Join(to, "data.csv"))
	b, err := os.ReadFile(filepath.Join(to, "notes.txt"))
	require.NoError(t, err)
	require.Equal(t, "mine", string(b))
}
