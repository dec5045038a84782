package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/scaffold"
)

// fsizeEnv makes the CLI child of quiverProcess set RLIMIT_FSIZE to its value (see TestMain):
// a write past that many bytes into any one file fails with EFBIG, as it would with ENOSPC
// on a full disk, without needing root to mount a small file system.
const fsizeEnv = "QUIVER_TEST_FSIZE"

// quiverLimited runs `quiver args...` as a real process whose files may not grow past limit
// bytes, and waits for it.
func quiverLimited(t *testing.T, limit int64, args ...string) (int, string) {
	t.Helper()
	cmd, out := quiverProcess(t, map[string]string{fsizeEnv: strconv.FormatInt(limit, 10)}, args...)
	err := cmd.Wait()
	code := 0
	if err != nil {
		code = cmd.ProcessState.ExitCode()
	}
	return code, out.String()
}

// TestFullDiskFailsCleanly: materialize and dataset create run out of space part-way. Each
// fails with the failed-operation exit code, naming what it could not write; the run is
// recorded FAILED, nothing half-written is registered or left behind, and a re-run once there
// is space again succeeds with every row exactly once.
func TestFullDiskFailsCleanly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	// 30,000 users × 40 days: the online write of the last 7 days outgrows 2 MB.
	_, err := scaffold.WriteShopData(dir, 30_000, 40, time.Now().UTC().Truncate(time.Hour))
	require.NoError(t, err)
	r := quiver(t, nil, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)

	code, out := quiverLimited(t, 2_000_000, "-C", dir, "materialize-incremental")
	require.Equal(t, exitFailed, code, out)
	require.Contains(t, out, `materialize "user_stats"`, "the error names the view")
	type run struct {
		Status string `json:"status"`
	}
	runs := func() []run {
		r := quiver(t, nil, "-C", dir, "-o", "json", "runs", "list", "--kind", "materialization")
		require.Equal(t, exitOK, r.code, r.stderr)
		var v struct {
			Runs []run `json:"runs"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
		return v.Runs
	}
	require.Len(t, runs(), 1)
	require.Equal(t, "FAILED", runs()[0].Status)

	// Space again: the re-run covers the same interval and replaces what the failed run
	// committed offline, so no (user_id, event_ts) is there twice (icebergRows checks).
	r = quiver(t, nil, "-C", dir, "-o", "json", "materialize-incremental")
	require.Equal(t, exitOK, r.code, r.stderr)
	var mat struct {
		Runs []struct {
			OfflineRows int64 `json:"offline_rows"`
			OnlineRows  int64 `json:"online_rows"`
		} `json:"runs"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &mat), r.stdout)
	require.Len(t, mat.Runs, 1, r.stdout)
	require.Greater(t, mat.Runs[0].OfflineRows, int64(200_000))
	require.EqualValues(t, 30_000, mat.Runs[0].OnlineRows)
	require.EqualValues(t, mat.Runs[0].OfflineRows, icebergRows(t, dir, "user_stats"))
	r = quiver(t, nil, "-C", dir, "-o", "json", "get-online", "--service", "churn_v1", "--entity", "user_id=30000")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NotContains(t, r.stdout, "NOT_FOUND", r.stdout)

	// dataset create: 90,000 rows make a ~680 KB Parquet file; 500 KB is not enough.
	datasets := filepath.Join(dir, ".quiver", "warehouse", "projects", "shop", "datasets")
	code, out = quiverLimited(t, 500_000, "-C", dir, "dataset", "create", "churn_train", "--service", "churn_v1", "--entities", filepath.Join(dir, "data", "checkouts.parquet"))
	require.Equal(t, exitFailed, code, out)
	require.Contains(t, out, "write snapshot")
	require.Contains(t, out, "part-00000.parquet", "the error names the file it could not write")
	r = quiver(t, nil, "-C", dir, "-o", "json", "dataset", "list")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NotContains(t, r.stdout, "churn_train", "a failed build registers nothing")
	var left []string
	require.NoError(t, filepath.WalkDir(datasets, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return err
	}))
	require.Empty(t, left, "a failed build leaves no files behind")

	r = quiver(t, nil, "-C", dir, "dataset", "create", "churn_train", "--service", "churn_v1", "--entities", filepath.Join(dir, "data", "checkouts.parquet"))
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", dir, "dataset", "verify", "churn_train@v1")
	require.Equal(t, exitOK, r.code, r.stderr+r.stdout)
}
