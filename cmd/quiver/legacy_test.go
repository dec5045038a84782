package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/project"
)

// materializeLegacy materializes a repo's views the way Quiver did before namespaces were per
// project: into the shared "quiver" namespace.
func materializeLegacy(t *testing.T, env map[string]string, dir string, start, end time.Time) {
	materializeInto(t, env, dir, iceberg.LegacyNamespace, start, end)
}

// TestLegacyWarehouseIsAdoptedByItsProject: a warehouse written before projects had their own
// Iceberg namespace keeps working. Its tables move, on first use, to the namespace of the
// project whose runs wrote them (history and all); another project sharing the registry and
// warehouse never adopts them.
func TestLegacyWarehouseIsAdoptedByItsProject(t *testing.T) {
	shared := t.TempDir()
	env := map[string]string{"QUIVER_REGISTRY": "sqlite://" + filepath.Join(shared, "registry.db"), "QUIVER_WAREHOUSE": filepath.Join(shared, "warehouse")}
	now := time.Now().UTC().Truncate(time.Second)
	dirs := map[string]string{}
	for _, p := range []string{"shop", "other"} {
		dirs[p] = filepath.Join(t.TempDir(), p)
		require.Equal(t, exitOK, quiver(t, nil, "init", dirs[p], "--project", p).code)
		writeUserActivity(t, filepath.Join(dirs[p], "data", "user_activity.parquet"), now, 500)
		writeFile(t, filepath.Join(dirs[p], "ents.csv"), "user_id,event_timestamp\n1,"+now.Format(time.RFC3339)+"\n")
		r := quiver(t, env, "-C", dirs[p], "apply")
		require.Equal(t, exitOK, r.code, r.stderr)
	}
	materializeLegacy(t, env, dirs["shop"], now.Add(-30*24*time.Hour), now.Add(time.Minute))
	require.DirExists(t, filepath.Join(shared, "warehouse", "quiver.db", "user_stats"))

	// The other project sees no data of shop's: its view was never materialized.
	r := quiver(t, env, "-C", dirs["other"], "dataset", "create", "train", "--service", "churn_v1", "--entities", filepath.Join(dirs["other"], "ents.csv"))
	require.Equal(t, exitOK, r.code, r.stderr)
	out := filepath.Join(t.TempDir(), "other")
	require.Equal(t, exitOK, quiver(t, env, "-C", dirs["other"], "dataset", "export", "train@v1", "--to", out, "--format", "csv").code)
	csv := readExport(t, out)
	require.NotContains(t, csv, "501", "another project's legacy rows are not joined")

	// shop's first use adopts its table and reads its rows.
	r = quiver(t, env, "-C", dirs["shop"], "dataset", "create", "train", "--service", "churn_v1", "--entities", filepath.Join(dirs["shop"], "ents.csv"))
	require.Equal(t, exitOK, r.code, r.stderr)
	out = filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, env, "-C", dirs["shop"], "dataset", "export", "train@v1", "--to", out, "--format", "csv").code)
	csv = readExport(t, out)
	require.Contains(t, csv, ",501,", "shop reads its legacy rows")

	ctx := context.Background()
	cfg, err := config.Load(dirs["shop"], func(k string) string { return env[k] })
	require.NoError(t, err)
	off, err := project.OpenOffline(ctx, cfg, nil)
	require.NoError(t, err)
	defer off.Close()
	snaps, err := off.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Len(t, snaps, 1, "the table moved with its history")
	exists, err := off.Catalog.Iceberg().CheckTableExists(ctx, []string{iceberg.LegacyNamespace, "user_stats"})
	require.NoError(t, err)
	require.False(t, exists)

	// Materialization continues on the adopted table.
	writeUserActivity(t, filepath.Join(dirs["shop"], "data", "user_activity.parquet"), now.Add(30*time.Minute), 900)
	r = quiver(t, env, "-C", dirs["shop"], "materialize", "--start", now.Add(-30*24*time.Hour).Format(time.RFC3339), "--end", now.Add(time.Hour).Format(time.RFC3339))
	require.Equal(t, exitOK, r.code, r.stderr)
	snaps, err = off.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Len(t, snaps, 2)
	n, err := off.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "the re-materialized interval replaced the legacy rows")
}

// readExport reads the one CSV file dataset export wrote to dir.
func readExport(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	return string(b)
}
