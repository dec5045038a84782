package materialize_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/materialize"
)

// expectConflicts is the brute-force count of rows collapsed into a later row with the same
// (user, event, created) — every row of a key but its last — whose values differ from the
// last one's.
func expectConflicts(rows []srcRow) int64 {
	byKey := map[string][]srcRow{}
	for _, r := range rows {
		k := fmt.Sprint(r.user, r.event.UnixMicro(), r.created.UnixMicro())
		byKey[k] = append(byKey[k], r)
	}
	var n int64
	for _, rs := range byKey {
		kept := rs[len(rs)-1]
		for _, r := range rs[:len(rs)-1] {
			if !sameValues(r, kept) {
				n++
			}
		}
	}
	return n
}

func sameValues(a, b srcRow) bool {
	if (a.clicks == nil) != (b.clicks == nil) || (a.clicks != nil && *a.clicks != *b.clicks) {
		return false
	}
	return a.score == b.score && slices.Equal(a.tags, b.tags)
}

// TestRunWarnsOfCollapsedConflicts is issue 22 item 25: distinct events with the same (keys,
// event_ts, created_ts) collapsed silently. The run counts those whose feature values
// differ, names one, and logs a warning; a source holding only identical duplicates (or
// none) gives no warning.
func TestRunWarnsOfCollapsedConflicts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := genRows(3, 30, 10)
	want := expectConflicts(rows)
	require.Positive(t, want, "the generated rows hold conflicting duplicates")
	writeParquet(t, filepath.Join(dir, "activity.parquet"), rows)
	e := openEnv(t, dir, 50)
	var log bytes.Buffer
	opts := materialize.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))}

	res, err := materialize.Run(ctx, e.reg, e.job, day(0), day(10), opts)
	require.NoError(t, err)
	require.Equal(t, want, res.Conflicts)
	require.Regexp(t, `^user_id=\d+ event_ts=2026-10-\S+Z created_ts=2026-10-\S+Z$`, res.ConflictExample)
	require.Contains(t, log.String(), "level=WARN")
	require.Contains(t, log.String(), fmt.Sprintf("conflicts=%d", want))
	require.Contains(t, log.String(), res.ConflictExample)

	// The same rows without their conflicting duplicates, but each row twice: no warning.
	var clean []srcRow
	seen := map[string]bool{}
	for _, r := range rows {
		k := fmt.Sprint(r.user, r.event.UnixMicro(), r.created.UnixMicro())
		if !seen[k] {
			seen[k] = true
			clean = append(clean, r, r)
		}
	}
	writeParquet(t, filepath.Join(dir, "activity.parquet"), clean)
	log.Reset()
	res, err = materialize.Run(ctx, e.reg, e.job, day(0), day(10), opts)
	require.NoError(t, err)
	require.Zero(t, res.Conflicts)
	require.Empty(t, res.ConflictExample)
	require.NotContains(t, log.String(), "level=WARN")
}
