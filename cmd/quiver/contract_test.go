package main

// The CLI's machine contract (issue 12, seen item 3): every command's -o json is valid JSON
// with snake_case keys and 64-bit ids as strings; with -o json, errors are one JSON object on
// stderr; one error-kind → exit-code map; no secret ever printed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/serving/model/onnx/onnxtest"
)

// onnxLib is the ONNX Runtime library: $QUIVER_ONNXRUNTIME_LIB, else where
// scripts/onnxruntime.sh installs it.
func onnxLib(t *testing.T) string {
	t.Helper()
	if lib := os.Getenv("QUIVER_ONNXRUNTIME_LIB"); lib != "" {
		return lib
	}
	matches, _ := filepath.Glob("../../.cache/onnxruntime/*/linux-*/libonnxruntime.so.1")
	if len(matches) == 0 {
		t.Fatal("the ONNX Runtime library is needed: run make onnxruntime, or set QUIVER_ONNXRUNTIME_LIB")
	}
	lib, err := filepath.Abs(matches[0])
	require.NoError(t, err)
	return lib
}

// contractRepo is a feature repo taken through the whole loop on embedded stores: applied,
// materialized, a dataset built, a job trained that registers a real ONNX model (churn v1,
// aliased production).
type contractRepo struct {
	dir string
	env map[string]string
	now time.Time
}

func prepareContractRepo(t *testing.T, lib string) *contractRepo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	now := time.Now().UTC().Truncate(time.Second)
	writeActivity(t, filepath.Join(dir, "data", "user_activity.parquet"), now)
	mlp := onnxtest.NewMLP(3, 4, 11)
	mlp.Impute = []float32{20, 60, 4}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "models"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "models", "churn.onnx"), mlp.Model(), 0o644))
	// The trainer: logs a metric and "trains" the same model.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "train.sh"), []byte(`#!/bin/sh
test -f "$QUIVER_DATASET_DIR/manifest.json" || exit 9
echo '{"key":"loss","value":0.5,"step":1}' >> "$QUIVER_METRICS_FILE"
cp models/churn.onnx "$QUIVER_OUTPUT_DIR/model.onnx"
`), 0o755))
	churn := filepath.Join(dir, "features", "churn.yaml")
	b, err := os.ReadFile(churn)
	require.NoError(t, err)
	s := strings.Replace(string(b), `command: ["shop-trainer"]`, `command: ["./train.sh"]`, 1)
	s = strings.Replace(s, "    runtime: onnx\n", "    runtime: onnx\n    path: models/churn.onnx\n", 1)
	require.NoError(t, os.WriteFile(churn, []byte(s), 0o644))
	env := map[string]string{"QUIVER_ONNXRUNTIME_LIB": lib}
	r := quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, env, "-C", dir, "materialize", "--start", now.Add(-30*24*time.Hour).Format(time.RFC3339), "--end", now.Add(time.Minute).Format(time.RFC3339))
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, env, "-C", dir, "train", "churn_train")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, env, "-C", dir, "models", "alias", "churn", "1", "production")
	require.Equal(t, exitOK, r.code, r.stderr)
	return &contractRepo{dir: dir, env: env, now: now}
}

// startServe runs quiver serve on a free loopback port until the test ends.
func startServe(t *testing.T, dir string, env map[string]string, extra ...string) string {
	t.Helper()
	port, err := testenv.FreePort()
	require.NoError(t, err)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		var out, errOut bytes.Buffer
		args := append([]string{"-C", dir, "serve", "--addr", addr, "--metrics-addr", ""}, extra...)
		code := run(ctx, args, &out, &errOut, func(k string) string { return env[k] })
		done <- result{code: code, stdout: out.String(), stderr: errOut.String()}
	}()
	t.Cleanup(func() {
		cancel()
		res := <-done
		require.Equal(t, exitOK, res.code, res.stderr)
	})
	r := quiver(t, nil, "health", "--server", addr, "--wait", "20s")
	require.Equal(t, exitOK, r.code, r.stderr)
	return addr
}

// serveUntilHealthy runs quiver serve on a free loopback port until it answers health (or
// 20 s pass), then stops it, and returns health's result and serve's.
func serveUntilHealthy(t *testing.T, dir string, env map[string]string) (health, served result) {
	t.Helper()
	port, err := testenv.FreePort()
	require.NoError(t, err)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"-C", dir, "serve", "--addr", addr, "--metrics-addr", ""}, &out, &errOut, func(k string) string { return env[k] })
		done <- result{code: code, stdout: out.String(), stderr: errOut.String()}
	}()
	health = quiver(t, nil, "health", "--server", addr, "--wait", "20s")
	cancel()
	return health, <-done
}

// commandPaths lists every command of the tree ("dataset create", ...), hidden ones aside.
func commandPaths() []string {
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }}
	var out []string
	var walk func(prefix string, c *cobra.Command)
	walk = func(prefix string, c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			path := strings.TrimSpace(prefix + " " + sub.Name())
			out = append(out, path)
			walk(path, sub)
		}
	}
	walk("", a.rootCommand())
	sort.Strings(out)
	return out
}

var upper = regexp.MustCompile(`[A-Z]`)

// checkContract parses a -o json output and checks the contract on every value: keys have
// no capital letters (snake_case, never Go field names or protobuf camelCase), ids are
// strings, and no integer is past 2^53 (JavaScript and jq would round it).
func checkContract(t *testing.T, what, out string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), "%s: stdout is not JSON:\n%s", what, out)
	require.False(t, dec.More(), "%s: more than one JSON value on stdout:\n%s", what, out)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				require.False(t, upper.MatchString(k), "%s: key %q at %s is not snake_case:\n%s", what, k, path, out)
				if k == "id" || strings.HasSuffix(k, "_id") {
					_, isNumber := e.(json.Number)
					require.False(t, isNumber, "%s: %s.%s is an id and must be a string:\n%s", what, path, k, out)
				}
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case json.Number:
			if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				require.LessOrEqual(t, math.Abs(float64(n)), float64(1<<53), "%s: integer %s at %s would be rounded by JavaScript; print it as a string", what, x, path)
			}
		}
	}
	walk("$", v)
	return v
}

// checkErrorJSON checks a -o json failure: nothing on stdout but what the command reports,
// one error object on stderr whose exit_code is the process's.
func checkErrorJSON(t *testing.T, what string, r result) errorJSONObject {
	t.Helper()
	var e errorJSONObject
	dec := json.NewDecoder(strings.NewReader(r.stderr))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&e), "%s: stderr is not a JSON error object:\n%s", what, r.stderr)
	require.NotEmpty(t, e.Error, what)
	require.NotEmpty(t, e.Kind, what)
	require.Equal(t, r.code, e.ExitCode, "%s: exit_code in the error object", what)
	require.Equal(t, kindCodes[e.Kind], r.code, "%s: kind %q maps to exit %d", what, e.Kind, kindCodes[e.Kind])
	return e
}

// TestEveryCommandJSON runs every command of the tree with -o json in a prepared repo and
// parses what it prints. A command added to the tree fails this test until it is listed
// here, with arguments that exercise its JSON output.
func TestEveryCommandJSON(t *testing.T) {
	lib := onnxLib(t)
	repo := prepareContractRepo(t, lib)
	addr := startServe(t, repo.dir, repo.env)
	start := repo.now.Add(-30 * 24 * time.Hour).Format(time.RFC3339)
	end := repo.now.Add(2 * time.Minute).Format(time.RFC3339)
	entities := filepath.Join(repo.dir, "data", "labels.parquet")
	if _, err := os.Stat(entities); err != nil {
		matches, _ := filepath.Glob(filepath.Join(repo.dir, "data", "*labels*"))
		require.NotEmpty(t, matches, "the scaffold's entity file")
		entities = matches[0]
	}
	var runID string

	// Commands in the order they run; each is checked with -o json.
	cases := []struct {
		path string
		args func() []string
	}{
		{"version", func() []string { return nil }},
		{"init", func() []string { return []string{filepath.Join(t.TempDir(), "other")} }},
		{"validate", func() []string { return nil }},
		{"plan", func() []string { return nil }},
		{"apply", func() []string { return nil }},
		{"list", func() []string { return []string{"view"} }},
		{"describe", func() []string { return []string{"view", "user_stats"} }},
		{"materialize", func() []string { return []string{"--start", start, "--end", end} }},
		{"materialize-incremental", func() []string { return []string{"--end", end} }},
		{"dataset create", func() []string {
			return []string{"--service", "churn_v1", "--entities", entities, "--rebuild", "extra"}
		}},
		{"dataset list", func() []string { return nil }},
		{"dataset show", func() []string { return []string{"churn_train@v1"} }},
		{"dataset verify", func() []string { return []string{"churn_train@v1"} }},
		{"dataset export", func() []string { return []string{"churn_train@v1", "--to", t.TempDir()} }},
		{"dataset diff", func() []string { return []string{"churn_train@v1", "extra@v1"} }},
		{"dataset rm", func() []string { return []string{"extra@v1"} }},
		{"train", func() []string { return []string{"churn_train", "--dry-run"} }},
		{"runs list", func() []string { return nil }},
		{"runs show", func() []string { return []string{runID} }},
		{"models list", func() []string { return nil }},
		{"models show", func() []string { return []string{"churn@production"} }},
		{"models alias", func() []string { return []string{"churn", "1", "staging"} }},
		{"lineage", func() []string { return []string{"churn@production"} }},
		{"get-online", func() []string {
			return []string{"--service", "churn_v1", "--entity", "user_id=1", "--entity", "user_id=3"}
		}},
		{"predict", func() []string {
			return []string{"--server", addr, "--model", "churn@production", "--entity", "user_id=1", "--include-features"}
		}},
		{"health", func() []string { return []string{"--server", addr} }},
		{"push", func() []string {
			writeFile(t, filepath.Join(repo.dir, "features", "live.yaml"), pushDefs)
			r := quiver(t, repo.env, "-C", repo.dir, "apply")
			require.Equal(t, exitOK, r.code, r.stderr)
			rows := filepath.Join(repo.dir, "live.csv")
			writeFile(t, rows, "user_id,event_ts,clicks,page\n1,2026-11-01T10:00:00Z,10,home\n")
			return []string{"user_live", rows}
		}},
		{"status", func() []string { return nil }},
		{"online delete", func() []string { return []string{"user_stats", "--entity", "user_id=3"} }},
		{"audit", func() []string { return nil }},
		{"gc", func() []string { return []string{"--dry-run"} }},
	}
	// Long-running servers print logs, not a result; their failures are checked below.
	servers := []string{"serve", "serve-model", "stream", "ui"}

	var covered []string
	for _, tc := range cases {
		covered = append(covered, tc.path)
		t.Run(strings.ReplaceAll(tc.path, " ", "_"), func(t *testing.T) {
			args := append([]string{"-C", repo.dir, "-o", "json"}, strings.Fields(tc.path)...)
			args = append(args, tc.args()...)
			r := quiver(t, repo.env, args...)
			require.Equal(t, exitOK, r.code, "%v\nstderr: %s", args, r.stderr)
			v := checkContract(t, tc.path, r.stdout)
			if tc.path == "runs list" {
				runs := v.([]any)
				require.NotEmpty(t, runs)
				runID = runs[0].(map[string]any)["id"].(string)
			}
		})
	}
	covered = append(covered, servers...)
	// Commands with subcommands answer a usage error, as a JSON object.
	for _, path := range commandPaths() {
		if slices.Contains(covered, path) {
			continue
		}
		r := quiver(t, repo.env, "-C", repo.dir, "-o", "json", path)
		require.Equal(t, exitUsage, r.code, "%s is not covered by TestEveryCommandJSON: add it with arguments that print its JSON\n%s", path, r.stderr)
		e := checkErrorJSON(t, path, r)
		require.Equal(t, kindUsage, e.Kind)
		covered = append(covered, path)
	}
	require.ElementsMatch(t, commandPaths(), covered)

	// Servers that cannot start say why, as JSON with -o json.
	r := quiver(t, repo.env, "-C", repo.dir, "-o", "json", "serve-model")
	require.Equal(t, exitUsage, r.code)
	checkErrorJSON(t, "serve-model", r)
}

// TestPredictAndGetOnlineJSONAreProtojson: seen item 3 — predict printed Go structs
// ({"Kind":{"FloatVal":…}}) and get-online protobuf camelCase. Both now print protojson
// with the .proto's snake_case names, int64 as strings.
func TestPredictAndGetOnlineJSONAreProtojson(t *testing.T) {
	lib := onnxLib(t)
	repo := prepareContractRepo(t, lib)
	addr := startServe(t, repo.dir, repo.env)

	r := quiver(t, nil, "-o", "json", "predict", "--server", addr, "--model", "churn", "--entity", "user_id=1", "--entity", "user_id=2")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NotContains(t, r.stdout, "FloatVal")
	require.NotContains(t, r.stdout, `"Kind"`)
	var pred struct {
		ModelName      string `json:"model_name"`
		ModelVersion   string `json:"model_version"`
		FeatureService string `json:"feature_service"`
		Rows           int    `json:"rows"`
		Outputs        []struct {
			Name   string `json:"name"`
			Values []struct {
				FloatVal *float64 `json:"float_val"`
			} `json:"values"`
		} `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &pred), r.stdout)
	require.Equal(t, "churn", pred.ModelName)
	require.Equal(t, "churn_v1", pred.FeatureService)
	require.Equal(t, 2, pred.Rows)
	require.NotEmpty(t, pred.Outputs)
	require.Len(t, pred.Outputs[0].Values, 2)
	require.NotNil(t, pred.Outputs[0].Values[0].FloatVal, r.stdout)
	checkContract(t, "predict", r.stdout)

	for _, args := range [][]string{
		{"-C", repo.dir, "-o", "json", "get-online", "--service", "churn_v1", "--entity", "user_id=1"},
		{"-o", "json", "get-online", "--server", addr, "--service", "churn_v1", "--entity", "user_id=1"},
	} {
		r = quiver(t, repo.env, args...)
		require.Equal(t, exitOK, r.code, r.stderr)
		require.NotContains(t, r.stdout, "eventTimestampsMicros")
		require.Contains(t, r.stdout, `"event_timestamps_micros"`)
		v := checkContract(t, "get-online", r.stdout).(map[string]any)
		ts := v["features"].([]any)[0].(map[string]any)["event_timestamps_micros"].([]any)
		require.IsType(t, "", ts[0], "int64 values are strings in protojson")
	}

	r = quiver(t, nil, "-o", "json", "health", "--server", addr)
	require.Equal(t, exitOK, r.code, r.stderr)
	var h healthJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &h), "health -o json printed %q", r.stdout)
	require.Equal(t, healthJSON{Server: addr, Status: "SERVING"}, h)
}

// TestRunsAndModelsJSONAreSnakeCase: seen item 3 — runs list/show and models show printed
// Go field names.
func TestRunsAndModelsJSONAreSnakeCase(t *testing.T) {
	repo := prepareContractRepo(t, onnxLib(t))
	r := quiver(t, repo.env, "-C", repo.dir, "-o", "json", "runs", "list")
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, bad := range []string{`"ID"`, `"Job"`, `"DatasetName"`, `"StartedAt"`} {
		require.NotContains(t, r.stdout, bad)
	}
	var runs []trainingRunJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs))
	require.Len(t, runs, 1)
	require.Equal(t, "churn_train", runs[0].Job)
	require.Equal(t, "FINISHED", runs[0].Status)

	r = quiver(t, repo.env, "-C", repo.dir, "-o", "json", "runs", "show", runs[0].ID)
	require.Equal(t, exitOK, r.code, r.stderr)
	checkContract(t, "runs show", r.stdout)
	require.NotContains(t, r.stdout, `"Last"`)
	require.Contains(t, r.stdout, `"dataset_name": "churn_train"`)

	r = quiver(t, repo.env, "-C", repo.dir, "-o", "json", "models", "show", "churn@production")
	require.Equal(t, exitOK, r.code, r.stderr)
	checkContract(t, "models show", r.stdout)
	var show struct {
		Version modelVersionJSON `json:"version"`
		Aliases []modelAliasJSON `json:"aliases"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &show))
	require.Equal(t, "churn", show.Version.Name)
	require.Equal(t, runs[0].ID, show.Version.RunID)
	require.Equal(t, "production", show.Aliases[0].Alias)

	// Snapshot ids (random 63-bit Iceberg ids) print as strings in lineage and materialize.
	r = quiver(t, repo.env, "-C", repo.dir, "-o", "json", "lineage", "churn@production")
	require.Equal(t, exitOK, r.code, r.stderr)
	v := checkContract(t, "lineage", r.stdout).(map[string]any)
	views := v["lineage"].(map[string]any)["feature_views"].([]any)
	id := views[0].(map[string]any)["offline_snapshot_id"].(string)
	n, err := strconv.ParseInt(id, 10, 64)
	require.NoError(t, err)
	require.NotZero(t, n)
}

// TestErrorsAreJSONAndExitCodesAgree: seen item 3 — with -o json errors were plain text;
// a Redis wrong password exited 4 while a Postgres one exited 3; an unparsable Redis URL
// printed its password.
func TestErrorsAreJSONAndExitCodesAgree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	redis := testenv.StartRedis(t)
	require.NoError(t, redis.RequirePassword("right-pw"))
	pg := testenv.StartPostgres(t)

	cases := []struct {
		name   string
		env    map[string]string
		args   []string
		kind   string
		code   int
		secret string
	}{
		{"no repo", nil, []string{"-C", t.TempDir(), "list", "view"}, kindInvalid, exitInvalid, ""},
		{"bad flag", nil, []string{"-C", dir, "list", "--bogus"}, kindUsage, exitUsage, ""},
		{"unknown object", nil, []string{"-C", dir, "describe", "view", "nope"}, kindNotFound, exitInvalid, ""},
		{"redis wrong password", map[string]string{"QUIVER_ONLINE": "redis://:wrong-pw@" + redis.Addr + "/0"},
			[]string{"-C", dir, "get-online", "--service", "churn_v1", "--entity", "user_id=1"}, kindUnavailable, exitUnavailable, "wrong-pw"},
		{"redis no password", map[string]string{"QUIVER_ONLINE": "redis://" + redis.Addr + "/0"},
			[]string{"-C", dir, "get-online", "--service", "churn_v1", "--entity", "user_id=1"}, kindUnavailable, exitUnavailable, ""},
		{"postgres refused credentials", map[string]string{"QUIVER_REGISTRY": "postgres://nobody_here:pg-pw@127.0.0.1:" + strconv.Itoa(pg.Port()) + "/postgres?sslmode=disable"},
			[]string{"-C", dir, "list", "view"}, kindUnavailable, exitUnavailable, "pg-pw"},
		{"postgres unreachable", map[string]string{"QUIVER_REGISTRY": "postgres://u:pg-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"},
			[]string{"-C", dir, "list", "view"}, kindUnavailable, exitUnavailable, "pg-pw"},
		{"unparsable redis url", map[string]string{"QUIVER_ONLINE": "redis://:hunter2@localhost:port/0"},
			[]string{"-C", dir, "get-online", "--service", "churn_v1", "--entity", "user_id=1"}, kindInvalid, exitInvalid, "hunter2"},
		{"unparsable postgres url", map[string]string{"QUIVER_REGISTRY": "postgres://u:hun ter2@h:port/db"},
			[]string{"-C", dir, "list", "view"}, kindInvalid, exitInvalid, "hun ter2"},
		{"server down", nil, []string{"health", "--server", "127.0.0.1:1"}, kindUnavailable, exitUnavailable, ""},
		{"token in plaintext to a remote host", map[string]string{"QUIVER_TOKEN": "tok-secret"},
			[]string{"health", "--server", "192.0.2.1:6566"}, kindUsage, exitUsage, "tok-secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := quiver(t, tc.env, append([]string{"-o", "json"}, tc.args...)...)
			require.Equal(t, tc.code, r.code, r.stderr)
			e := checkErrorJSON(t, tc.name, r)
			require.Equal(t, tc.kind, e.Kind, e.Error)
			// The same failure in table output: the same exit code, a plain message.
			plain := quiver(t, tc.env, tc.args...)
			require.Equal(t, tc.code, plain.code, plain.stderr)
			require.True(t, strings.HasPrefix(plain.stderr, "quiver: "), plain.stderr)
			if tc.secret != "" {
				for _, out := range []string{r.stdout, r.stderr, plain.stdout, plain.stderr} {
					require.NotContains(t, out, tc.secret)
				}
			}
		})
	}
}

// TestPostgresLostMidCommandExits3: seen item 3 — the registry lost while a command runs
// exited 4. Here the training job waits while the test stops Postgres; train then cannot
// record the run's end and exits 3 (unavailable), with a JSON error naming no password.
func TestPostgresLostMidCommandExits3(t *testing.T) {
	pg := testenv.StartPostgres(t)
	env := map[string]string{"QUIVER_REGISTRY": pg.NewDatabase(t)}
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, env, "init", dir, "--project", "shop").code)
	started, proceed := filepath.Join(dir, "started"), filepath.Join(dir, "proceed")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "train.sh"), []byte(`#!/bin/sh
touch `+started+`
while [ ! -f `+proceed+` ]; do sleep 0.05; done
echo fake-onnx > "$QUIVER_OUTPUT_DIR/model.onnx"
`), 0o755))
	jobs := filepath.Join(dir, "features", "churn.yaml")
	b, err := os.ReadFile(jobs)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(jobs, []byte(strings.Replace(string(b), `command: ["shop-trainer"]`, `command: ["./train.sh"]`, 1)), 0o644))
	r := quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, env, "-C", dir, "materialize", "--start", time.Now().UTC().Add(-40*24*time.Hour).Format(time.RFC3339), "--end", time.Now().UTC().Add(time.Hour).Format(time.RFC3339))
	require.Equal(t, exitOK, r.code, r.stderr)

	done := make(chan result, 1)
	go func() { done <- quiver(t, env, "-C", dir, "-o", "json", "train", "churn_train") }()
	require.Eventually(t, func() bool { _, err := os.Stat(started); return err == nil }, time.Minute, 50*time.Millisecond, "the job started")
	pg.Stop()
	require.NoError(t, os.WriteFile(proceed, nil, 0o644))
	r = <-done
	require.Equal(t, exitUnavailable, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	e := checkErrorJSON(t, "train", result{code: r.code, stderr: lines[len(lines)-1]})
	require.Equal(t, kindUnavailable, e.Kind)
}
