package main

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
)

func TestMaterializeIncrementalTwice(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir).code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	end := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)

	r := quiver(t, nil, "-C", dir, "materialize-incremental", "--end", end, "--dry-run")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "first run: from end minus the view's ttl")

	r = quiver(t, nil, "-C", dir, "-o", "json", "materialize-incremental", "--end", end)
	require.Equal(t, exitOK, r.code, r.stderr)
	var out struct {
		Runs []runJSON `json:"runs"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Len(t, out.Runs, 1)
	run := out.Runs[0]
	require.Equal(t, "user_stats", run.View)
	require.Positive(t, run.RowsRead)
	require.Equal(t, run.RowsRead, run.OfflineRows)
	require.EqualValues(t, 200, run.OnlineRows, "one row per user")

	// Again up to the same end: nothing to do, and it says so.
	r = quiver(t, nil, "-C", dir, "materialize-incremental", "--end", end)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Nothing to materialize: user_stats already up to date")

	// Unknown views are named with close valid names.
	r = quiver(t, nil, "-C", dir, "materialize", "--start", "2026-01-01", "--end", "2026-01-02", "user_stat")
	require.Equal(t, exitInvalid, r.code)
	require.Contains(t, r.stderr, `unknown feature view "user_stat"`)
	require.Contains(t, r.stderr, `did you mean "user_stats"?`)

	r = quiver(t, nil, "-C", dir, "materialize", "--start", "2026-01-02", "--end", "2026-01-01")
	require.Equal(t, exitUsage, r.code)
}

// TestMaterializeUnreachableOnlineStore: a Redis that is down is reported with its address
// (password redacted) and exit code 3 — not a panic.
func TestMaterializeUnreachableOnlineStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir).code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	port, err := testenv.FreePort()
	require.NoError(t, err)
	env := map[string]string{"QUIVER_ONLINE": "redis://:s3cret@127.0.0.1:" + strconv.Itoa(port) + "/0"}
	r := quiver(t, env, "-C", dir, "materialize-incremental")
	require.Equal(t, exitUnavailable, r.code, r.stderr)
	require.Contains(t, r.stderr, "127.0.0.1:"+strconv.Itoa(port))
	require.NotContains(t, r.stderr, "s3cret")
}
