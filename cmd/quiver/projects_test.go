package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/scaffold"
	"github.com/quiverfs/quiver/internal/testenv"
)

// writeUserActivity replaces a repo's sample source with one row per user (1 and 2), an hour
// before now, whose clicks_7d is clicks+user: values that tell projects apart.
func writeUserActivity(t *testing.T, path string, now time.Time, clicks int64) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, scaffold.UserActivitySchema)
	defer b.Release()
	for _, user := range []int64{1, 2} {
		at := now.Add(-time.Hour)
		b.Field(0).(*array.Int64Builder).Append(user)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(at.UnixMicro()))
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(at.UnixMicro()))
		b.Field(3).(*array.Int64Builder).Append(clicks + user)
		b.Field(4).(*array.Float64Builder).Append(float64(clicks) / 2)
		b.Field(5).(*array.Int32Builder).Append(int32(user))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, nil, pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())
}

// fakeTrainer makes the repo's training job a shell script that checks its dataset and
// writes a model file.
func fakeTrainer(t *testing.T, dir string) {
	script := filepath.Join(dir, "train.sh")
	require.NoError(t, os.WriteFile(script, []byte(`#!/bin/sh
test -f "$QUIVER_DATASET_DIR/manifest.json" || exit 9
echo '{"key":"loss","value":0.5,"step":1}' >> "$QUIVER_METRICS_FILE"
echo "model of $QUIVER_PARAMS" > "$QUIVER_OUTPUT_DIR/model.onnx"
`), 0o755))
	jobs := filepath.Join(dir, "features", "churn.yaml")
	b, err := os.ReadFile(jobs)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(jobs, []byte(strings.Replace(string(b), `command: ["shop-trainer"]`, `command: ["./train.sh"]`, 1)), 0o644))
}

type datasetRef struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// verifyAll runs dataset verify on every registered version of a project.
func verifyAll(t *testing.T, env map[string]string, dir string) []datasetRef {
	t.Helper()
	r := quiver(t, env, "-C", dir, "-o", "json", "dataset", "list")
	require.Equal(t, exitOK, r.code, r.stderr)
	var list []datasetRef
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
	for _, d := range list {
		r := quiver(t, env, "-C", dir, "dataset", "verify", fmt.Sprintf("%s@v%d", d.Name, d.Version))
		require.Equal(t, exitOK, r.code, "%s@v%d: %s", d.Name, d.Version, r.stderr)
	}
	return list
}

// TestTwoProjectsShareRegistryAndWarehouse is the isolation acceptance test: two projects
// with the same view, dataset, job and model names share one Postgres registry, one warehouse
// and one Redis; each applies, materializes, builds datasets and trains; every value each one
// reads is its own, and every dataset version of both verifies.
func TestTwoProjectsShareRegistryAndWarehouse(t *testing.T) {
	pg := testenv.StartPostgres(t)
	redis := testenv.StartRedis(t)
	warehouse := filepath.Join(t.TempDir(), "warehouse")
	env := map[string]string{"QUIVER_REGISTRY": pg.NewDatabase(t), "QUIVER_WAREHOUSE": warehouse, "QUIVER_ONLINE": "redis://" + redis.Addr + "/0"}
	now := time.Now().UTC().Truncate(time.Second)
	projects := []struct {
		name   string
		clicks int64
		dir    string
	}{{name: "alpha", clicks: 1000}, {name: "beta", clicks: 7000}}
	for i := range projects {
		p := &projects[i]
		p.dir = filepath.Join(t.TempDir(), p.name)
		require.Equal(t, exitOK, quiver(t, nil, "init", p.dir, "--project", p.name).code)
		writeUserActivity(t, filepath.Join(p.dir, "data", "user_activity.parquet"), now, p.clicks)
		fakeTrainer(t, p.dir)
		writeFile(t, filepath.Join(p.dir, "ents.csv"), "user_id,event_timestamp\n1,"+now.Format(time.RFC3339)+"\n2,"+now.Format(time.RFC3339)+"\n")
	}
	// Interleaved, so that each step of one project runs over the other's state.
	for _, p := range projects {
		r := quiver(t, env, "-C", p.dir, "apply")
		require.Equal(t, exitOK, r.code, r.stderr)
	}
	for _, p := range projects {
		r := quiver(t, env, "-C", p.dir, "materialize", "--start", now.Add(-30*24*time.Hour).Format(time.RFC3339), "--end", now.Add(time.Minute).Format(time.RFC3339))
		require.Equal(t, exitOK, r.code, r.stderr)
		require.Contains(t, r.stdout, "Materialized 2 rows")
	}
	for _, p := range projects {
		for _, extra := range [][]string{nil, {"--rebuild"}} {
			args := append([]string{"-C", p.dir, "dataset", "create", "train", "--service", "churn_v1", "--entities", filepath.Join(p.dir, "ents.csv")}, extra...)
			r := quiver(t, env, args...)
			require.Equal(t, exitOK, r.code, r.stderr)
		}
		r := quiver(t, env, "-C", p.dir, "train", "churn_train")
		require.Equal(t, exitOK, r.code, r.stderr)
		require.Contains(t, r.stdout, "Registered model churn v1", "model versions are numbered per project")
	}

	runIDs := map[string]string{}
	for _, p := range projects {
		// The dataset holds this project's values.
		out := filepath.Join(t.TempDir(), "export")
		for _, ref := range []string{"train@v1", "train@v2"} {
			r := quiver(t, env, "-C", p.dir, "dataset", "export", ref, "--to", out, "--format", "csv")
			require.Equal(t, exitOK, r.code, r.stderr)
			files, err := filepath.Glob(filepath.Join(out, "*.csv"))
			require.NoError(t, err)
			require.NotEmpty(t, files)
			csv, err := os.ReadFile(files[0])
			require.NoError(t, err)
			require.Contains(t, string(csv), fmt.Sprintf(",%d,", p.clicks+1), "%s %s: user 1's clicks_7d", p.name, ref)
			require.Contains(t, string(csv), fmt.Sprintf(",%d,", p.clicks+2), "%s %s: user 2's clicks_7d", p.name, ref)
			require.NoError(t, os.RemoveAll(out))
		}
		// The online store serves this project's values.
		r := quiver(t, env, "-C", p.dir, "-o", "json", "get-online", "--feature", "user_stats:clicks_7d", "--entity", "user_id=1")
		require.Equal(t, exitOK, r.code, r.stderr)
		require.Contains(t, r.stdout, fmt.Sprint(p.clicks+1), "%s online: %s", p.name, r.stdout)
		for _, q := range projects {
			if q.name != p.name {
				require.NotContains(t, r.stdout, fmt.Sprint(q.clicks+1))
			}
		}
		// So does each project's quiver serve, over gRPC, from the shared registry and Redis.
		senv := maps.Clone(env)
		senv["QUIVER_ONNXRUNTIME_LIB"] = os.Getenv("QUIVER_ONNXRUNTIME_LIB")
		addr := startServe(t, p.dir, senv, "--preload-models=false")
		r = quiver(t, nil, "-o", "json", "get-online", "--server", addr, "--feature", "user_stats:clicks_7d", "--entity", "user_id=1")
		require.Equal(t, exitOK, r.code, r.stderr)
		require.Contains(t, r.stdout, fmt.Sprint(p.clicks+1), "%s served: %s", p.name, r.stdout)
		for _, q := range projects {
			if q.name != p.name {
				require.NotContains(t, r.stdout, fmt.Sprint(q.clicks+1))
			}
		}

		// Listings show this project's objects only.
		list := verifyAll(t, env, p.dir)
		require.Equal(t, []datasetRef{{"churn_train", 1}, {"train", 1}, {"train", 2}}, list)
		r = quiver(t, env, "-C", p.dir, "-o", "json", "runs", "list")
		require.Equal(t, exitOK, r.code, r.stderr)
		var runs []struct {
			ID      string `json:"id"`
			Project string `json:"project"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs))
		require.Len(t, runs, 1)
		runIDs[p.name] = runs[0].ID
		r = quiver(t, env, "-C", p.dir, "-o", "json", "models", "list")
		require.Equal(t, exitOK, r.code, r.stderr)
		var models []struct {
			Version int    `json:"version"`
			RunID   string `json:"run_id"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &models))
		require.Len(t, models, 1)
		require.Equal(t, runs[0].ID, models[0].RunID)
		r = quiver(t, env, "-C", p.dir, "lineage", "churn@v1")
		require.Equal(t, exitOK, r.code, r.stderr)
		require.Contains(t, r.stdout, "dataset  churn_train@v1")
		r = quiver(t, env, "-C", p.dir, "dataset", "diff", "train@v1", "train@v2")
		require.Equal(t, exitOK, r.code, r.stderr)
		require.Contains(t, r.stdout, "Identical: same content id.")
		r = quiver(t, env, "-C", p.dir, "dataset", "diff", "train@v1", "churn_train@v1")
		require.Equal(t, exitOK, r.code, r.stderr)
		require.Contains(t, r.stdout, "entities: ents.csv 2 rows")
		require.Contains(t, r.stdout, "  + churned bool", "labels.parquet has a label column, ents.csv none")

		// Each project's files are in its own folders.
		require.DirExists(t, filepath.Join(warehouse, "quiver_"+p.name+".db", "user_stats"))
		contents, err := filepath.Glob(filepath.Join(warehouse, "projects", p.name, "datasets", "sha256-*"))
		require.NoError(t, err)
		require.Len(t, contents, 2, "train@v1 and @v2 share one content; churn_train has its own")
		artifacts, err := filepath.Glob(filepath.Join(warehouse, "projects", p.name, "artifacts", "sha256-*"))
		require.NoError(t, err)
		require.Len(t, artifacts, 1)
	}
	require.NoDirExists(t, filepath.Join(warehouse, "quiver.db"), "nothing in the old shared namespace")
	require.NoDirExists(t, filepath.Join(warehouse, "datasets"), "nothing in the old shared dataset folder")

	// Another project's run is not found from this one.
	r := quiver(t, env, "-C", projects[0].dir, "runs", "show", runIDs["beta"])
	require.Equal(t, exitInvalid, r.code, r.stderr)
	require.Contains(t, r.stderr, "training run not found")
	r = quiver(t, env, "-C", projects[1].dir, "runs", "show", runIDs["beta"])
	require.Equal(t, exitOK, r.code, r.stderr)
}
