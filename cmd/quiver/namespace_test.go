package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/project"
)

// Issue 22 item 3: "Shop" and the valid name "shop_d00aae6b" both mapped to the Iceberg
// namespace quiver_shop_d00aae6b, so the second project read the first's offline tables.

// collidingProjects are the two names of the issue; before the fix they shared a namespace.
var collidingProjects = []struct {
	name   string
	clicks int64
}{{"Shop", 1000}, {"shop_d00aae6b", 7000}}

// sharedStores is one registry and warehouse for several projects, on SQLite or Postgres.
func sharedStores(t *testing.T, backend string) map[string]string {
	dir := t.TempDir()
	env := map[string]string{"QUIVER_WAREHOUSE": filepath.Join(dir, "warehouse"), "QUIVER_ONLINE": "sqlite://" + filepath.Join(dir, "online.db")}
	switch backend {
	case "sqlite":
		env["QUIVER_REGISTRY"] = "sqlite://" + filepath.Join(dir, "registry.db")
	case "postgres":
		env["QUIVER_REGISTRY"] = testenv.StartPostgres(t).NewDatabase(t)
	}
	return env
}

// initProject makes a feature repo for project whose two users' clicks_7d are clicks+1 and
// clicks+2, with an entity file for them at now, and applies it.
func initProject(t *testing.T, env map[string]string, project string, clicks int64, now time.Time) string {
	dir := filepath.Join(t.TempDir(), "repo")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", project).code)
	writeUserActivity(t, filepath.Join(dir, "data", "user_activity.parquet"), now, clicks)
	writeFile(t, filepath.Join(dir, "ents.csv"), "user_id,event_timestamp\n1,"+now.Format(time.RFC3339)+"\n2,"+now.Format(time.RFC3339)+"\n")
	r := quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	return dir
}

// datasetCSV builds dataset NAME over the repo's ents.csv and returns it as CSV.
func datasetCSV(t *testing.T, env map[string]string, dir, name string) string {
	t.Helper()
	r := quiver(t, env, "-C", dir, "dataset", "create", name, "--service", "churn_v1", "--entities", filepath.Join(dir, "ents.csv"))
	require.Equal(t, exitOK, r.code, r.stderr)
	out := filepath.Join(t.TempDir(), "export")
	r = quiver(t, env, "-C", dir, "dataset", "export", name+"@v1", "--to", out, "--format", "csv")
	require.Equal(t, exitOK, r.code, r.stderr)
	return readExport(t, out)
}

// TestCollidingProjectNamesAreIsolated: the two projects of the issue share one registry and
// one warehouse, on SQLite and on Postgres. The second reads none of the first's rows before
// it materializes anything, and its own after; each project's tables and files are in
// folders of their own.
func TestCollidingProjectNamesAreIsolated(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			env := sharedStores(t, backend)
			now := time.Now().UTC().Truncate(time.Second)
			shop, other := collidingProjects[0], collidingProjects[1]
			shopDir := initProject(t, env, shop.name, shop.clicks, now)
			otherDir := initProject(t, env, other.name, other.clicks, now)
			interval := []string{"--start", now.Add(-30 * 24 * time.Hour).Format(time.RFC3339), "--end", now.Add(time.Minute).Format(time.RFC3339)}

			r := quiver(t, env, append([]string{"-C", shopDir, "materialize"}, interval...)...)
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Contains(t, datasetCSV(t, env, shopDir, "train"), fmt.Sprintf(",%d,", shop.clicks+1))

			// The second project has materialized nothing: it reads nulls, not Shop's rows.
			csv := datasetCSV(t, env, otherDir, "before")
			require.NotContains(t, csv, fmt.Sprint(shop.clicks+1), "%s read %s's offline rows:\n%s", other.name, shop.name, csv)

			r = quiver(t, env, append([]string{"-C", otherDir, "materialize"}, interval...)...)
			require.Equal(t, exitOK, r.code, r.stderr)
			csv = datasetCSV(t, env, otherDir, "train")
			require.Contains(t, csv, fmt.Sprintf(",%d,", other.clicks+1))
			require.NotContains(t, csv, fmt.Sprint(shop.clicks+1))
			// Shop's rows were not replaced by the other project's materialization.
			r = quiver(t, env, "-C", shopDir, "dataset", "create", "train", "--service", "churn_v1", "--entities", filepath.Join(shopDir, "ents.csv"), "--rebuild")
			require.Equal(t, exitOK, r.code, r.stderr)
			out := filepath.Join(t.TempDir(), "export")
			require.Equal(t, exitOK, quiver(t, env, "-C", shopDir, "dataset", "export", "train@v2", "--to", out, "--format", "csv").code)
			csv = readExport(t, out)
			require.Contains(t, csv, fmt.Sprintf(",%d,", shop.clicks+1))
			require.NotContains(t, csv, fmt.Sprint(other.clicks+1))

			wh := env["QUIVER_WAREHOUSE"]
			require.DirExists(t, filepath.Join(wh, "quiver_0_shop.db", "user_stats"))
			require.DirExists(t, filepath.Join(wh, "quiver_shop_d00aae6b.db", "user_stats"))
			require.DirExists(t, filepath.Join(wh, "projects", "0_shop", "datasets"))
			require.DirExists(t, filepath.Join(wh, "projects", "shop_d00aae6b", "datasets"))
		})
	}
}

// materializeInto materializes a repo's views into namespace, as an earlier Quiver did
// for its project (FoldedNamespace: the mapping before the fix).
func materializeInto(t *testing.T, env map[string]string, dir, namespace string, start, end time.Time) {
	ctx := context.Background()
	cfg, err := config.Load(dir, func(k string) string { return env[k] })
	require.NoError(t, err)
	reg, err := project.OpenRegistry(ctx, cfg)
	require.NoError(t, err)
	defer reg.Close()
	applied, err := catalog.Load(ctx, reg, cfg.Project)
	require.NoError(t, err)
	uri, err := project.CatalogURI(cfg)
	require.NoError(t, err)
	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: uri, Warehouse: cfg.Offline.Warehouse})
	require.NoError(t, err)
	defer cat.Close()
	st, err := iceberg.NewStore(ctx, cat, iceberg.StoreOptions{Namespace: namespace})
	require.NoError(t, err)
	srcs, err := project.Sources(cfg, nil, false)
	require.NoError(t, err)
	views, err := applied.Views()
	require.NoError(t, err)
	for _, v := range views {
		src, err := srcs.Open(v.Source)
		require.NoError(t, err)
		job := materialize.Job{Project: cfg.Project, Schema: v.Schema, Source: src, Offline: st, OfflineReader: st, TTL: v.Def.TTL.Std()}
		_, err = materialize.Run(ctx, reg, job, start, end, materialize.Options{})
		require.NoError(t, err)
	}
}

// TestProjectRefusesNamespaceWrittenByAnother: a warehouse written before the fix holds
// Shop's tables in quiver_shop_d00aae6b, now the namespace of project shop_d00aae6b. That
// project refuses it — exit code 5, naming both projects — until Shop's first use moves its
// tables to its own namespace; then each reads only its own rows.
func TestProjectRefusesNamespaceWrittenByAnother(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			env := sharedStores(t, backend)
			now := time.Now().UTC().Truncate(time.Second)
			shop, other := collidingProjects[0], collidingProjects[1]
			shopDir := initProject(t, env, shop.name, shop.clicks, now)
			otherDir := initProject(t, env, other.name, other.clicks, now)
			require.Equal(t, "quiver_shop_d00aae6b", iceberg.FoldedNamespace(shop.name))
			materializeInto(t, env, shopDir, iceberg.FoldedNamespace(shop.name), now.Add(-30*24*time.Hour), now.Add(time.Minute))

			for _, args := range [][]string{
				{"dataset", "create", "train", "--service", "churn_v1", "--entities", filepath.Join(otherDir, "ents.csv")},
				{"materialize-incremental"},
				{"gc"},
			} {
				r := quiver(t, env, append([]string{"-C", otherDir}, args...)...)
				require.Equal(t, exitProjectConflict, r.code, "%v: %s%s", args, r.stdout, r.stderr)
				require.Contains(t, r.stderr, `"shop_d00aae6b"`)
				require.Contains(t, r.stderr, `"Shop"`)
				require.Contains(t, r.stderr, "quiver_shop_d00aae6b")
			}
			r := quiver(t, env, "-C", otherDir, "-o", "json", "materialize-incremental")
			require.Equal(t, exitProjectConflict, r.code)
			require.Contains(t, r.stderr, `"kind":"project_conflict"`)

			// Shop's first use adopts its tables; then both projects work, each on its own.
			require.Contains(t, datasetCSV(t, env, shopDir, "train"), fmt.Sprintf(",%d,", shop.clicks+1), "Shop reads the rows it wrote before the fix")
			csv := datasetCSV(t, env, otherDir, "train")
			require.NotContains(t, csv, fmt.Sprint(shop.clicks+1))
			r = quiver(t, env, "-C", otherDir, "materialize", "--start", now.Add(-30*24*time.Hour).Format(time.RFC3339), "--end", now.Add(time.Minute).Format(time.RFC3339))
			require.Equal(t, exitOK, r.code, r.stderr)
			csv = datasetCSV(t, env, otherDir, "train2")
			require.Contains(t, csv, fmt.Sprintf(",%d,", other.clicks+1))
			require.NotContains(t, csv, fmt.Sprint(shop.clicks+1))
		})
	}
}

// TestProjectRefusesNamespaceOwnedByAnother: a namespace the registry records as another
// project's is refused, by every command that opens the offline store.
func TestProjectRefusesNamespaceOwnedByAnother(t *testing.T) {
	env := sharedStores(t, "sqlite")
	now := time.Now().UTC().Truncate(time.Second)
	dir := initProject(t, env, "beta", 10, now)
	ctx := context.Background()
	cfg, err := config.Load(dir, func(k string) string { return env[k] })
	require.NoError(t, err)
	reg, err := project.OpenRegistry(ctx, cfg)
	require.NoError(t, err)
	require.NoError(t, reg.ClaimNamespace(ctx, iceberg.ProjectNamespace("beta"), "alpha"))
	require.NoError(t, reg.Close())

	r := quiver(t, env, "-C", dir, "materialize-incremental")
	require.Equal(t, exitProjectConflict, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stderr, `project "beta" cannot use offline namespace quiver_beta: the registry records it as project "alpha"'s`)
	r = quiver(t, env, "-C", dir, "gc", "--dry-run")
	require.Equal(t, exitProjectConflict, r.code, r.stdout+r.stderr)
}
