package training_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/training"
)

// exportFixture builds one small dataset and returns its directory and manifest.
func exportFixture(t *testing.T) (*fixture, string, *training.Manifest) {
	t.Helper()
	fx := newFixture(t)
	ents := filepath.Join(fx.dir, "entities.csv")
	require.NoError(t, os.WriteFile(ents, []byte("user_id,event_timestamp,y\n1,"+at(7).Format("2006-01-02T15:04:05Z")+",0.5\n"), 0o644))
	res, err := training.CreateDataset(context.Background(), fx.reg, fx.off, fx.snap, training.DatasetRequest{
		Project: project, Name: "exp", Service: "churn", Entities: ents, Warehouse: filepath.Join(fx.dir, "warehouse"),
	})
	require.NoError(t, err)
	m, _, err := training.ReadManifest(res.Dir)
	require.NoError(t, err)
	return fx, res.Dir, m
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// Issue 18 item 3: export refuses a non-empty target, never writes through a symlink out of
// it, and writes atomically.
func TestExportTargetSafety(t *testing.T) {
	ctx := context.Background()
	fx, src, m := exportFixture(t)

	// A non-empty target is refused without Force, and left as it was.
	to := filepath.Join(fx.dir, "out")
	require.NoError(t, os.MkdirAll(to, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(to, "data.csv"), []byte("keep me"), 0o644))
	_, err := training.ExportTo(ctx, src, m, to, training.ExportOptions{Format: training.FormatCSV})
	require.ErrorIs(t, err, training.ErrExportTarget)
	require.ErrorContains(t, err, "is not empty (it has data.csv); export into an empty directory, or pass --force")
	b, _ := os.ReadFile(filepath.Join(to, "data.csv"))
	require.Equal(t, "keep me", string(b))

	// With Force, a symlink at an exported name pointing outside the target is replaced,
	// not written through.
	outside := filepath.Join(fx.dir, "outside.txt")
	require.NoError(t, os.WriteFile(outside, []byte("secret"), 0o644))
	require.NoError(t, os.Remove(filepath.Join(to, "data.csv")))
	require.NoError(t, os.Symlink(outside, filepath.Join(to, "data.csv")))
	for _, name := range m.Files {
		require.NoError(t, os.Symlink(outside, filepath.Join(to, name.Path)))
	}
	files, err := training.ExportTo(ctx, src, m, to, training.ExportOptions{Format: training.FormatCSV, Force: true})
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(to, "data.csv")}, files)
	b, _ = os.ReadFile(outside)
	require.Equal(t, "secret", string(b), "the file outside the target is untouched")
	fi, err := os.Lstat(filepath.Join(to, "data.csv"))
	require.NoError(t, err)
	require.True(t, fi.Mode().IsRegular(), "the symlink was replaced by the exported file")
	_, err = training.ExportTo(ctx, src, m, to, training.ExportOptions{Format: training.FormatParquet, Force: true})
	require.NoError(t, err)
	b, _ = os.ReadFile(outside)
	require.Equal(t, "secret", string(b))
	_, err = training.Verify(to, "")
	require.NoError(t, err, "the exported Parquet files match their manifest")
	for _, n := range listDir(t, to) {
		require.False(t, strings.HasPrefix(n, ".quiver-export-"), "no staging directory is left behind")
	}

	// Atomic: a failed (here: cancelled) export leaves the previous file whole and no staging.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	before, err := os.ReadFile(filepath.Join(to, "data.csv"))
	require.NoError(t, err)
	_, err = training.ExportTo(cctx, src, m, to, training.ExportOptions{Format: training.FormatCSV, Force: true})
	require.Error(t, err)
	after, err := os.ReadFile(filepath.Join(to, "data.csv"))
	require.NoError(t, err)
	require.Equal(t, before, after)
	for _, n := range listDir(t, to) {
		require.False(t, strings.HasPrefix(n, ".quiver-export-"))
	}

	// A missing or empty target is fine.
	files, err = training.ExportTo(ctx, src, m, filepath.Join(fx.dir, "fresh", "dir"), training.ExportOptions{})
	require.NoError(t, err)
	require.Len(t, files, 1+len(m.Files))

	// A killed export leaves its staging folder behind: the next export removes it (its
	// process is gone) instead of refusing the target as non-empty; a running export's
	// staging folder is left alone.
	dead := exec.Command("sleep", "60")
	require.NoError(t, dead.Start())
	require.NoError(t, dead.Process.Kill())
	_ = dead.Wait()
	killed := filepath.Join(fx.dir, "killed")
	leftover := filepath.Join(killed, fmt.Sprintf(".quiver-export-%d-123", dead.Process.Pid))
	require.NoError(t, os.MkdirAll(leftover, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(leftover, "part-00000.parquet"), []byte("half"), 0o644))
	_, err = training.ExportTo(ctx, src, m, killed, training.ExportOptions{})
	require.NoError(t, err)
	require.NoDirExists(t, leftover)
	_, err = training.Verify(killed, "")
	require.NoError(t, err)
	running := filepath.Join(fx.dir, "running")
	live := filepath.Join(running, fmt.Sprintf(".quiver-export-%d-456", os.Getpid()))
	require.NoError(t, os.MkdirAll(live, 0o755))
	_, err = training.ExportTo(ctx, src, m, running, training.ExportOptions{})
	require.ErrorIs(t, err, training.ErrExportTarget)
	require.DirExists(t, live)
}
