package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/project"
	"github.com/quiverfs/quiver/training"
)

// TestConcurrentDatasetCreatesAndTrainSweep: 8 concurrent dataset create --rebuild of one
// name, then a 6-way train --param sweep, through the CLI against SQLite and Postgres
// registries: every run succeeds, every registered version verifies, and versions are 1..N.
func TestConcurrentDatasetCreatesAndTrainSweep(t *testing.T) {
	pg := testenv.StartPostgres(t)
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			env := map[string]string{}
			if backend == "postgres" {
				env["QUIVER_REGISTRY"] = pg.NewDatabase(t)
			}
			dir := filepath.Join(t.TempDir(), "shop")
			require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
			fakeTrainer(t, dir)
			require.Equal(t, exitOK, quiver(t, env, "-C", dir, "apply").code)
			now := time.Now().UTC()
			r := quiver(t, env, "-C", dir, "materialize", "--start", now.Add(-40*24*time.Hour).Format(time.RFC3339), "--end", now.Add(time.Hour).Format(time.RFC3339))
			require.Equal(t, exitOK, r.code, r.stderr)

			parallel := func(n int, args func(i int) []string) []result {
				out := make([]result, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						out[i] = quiver(t, env, args(i)...)
					}()
				}
				wg.Wait()
				return out
			}
			for i, r := range parallel(8, func(int) []string {
				return []string{"-C", dir, "dataset", "create", "train", "--service", "churn_v1", "--entities", filepath.Join(dir, "data", "labels.parquet"), "--rebuild"}
			}) {
				require.Equal(t, exitOK, r.code, "create %d: %s", i, r.stderr)
			}
			for i, r := range parallel(6, func(i int) []string {
				return []string{"-C", dir, "train", "churn_train", "--param", fmt.Sprintf("epochs=%d", i+1)}
			}) {
				require.Equal(t, exitOK, r.code, "train %d: %s", i, r.stderr)
			}

			list := verifyAll(t, env, dir)
			versions := map[string][]int{}
			for _, d := range list {
				versions[d.Name] = append(versions[d.Name], d.Version)
			}
			require.Equal(t, []int{1, 2, 3, 4, 5, 6, 7, 8}, versions["train"])
			// The sweep builds its dataset or reuses one built by a concurrent run: 1..k.
			sweep := versions["churn_train"]
			require.NotEmpty(t, sweep)
			for i, v := range sweep {
				require.Equal(t, i+1, v, "churn_train versions %v have a gap", sweep)
			}
			r = quiver(t, env, "-C", dir, "-o", "json", "models", "list")
			require.Equal(t, exitOK, r.code, r.stderr)
			var models []struct {
				Version int `json:"version"`
			}
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &models))
			var mv []int
			for _, m := range models {
				mv = append(mv, m.Version)
			}
			sort.Ints(mv)
			require.Equal(t, []int{1, 2, 3, 4, 5, 6}, mv)
		})
	}
}

// TestNoOpMaterializationsKeepTheCache: five materialize-incremental runs with nothing to load
// commit no Iceberg snapshot, and the next dataset create is a cache hit.
func TestNoOpMaterializationsKeepTheCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	r := quiver(t, nil, "-C", dir, "materialize-incremental")
	require.Equal(t, exitOK, r.code, r.stderr)
	create := []string{"-C", dir, "dataset", "create", "train", "--service", "churn_v1", "--entities", filepath.Join(dir, "data", "labels.parquet")}
	r = quiver(t, nil, create...)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Created train@v1")

	snapshots := func() int {
		cfg, err := config.Load(dir, func(string) string { return "" })
		require.NoError(t, err)
		off, err := project.OpenOffline(context.Background(), cfg, nil)
		require.NoError(t, err)
		defer off.Close()
		snaps, err := off.Snapshots(context.Background(), "user_stats", 1)
		require.NoError(t, err)
		return len(snaps)
	}
	before := snapshots()
	require.Equal(t, 1, before)
	for i := range 5 {
		r = quiver(t, nil, "-C", dir, "materialize-incremental")
		require.Equal(t, exitOK, r.code, "run %d: %s", i, r.stderr)
		require.Contains(t, r.stdout, "Nothing was committed to the offline store.", "run %d", i)
	}
	require.Equal(t, before, snapshots(), "no-op runs commit no snapshot")
	r = quiver(t, nil, "-o", "json", "-C", dir, "materialize-incremental")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, `"no_commit": true`)

	r = quiver(t, nil, create...)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Dataset cache hit: reused train@v1")
	require.DirExists(t, training.ContentDir(filepath.Join(dir, ".quiver", "warehouse"), "shop", contentID(t, dir, "train@v1")))
}

// contentID is a dataset version's content id, from dataset show.
func contentID(t *testing.T, dir, ref string) string {
	t.Helper()
	r := quiver(t, nil, "-C", dir, "-o", "json", "dataset", "show", ref)
	require.Equal(t, exitOK, r.code, r.stderr)
	var d struct {
		ContentID string `json:"content_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &d))
	require.NotEmpty(t, d.ContentID, r.stdout)
	return d.ContentID
}
