package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
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

func TestMaterializeIncrementalTwice(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir).code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	end := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)

	r := quiver(t, nil, "-C", dir, "materialize-incremental", "--end", end, "--dry-run")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "first run: the source's whole history; online only from ")
	require.Contains(t, r.stdout, "1970-01-01T00:00:00Z")

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

// activityRow is one row of the sample repo's user_activity source.
type activityRow struct {
	user          int64
	event         time.Time
	clicks, spend int64
}

// writeActivityRows replaces a repo's user_activity source; created_ts is event + 5 minutes.
func writeActivityRows(t *testing.T, path string, rows []activityRow) {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, scaffold.UserActivitySchema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int64Builder).Append(r.user)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(r.event.UnixMicro()))
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(r.event.Add(5 * time.Minute).UnixMicro()))
		b.Field(3).(*array.Int64Builder).Append(r.clicks)
		b.Field(4).(*array.Float64Builder).Append(float64(r.spend))
		b.Field(5).(*array.Int32Builder).Append(1)
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

// TestMaterializeWarnsOfCollapsedConflicts is issue 22 item 25 at the command line: two
// distinct events of user 7 with the same event and created times (the second wins) and an
// exact duplicate of user 8's. materialize warns on stderr with the count and the example,
// and -o json carries both.
func TestMaterializeWarnsOfCollapsedConflicts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir).code)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	writeActivityRows(t, filepath.Join(dir, "data", "user_activity.parquet"), []activityRow{
		{7, at, 1, 10}, {7, at, 2, 10}, {8, at, 5, 5}, {8, at, 5, 5}, {9, at, 3, 3},
	})
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	args := []string{"-C", dir, "materialize", "--start", "2026-03-01", "--end", "2026-03-02"}
	r := quiver(t, nil, args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stderr, `warning: view "user_stats": 1 event collapsed into a later one with the same join keys, event_ts and created_ts but other values (only the last is kept), e.g. user_id=7 event_ts=2026-03-01T12:00:00Z created_ts=2026-03-01T12:05:00Z`)
	require.Contains(t, r.stdout, "1 conflicting duplicate collapsed")

	r = quiver(t, nil, append([]string{"-o", "json"}, args...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var out struct {
		Runs []map[string]any `json:"runs"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Len(t, out.Runs, 1)
	require.EqualValues(t, 1, out.Runs[0]["collapsed_conflicts"])
	require.Equal(t, "user_id=7 event_ts=2026-03-01T12:00:00Z created_ts=2026-03-01T12:05:00Z", out.Runs[0]["collapsed_conflict_example"])
	require.EqualValues(t, 3, out.Runs[0]["offline_rows"])

	r = quiver(t, nil, "-C", dir, "-o", "json", "get-online", "--feature", "user_stats:clicks_7d", "--entity", "user_id=7")
	require.Equal(t, exitOK, r.code, r.stderr)
	var got struct {
		Features []struct {
			Values struct {
				Int64Values struct {
					Val []string `json:"val"`
				} `json:"int64_values"`
			} `json:"values"`
		} `json:"features"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, []string{"2"}, got.Features[0].Values.Int64Values.Val, "the last of the collapsed events is kept")
}
