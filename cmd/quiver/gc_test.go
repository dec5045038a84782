package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/project"
	"github.com/quiverfs/quiver/registry"
)

// dirSize is the bytes and files under dir.
func dirSize(t *testing.T, dir string) (bytes int64, files int) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			bytes += fi.Size()
			files++
		}
		return nil
	}))
	return bytes, files
}

type gcOut struct {
	DryRun     bool `json:"dry_run"`
	Collectors []struct {
		Collector string `json:"collector"`
		Removed   []struct {
			Kind  string `json:"kind"`
			Path  string `json:"path"`
			Bytes int64  `json:"bytes"`
		} `json:"removed"`
	} `json:"collectors"`
	BytesReclaimed int64  `json:"bytes_reclaimed"`
	MinOrphanAge   string `json:"min_orphan_age"`
	YoungFilesKept int    `json:"young_files_kept"`
}

func runGC(t *testing.T, dir string, args ...string) gcOut {
	t.Helper()
	r := quiver(t, nil, append([]string{"-C", dir, "-o", "json", "gc"}, args...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var out gcOut
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	return out
}

func (g gcOut) count(kind string) int {
	n := 0
	for _, c := range g.Collectors {
		for _, it := range c.Removed {
			if kind == "" || it.Kind == kind {
				n++
			}
		}
	}
	return n
}

// TestGCReclaimsWhatNothingNeeds is seen item 4: 20 no-op and 20 real runs, two datasets and
// the leftovers of killed commands; gc --older-than 0s leaves only the live snapshots' files
// (a second gc finds nothing), both datasets verify and keep the snapshots they were built
// from, the views still materialize and serve, and dataset create --at before the horizon
// fails naming the retention.
func TestGCReclaimsWhatNothingNeeds(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	now := time.Now().UTC()
	start, end := now.Add(-40*24*time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)
	beforeAll := time.Now().UTC().Add(-time.Second)
	for i := range 20 {
		r := quiver(t, nil, "-C", dir, "materialize", "--start", start, "--end", end)
		require.Equal(t, exitOK, r.code, "real run %d: %s", i, r.stderr)
		if i == 4 {
			r = quiver(t, nil, "-C", dir, "dataset", "create", "early", "--service", "churn_v1", "--entities", filepath.Join(dir, "data", "labels.parquet"))
			require.Equal(t, exitOK, r.code, r.stderr)
		}
	}
	for i := range 20 {
		r := quiver(t, nil, "-C", dir, "materialize-incremental", "--end", now.Add(time.Hour+time.Duration(i+1)*time.Second).Format(time.RFC3339))
		require.Equal(t, exitOK, r.code, "no-op run %d: %s", i, r.stderr)
	}
	r := quiver(t, nil, "-C", dir, "dataset", "create", "late", "--service", "churn_v1", "--entities", filepath.Join(dir, "data", "labels.parquet"))
	require.Equal(t, exitOK, r.code, r.stderr)
	onlineBefore := getOnlineAll(t, nil, dir, 200)

	// Leftovers of killed commands: a dataset staging folder, join spill files.
	wh := filepath.Join(dir, ".quiver", "warehouse")
	writeFile(t, filepath.Join(wh, "datasets", "late", ".staging-123", "part-0.parquet"), strings.Repeat("x", 1000))
	writeFile(t, filepath.Join(wh, "tmp", "spill-1", "bucket-0"), strings.Repeat("y", 500))

	cfg, err := config.Load(dir, func(string) string { return "" })
	require.NoError(t, err)
	off, err := project.OpenOffline(context.Background(), cfg, nil)
	require.NoError(t, err)
	defer off.Close()
	snaps, err := off.Snapshots(context.Background(), "user_stats", 1)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(snaps), 20, "20 real runs; the 20 no-op runs commit nothing")
	rowsBefore, err := off.Count(context.Background(), "user_stats", offline.ScanRequest{})
	require.NoError(t, err)

	sizeBefore, filesBefore := dirSize(t, wh)
	dry := runGC(t, dir, "--dry-run", "--older-than", "0s")
	require.True(t, dry.DryRun)
	require.Positive(t, dry.count("snapshot"))
	size, files := dirSize(t, wh)
	require.Equal(t, sizeBefore, size, "a dry run removes nothing")
	require.Equal(t, filesBefore, files)

	out := runGC(t, dir, "--older-than", "0s")
	require.Equal(t, dry.count(""), out.count(""), "the dry run listed what gc removed")
	sizeAfter, filesAfter := dirSize(t, wh)
	require.Less(t, sizeAfter, sizeBefore/3, "the warehouse shrinks: %d -> %d bytes, %d -> %d files", sizeBefore, sizeAfter, filesBefore, filesAfter)
	// gc's own commit writes one new metadata file.
	require.GreaterOrEqual(t, out.BytesReclaimed, sizeBefore-sizeAfter)
	require.Positive(t, out.count("staging"))
	require.Positive(t, out.count("spill"))
	t.Logf("warehouse %d bytes in %d files -> %d bytes in %d files", sizeBefore, filesBefore, sizeAfter, filesAfter)

	// Only live files are left: a second gc finds nothing.
	again := runGC(t, dir, "--older-than", "0s")
	require.Zero(t, again.count(""), "%+v", again)

	// What datasets need stays: they verify, and their snapshots are still there and readable.
	for _, ds := range []string{"early@v1", "late@v1"} {
		r := quiver(t, nil, "-C", dir, "dataset", "verify", ds)
		require.Equal(t, exitOK, r.code, "%s: %s %s", ds, r.stdout, r.stderr)
	}
	kept, err := off.Snapshots(context.Background(), "user_stats", 1)
	require.NoError(t, err)
	require.Len(t, kept, 2, "the current snapshot and the one the early dataset was built from")
	for _, s := range kept {
		n, err := off.Count(context.Background(), "user_stats", offline.ScanRequest{SnapshotID: s.ID})
		require.NoError(t, err)
		require.Positive(t, n)
	}
	rowsAfter, err := off.Count(context.Background(), "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	require.Equal(t, rowsBefore, rowsAfter)
	require.Equal(t, onlineBefore, getOnlineAll(t, nil, dir, 200))

	// --at before the horizon names the retention; the views still materialize.
	r = quiver(t, nil, "-C", dir, "dataset", "create", "past", "--service", "churn_v1", "--entities", filepath.Join(dir, "data", "labels.parquet"), "--at", beforeAll.Format(time.RFC3339))
	require.Equal(t, exitInvalid, r.code, r.stdout)
	require.Contains(t, r.stderr, "retention --older-than 0s")
	r = quiver(t, nil, "-C", dir, "materialize", "--start", start, "--end", end)
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", dir, "dataset", "create", "after", "--service", "churn_v1", "--entities", filepath.Join(dir, "data", "labels.parquet"))
	require.Equal(t, exitOK, r.code, r.stderr)
}

// TestGCConcurrentWithWriters: gc --older-than 0s in a loop while materialize and dataset
// create run: every command succeeds, every dataset verifies, the offline table holds the
// right rows, and nothing is left orphaned or lost.
func TestGCConcurrentWithWriters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	now := time.Now().UTC()
	start, end := now.Add(-40*24*time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)
	r := quiver(t, nil, "-C", dir, "materialize", "--start", start, "--end", end)
	require.Equal(t, exitOK, r.code, r.stderr)
	cfg, err := config.Load(dir, func(string) string { return "" })
	require.NoError(t, err)
	off, err := project.OpenOffline(context.Background(), cfg, nil)
	require.NoError(t, err)
	defer off.Close()
	want, err := off.Count(context.Background(), "user_stats", offline.ScanRequest{})
	require.NoError(t, err)

	var wg sync.WaitGroup
	fails := make(chan string, 100)
	do := func(n int, args func(i int) []string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				r := quiver(t, nil, append([]string{"-C", dir}, args(i)...)...)
				if r.code != exitOK {
					fails <- fmt.Sprintf("%v: exit %d: %s", args(i), r.code, r.stderr)
				}
			}
		}()
	}
	do(6, func(int) []string { return []string{"materialize", "--start", start, "--end", end} })
	do(4, func(i int) []string {
		return []string{"dataset", "create", fmt.Sprint("ds", i), "--service", "churn_v1", "--entities", filepath.Join(dir, "data", "labels.parquet"), "--rebuild"}
	})
	do(6, func(int) []string { return []string{"gc", "--older-than", "0s"} })
	wg.Wait()
	close(fails)
	for f := range fails {
		t.Error(f)
	}
	// One more gc after the writers: a fixed point, and nothing anyone needs went missing.
	runGC(t, dir, "--older-than", "0s")
	out := runGC(t, dir, "--older-than", "0s", "--dry-run")
	require.Zero(t, out.count(""), "%+v", out)
	for i := range 4 {
		r := quiver(t, nil, "-C", dir, "dataset", "verify", fmt.Sprint("ds", i, "@v1"))
		require.Equal(t, exitOK, r.code, r.stderr)
	}
	got, err := off.Count(context.Background(), "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "materialize", "--start", start, "--end", end).code)
}

// TestGCDryRunRemovesNothingAndKeepsOtherProjectsWorkFolders is issue 22 item 14: gc
// --dry-run removed a killed run's work folder in $TMPDIR, even one of another project. A
// quiver train of project other is killed with kill -9, leaving its work folder and a RUNNING
// run whose trainer's child still sleeps. gc --dry-run (of either project) writes and removes
// nothing: the folder is still there, the run still RUNNING, the child alive. A real gc of
// project shop, sharing $TMPDIR, leaves other's folder alone; other's own gc removes it.
func TestGCDryRunRemovesNothingAndKeepsOtherProjectsWorkFolders(t *testing.T) {
	tmp := t.TempDir()
	const lease = time.Second
	env := map[string]string{"QUIVER_RUN_LEASE": lease.String(), "TMPDIR": tmp}
	dirs := map[string]string{}
	for _, p := range []string{"shop", "other"} {
		dirs[p] = filepath.Join(t.TempDir(), p)
		require.Equal(t, exitOK, quiver(t, nil, "init", dirs[p], "--project", p).code)
	}
	dir := dirs["other"]
	script := filepath.Join(dir, "train.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nsleep 300 &\necho $! > \""+dir+"/child.pid\"\nwait\n"), 0o755))
	jobs := filepath.Join(dir, "features", "churn.yaml")
	b, err := os.ReadFile(jobs)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(jobs, []byte(strings.Replace(string(b), `command: ["shop-trainer"]`, `command: ["./train.sh"]`, 1)), 0o644))
	for _, d := range dirs {
		require.Equal(t, exitOK, quiver(t, env, "-C", d, "apply").code)
	}
	r := quiver(t, env, "-C", dir, "materialize-incremental")
	require.Equal(t, exitOK, r.code, r.stderr)

	cmd, _ := quiverProcess(t, env, "-C", dir, "train", "churn_train")
	child := 0
	waitFor(t, "the trainer to start", time.Minute, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "child.pid"))
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && child > 0
	})
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	work, _ := filepath.Glob(filepath.Join(tmp, "quiver-run-*"))
	require.Len(t, work, 1)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	// And the spill folder a killed offline write of project other left, untouched for hours.
	spill := filepath.Join(tmp, iceberg.SpillPrefix(iceberg.ProjectNamespace("other"))+"123")
	writeFile(t, filepath.Join(spill, "bucket-0000.arrows"), "x")
	old := time.Now().Add(-3 * time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(spill, "bucket-0000.arrows"), old, old))
	require.NoError(t, os.Chtimes(spill, old, old))
	time.Sleep(lease + lease/2) // the run is past its lease: a real gc would reap it

	status := func() string {
		r := quiver(t, env, "-C", dir, "-o", "json", "runs", "list")
		require.Equal(t, exitOK, r.code, r.stderr)
		var runs []struct{ Status string }
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs))
		require.Len(t, runs, 1)
		return runs[0].Status
	}
	for _, p := range []string{"other", "shop"} {
		for _, args := range [][]string{{"gc", "--dry-run"}, {"-o", "json", "gc", "--dry-run"}} {
			r := quiver(t, env, append([]string{"-C", dirs[p]}, args...)...)
			require.Equal(t, exitOK, r.code, r.stderr)
			require.NotContains(t, r.stderr, "removed", "%s %v", p, args)
			require.DirExists(t, work[0], "%s %v removed the work folder", p, args)
			require.DirExists(t, spill, "%s %v removed the spill folder", p, args)
		}
	}
	r = quiver(t, env, "-C", dir, "gc", "--dry-run")
	require.Contains(t, r.stdout, work[0], "the dry run names the work folder gc would remove")
	require.Contains(t, r.stdout, spill)
	// The trainer's own child died with quiver train (its supervisor ends the whole process
	// group), so what a dry run would kill cannot be watched here: the run must stay RUNNING.
	require.Equal(t, "RUNNING", runStatus(t, env, dir), "a dry run writes nothing to the registry")

	r = quiver(t, env, "-C", dirs["shop"], "gc")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.DirExists(t, work[0], "gc of project shop removed a work folder of project other")
	require.DirExists(t, spill, "gc of project shop removed a spill folder of project other")

	r = quiver(t, env, "-C", dir, "gc")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stderr, "removed "+work[0])
	require.NoDirExists(t, work[0])
	require.NoDirExists(t, spill)
	require.Equal(t, "FAILED", status())
	waitFor(t, "the dead run's child to be killed", 5*time.Second, func() bool { return !alive(child) })
}

// runStatus reads the status of a repo's one training run from the registry, without the
// reaping every command that lists runs does.
func runStatus(t *testing.T, env map[string]string, dir string) string {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load(dir, func(k string) string { return env[k] })
	require.NoError(t, err)
	reg, err := project.OpenRegistry(ctx, cfg)
	require.NoError(t, err)
	defer reg.Close()
	runs, err := reg.ListTrainingRuns(ctx, registry.TrainingRunFilter{Project: cfg.Project})
	require.NoError(t, err)
	require.Len(t, runs, 1)
	return string(runs[0].Status)
}

// TestGCKeepsYoungOrphans is issue 24's minimum orphan age: a file in a view table's
// location that no snapshot references and that was written just now (another engine's
// write in flight: Trino, another quiver, a writer on S3 the warehouse lock cannot reach)
// survives quiver gc, even with --older-than 0s; one whose mtime is older than the minimum
// age goes. The dry run says how many young files it keeps; quiver.yaml's
// offline.gc.min_orphan_age and --min-orphan-age set the age.
func TestGCKeepsYoungOrphans(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	now := time.Now().UTC()
	r := quiver(t, nil, "-C", dir, "materialize", "--start", now.Add(-40*24*time.Hour).Format(time.RFC3339), "--end", now.Format(time.RFC3339))
	require.Equal(t, exitOK, r.code, r.stderr)
	parts, err := filepath.Glob(filepath.Join(dir, ".quiver", "warehouse", "*", "user_stats", "data", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, parts, "the view table has a data partition")
	young := filepath.Join(parts[0], "00000-trino-in-flight.parquet")
	old := filepath.Join(parts[0], "00000-killed-4d-ago.parquet")
	mid := filepath.Join(parts[0], "00000-killed-2h-ago.parquet")
	for _, p := range []string{young, old, mid} {
		writeFile(t, p, "a write not committed yet")
	}
	setBack := func(p string, d time.Duration) {
		require.NoError(t, os.Chtimes(p, time.Now().Add(-d), time.Now().Add(-d)))
	}
	setBack(old, 96*time.Hour)
	setBack(mid, 2*time.Hour)

	r = quiver(t, nil, "-C", dir, "gc", "--dry-run", "--older-than", "0s")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Would keep 2 unreferenced table files younger than 72h0m0s", r.stdout)
	require.Contains(t, r.stdout, old)
	require.NotContains(t, r.stdout, young)
	require.FileExists(t, old, "a dry run removes nothing")

	out := runGC(t, dir, "--older-than", "0s")
	require.Equal(t, "72h0m0s", out.MinOrphanAge)
	require.Equal(t, 2, out.YoungFilesKept)
	require.FileExists(t, young, "a file written now survives gc")
	require.FileExists(t, mid, "so does one 2h old, under the default 72h")
	require.NoFileExists(t, old, "an unreferenced file older than the minimum age goes")

	// quiver.yaml's key, then the flag over it.
	cfg := filepath.Join(dir, "quiver.yaml")
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	withAge := func(age string) string {
		return strings.Replace(string(b), "offline:\n", "offline:\n  gc:\n    min_orphan_age: "+age+"\n", 1)
	}
	writeFile(t, cfg, withAge("1h"))
	out = runGC(t, dir)
	require.Equal(t, 1, out.YoungFilesKept)
	require.NoFileExists(t, mid, "older than offline.gc.min_orphan_age: 1h")
	require.FileExists(t, young)
	out = runGC(t, dir, "--min-orphan-age", "0s")
	require.Zero(t, out.YoungFilesKept)
	require.NoFileExists(t, young, "--min-orphan-age 0s: no minimum")

	r = quiver(t, nil, "-C", dir, "gc", "--min-orphan-age", "-1h")
	require.Equal(t, exitUsage, r.code, r.stderr)
	require.Contains(t, r.stderr, "--min-orphan-age -1h0m0s is negative")
	writeFile(t, cfg, withAge("soon"))
	r = quiver(t, nil, "-C", dir, "gc")
	require.Equal(t, exitInvalid, r.code, r.stderr)
	require.Contains(t, r.stderr, "min_orphan_age")
}
