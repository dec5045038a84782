package main

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStatusTextShowsOfflineSnapshots is issue 22 item 20: quiver status prints each view's
// offline snapshot count, which -o json has, in its table too.
func TestStatusTextShowsOfflineSnapshots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	r := quiver(t, nil, "-C", dir, "materialize-incremental")
	require.Equal(t, exitOK, r.code, r.stderr)

	r = quiver(t, nil, "-C", dir, "-o", "json", "status")
	require.Equal(t, exitOK, r.code, r.stderr)
	var st []statusJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
	require.Len(t, st, 1)
	require.Positive(t, st[0].OfflineSnapshots)

	r = quiver(t, nil, "-C", dir, "status")
	require.Equal(t, exitOK, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2, r.stdout)
	// The table's columns are aligned: the count is under its header.
	col := strings.Index(lines[0], "OFFLINE SNAPSHOTS")
	require.GreaterOrEqual(t, col, 0, "a column OFFLINE SNAPSHOTS: %s", r.stdout)
	require.Greater(t, len(lines[1]), col, r.stdout)
	cell, _, _ := strings.Cut(lines[1][col:], " ")
	require.True(t, strings.HasPrefix(lines[1], "user_stats "), r.stdout)
	require.Equal(t, strconv.Itoa(st[0].OfflineSnapshots), cell, r.stdout)
}
