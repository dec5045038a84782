package training_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/open"
	"github.com/quiverfs/quiver/registry/sqlite"
	"github.com/quiverfs/quiver/training"
)

// envCrashBuild makes the test binary a dataset build that stops mid-way, to be killed.
const envCrashBuild = "QUIVER_TEST_CRASH_BUILD_DIR"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == training.SupervisorArg { // the runner's job supervisor
		os.Exit(training.Supervise(os.Args[2:]))
	}
	if dir := os.Getenv(envCrashBuild); dir != "" {
		crashingBuild(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

// crashingBuild starts a dataset build over the fixture in dir and hangs while writing it.
func crashingBuild(dir string) {
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	reg, err := sqlite.Open(ctx, filepath.Join(dir, "registry.db"))
	if err != nil {
		fail(err)
	}
	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: "sqlite://" + filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")})
	if err != nil {
		fail(err)
	}
	off, err := iceberg.NewStore(ctx, cat, iceberg.StoreOptions{SpillDir: dir})
	if err != nil {
		fail(err)
	}
	snap, err := catalog.Load(ctx, reg, project)
	if err != nil {
		fail(err)
	}
	_, err = training.CreateDataset(ctx, reg, off, snap, training.DatasetRequest{
		Project: project, Name: "churn_train", Service: "churn", Entities: filepath.Join(dir, "entities.parquet"),
		Warehouse: filepath.Join(dir, "warehouse"), Rebuild: true,
		Progress: func(done, total int64) { time.Sleep(time.Hour) },
	})
	fail(fmt.Errorf("the build was meant to hang: %v", err))
}

// TestKilledBuildRegistersNothingAndIsReaped: a build killed with SIGKILL mid-write leaves no
// registered version; the next build removes its staging files and its registry row, and
// numbers its own version 1 (no gap).
func TestKilledBuildRegistersNothingAndIsReaped(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	ents := filepath.Join(fx.dir, "entities.parquet")
	writeEntities(t, ents)
	wh := filepath.Join(fx.dir, "warehouse")

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrashBuild+"="+fx.dir)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	var stagingDir string
	require.Eventually(t, func() bool {
		builds, err := fx.reg.ListDatasetBuilds(ctx, project)
		if err != nil || len(builds) != 1 {
			return false
		}
		stagingDir = training.StagingDir(wh, project, builds[0].ID)
		entries, _ := os.ReadDir(stagingDir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".staging-") {
				return true // the snapshot is being written
			}
		}
		return false
	}, time.Minute, 20*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	_, err := fx.reg.GetDataset(ctx, project, "churn_train", 0)
	require.ErrorIs(t, err, registry.ErrDatasetNotFound, "a killed build registers nothing")
	require.DirExists(t, stagingDir)

	res, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, training.DatasetRequest{
		Project: project, Name: "churn_train", Service: "churn", Entities: ents, Warehouse: wh})
	require.NoError(t, err)
	require.Equal(t, 1, res.Dataset.Version)
	require.NoDirExists(t, stagingDir, "the next build removes a dead build's staging files")
	builds, err := fx.reg.ListDatasetBuilds(ctx, project)
	require.NoError(t, err)
	require.Empty(t, builds)
	left, err := os.ReadDir(training.StagingRoot(wh, project))
	require.NoError(t, err)
	require.Empty(t, left)
	_, err = training.Verify(res.Dir, res.Dataset.ContentID)
	require.NoError(t, err)
}

// TestReapStaleBuilds: a build whose process is gone, one past the age limit, and a staging
// folder without a build are removed; a live build's folder is kept.
func TestReapStaleBuilds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	reg, err := sqlite.Open(ctx, filepath.Join(dir, "registry.db"))
	require.NoError(t, err)
	defer reg.Close()
	wh := filepath.Join(dir, "warehouse")
	host, _ := os.Hostname()

	exited := exec.Command("true")
	require.NoError(t, exited.Run())
	dead, err := reg.BeginDatasetBuild(ctx, registry.DatasetBuild{Project: project, Name: "a", Host: host, PID: exited.Process.Pid})
	require.NoError(t, err)
	live, err := reg.BeginDatasetBuild(ctx, registry.DatasetBuild{Project: project, Name: "a", Host: host, PID: os.Getpid()})
	require.NoError(t, err)
	elsewhere, err := reg.BeginDatasetBuild(ctx, registry.DatasetBuild{Project: project, Name: "a", Host: "other-host", PID: 1})
	require.NoError(t, err)
	orphan := filepath.Join(training.StagingRoot(wh, project), "b999999")
	for _, d := range []string{training.StagingDir(wh, project, dead.ID), training.StagingDir(wh, project, live.ID), training.StagingDir(wh, project, elsewhere.ID), orphan} {
		require.NoError(t, os.MkdirAll(filepath.Join(d, ".staging-x"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, ".staging-x", "part-00000.parquet"), []byte("partial"), 0o444))
	}

	removed, err := training.ReapStaleBuilds(ctx, reg, wh, project, time.Hour)
	require.NoError(t, err)
	sort.Strings(removed)
	require.Equal(t, []string{training.StagingDir(wh, project, dead.ID), orphan}, removed)
	builds, err := reg.ListDatasetBuilds(ctx, project)
	require.NoError(t, err)
	require.Len(t, builds, 2)
	require.DirExists(t, training.StagingDir(wh, project, live.ID))
	require.DirExists(t, training.StagingDir(wh, project, elsewhere.ID), "another host's build is judged by age only")

	// Past the age limit, another host's build is dead too.
	removed, err = training.ReapStaleBuilds(ctx, reg, wh, project, time.Nanosecond)
	require.NoError(t, err)
	require.Len(t, removed, 2, "with a tiny age limit every build is stale, even a live one")
}

// TestConcurrentRebuilds: eight builds of one name at once, through the SQLite and the
// Postgres registry, give eight versions 1..8, each verifying; identical content is stored
// once and nothing is left staged.
func TestConcurrentRebuilds(t *testing.T) {
	pg := testenv.StartPostgres(t)
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			var reg registry.Store
			if backend == "postgres" {
				var err error
				reg, err = open.Open(ctx, pg.NewDatabase(t))
				require.NoError(t, err)
				t.Cleanup(func() { reg.Close() })
			}
			fx := newFixtureWith(t, reg)
			ents := filepath.Join(fx.dir, "entities.parquet")
			writeEntities(t, ents)
			wh := filepath.Join(fx.dir, "warehouse")
			const n = 8
			var wg sync.WaitGroup
			results := make([]*training.DatasetResult, n)
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, training.DatasetRequest{
						Project: project, Name: "churn_train", Service: "churn", Entities: ents, Warehouse: wh, Rebuild: true})
				}()
			}
			wg.Wait()
			for i := range n {
				require.NoError(t, errs[i], "build %d", i)
			}
			list, err := fx.reg.ListDatasets(ctx, project, "churn_train")
			require.NoError(t, err)
			require.Len(t, list, n)
			for i, d := range list {
				require.Equal(t, i+1, d.Version, "versions are 1..%d with no gap", n)
				_, err := training.Verify(training.DatasetDir(wh, d), d.ContentID)
				require.NoError(t, err, "v%d", d.Version)
			}
			entries, err := os.ReadDir(training.DatasetsDir(wh, project))
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			require.ElementsMatch(t, []string{".staging", strings.Replace(list[0].ContentID, ":", "-", 1)}, names, "identical content stored once")
			staged, err := os.ReadDir(training.StagingRoot(wh, project))
			require.NoError(t, err)
			require.Empty(t, staged)
			builds, err := fx.reg.ListDatasetBuilds(ctx, project)
			require.NoError(t, err)
			require.Empty(t, builds)
		})
	}
}
