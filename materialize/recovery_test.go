package materialize_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/embedded"
	"github.com/quiverfs/quiver/registry"
)

// TestSyncOnlineRefillsALostStore is seen item 1: after the online store is replaced by an
// empty one, incremental runs have nothing to do; SyncOnline refills it from the offline
// table alone, leaving the offline table and the watermark as they were.
func TestSyncOnlineRefillsALostStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := genRows(11, 40, 20)
	writeParquet(t, filepath.Join(dir, "activity.parquet"), rows)
	e := openEnv(t, dir, 64)
	_, err := materialize.Run(ctx, e.reg, e.job, day(0), day(10), materialize.Options{})
	require.NoError(t, err)
	_, err = materialize.Run(ctx, e.reg, e.job, day(10), day(20), materialize.Options{})
	require.NoError(t, err)
	want := expectOnline(rows, day(0), day(20))
	checkOnline(t, e, 40, want)

	// The store is lost: a new, empty one. Incremental has nothing to do.
	fresh, err := embedded.Open(ctx, filepath.Join(dir, "online-new.db"), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { fresh.Close() })
	e.online, e.job.Online = fresh, fresh
	iv, err := materialize.IncrementalInterval(ctx, e.reg, project, "user_stats", 0, day(20))
	require.NoError(t, err)
	require.True(t, iv.UpToDate)
	res, err := e.online.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: e.job.OnlineView, Keys: []online.EntityKey{mustKey(t, e, 1)}}}})
	require.NoError(t, err)
	require.Equal(t, online.NotFound, res.Columns[0].Statuses[0])

	snapsBefore, err := e.offline.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	wmBefore, err := e.reg.Watermark(ctx, project, "user_stats")
	require.NoError(t, err)

	e.job.OfflineReader = e.offline
	var progress int64
	sr, err := materialize.SyncOnline(ctx, e.reg, e.job, materialize.Options{OnlineMaxEntities: 7, OnlineBatch: 3, Progress: func(n int64) { progress = n }, Actor: "ann"})
	require.NoError(t, err)
	require.Equal(t, expectOffline(rows, day(0), day(20)), sr.RowsRead)
	require.Equal(t, sr.RowsRead, progress)
	require.Equal(t, snapsBefore[len(snapsBefore)-1].ID, sr.SnapshotID)
	checkOnline(t, e, 40, want)

	snapsAfter, err := e.offline.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Equal(t, snapsBefore, snapsAfter, "the offline table is not written")
	wmAfter, err := e.reg.Watermark(ctx, project, "user_stats")
	require.NoError(t, err)
	require.Equal(t, wmBefore, wmAfter, "the watermark does not move")
	events, err := e.reg.ListAudit(ctx, registry.AuditFilter{Project: project, Action: registry.AuditOnlineSync})
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, "ann", events[0].Actor)
	require.Equal(t, "user_stats", events[0].Target)

	// The stale-write guard holds: a newer value already in the store is kept.
	newer := online.Row{Key: mustKey(t, e, 2), EventTS: day(30), Values: []online.Value{online.Int64(5), online.Float64(0.5), online.Strings([]string{"x"})}}
	require.NoError(t, fresh.Write(ctx, e.job.OnlineView, []online.Row{newer}))
	_, err = materialize.SyncOnline(ctx, e.reg, e.job, materialize.Options{})
	require.NoError(t, err)
	res, err = e.online.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: e.job.OnlineView, Keys: []online.EntityKey{mustKey(t, e, 2)}}}})
	require.NoError(t, err)
	require.Equal(t, int64(5), res.Columns[0].Values[0].Int64())
}

func mustKey(t *testing.T, e *env, user int64) online.EntityKey {
	t.Helper()
	k, err := e.job.OnlineView.Key(online.Int64(user))
	require.NoError(t, err)
	return k
}

// TestBadRowsCorrected is seen item 2: a row dated 2099 is materialized (the watermark goes
// to 2100), and an entity appears that the source later deletes. After the source is fixed,
// a plain re-run fixes the offline table but the online store keeps 999 and the deleted
// entity; --replace-online makes it match the offline table, a watermark reset lets
// incremental runs load new rows again, and each correction is audited.
func TestBadRowsCorrected(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	good := genRows(5, 30, 10)
	y2100 := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	bad999 := int64(999)
	badRow := srcRow{user: 1, event: time.Date(2099, 6, 1, 0, 0, 0, 0, time.UTC), created: day(5), clicks: &bad999, score: 9, tags: []string{"bad"}}
	gone := int64(7)
	goneRow := srcRow{user: 31, event: day(4), created: day(4), clicks: &gone, score: 1, tags: []string{"gone"}}
	// User 2's only corrected row: its latest good row lies before the interval re-run.
	early := int64(3)
	earlyRow := srcRow{user: 2, event: day(0).Add(-time.Hour), created: day(0), clicks: &early, score: 3, tags: []string{"early"}}
	bad := append(append([]srcRow{earlyRow}, good...), badRow, goneRow)
	src := filepath.Join(dir, "activity.parquet")
	writeParquet(t, src, bad)
	e := openEnv(t, dir, 64)
	e.job.OfflineReader = e.offline

	_, err := materialize.Run(ctx, e.reg, e.job, day(-1), day(0), materialize.Options{})
	require.NoError(t, err)
	res, err := materialize.Run(ctx, e.reg, e.job, day(0), y2100, materialize.Options{})
	require.NoError(t, err)
	require.Equal(t, y2100, res.Watermark)
	checkOnline(t, e, 31, expectOnline(bad, day(-1), y2100))

	// The source is fixed: the 2099 row and user 31 are gone; user 2 keeps only its early row.
	fixed := []srcRow{earlyRow}
	for _, r := range good {
		if r.user != 2 {
			fixed = append(fixed, r)
		}
	}
	writeParquet(t, src, fixed)

	// A plain re-run: offline right, online still serving the bad rows (the seen bug).
	_, err = materialize.Run(ctx, e.reg, e.job, day(0), y2100, materialize.Options{})
	require.NoError(t, err)
	n, err := e.offline.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	require.Equal(t, expectOffline(fixed, day(-1), y2100), n)
	r := readUsers(t, e, 1, 31)
	require.Equal(t, int64(999), r.Columns[0].Values[0].Int64(), "without --replace-online the newer bad row stays")
	require.Equal(t, online.Present, r.Columns[0].Statuses[1], "without --replace-online the deleted entity stays")

	// The correction.
	res, err = materialize.Run(ctx, e.reg, e.job, day(0), y2100, materialize.Options{ReplaceOnline: true, Actor: "ann", OnlineBatch: 4})
	require.NoError(t, err)
	require.Equal(t, int64(1), res.OnlineDeleted, "user 31 is removed")
	checkOnline(t, e, 31, expectOnline(fixed, day(-1), y2100))
	r = readUsers(t, e, 2)
	require.Equal(t, int64(3), r.Columns[0].Values[0].Int64(), "user 2 gets its latest row from before the interval")
	require.Equal(t, y2100, res.Watermark, "replace-online alone does not move the watermark")

	// The watermark, moved back and recorded; moving it forward is refused.
	_, _, err = materialize.ResetWatermark(ctx, e.reg, project, "user_stats", y2100.Add(time.Hour), "ann")
	require.ErrorIs(t, err, materialize.ErrNotBackwards)
	_, _, err = materialize.ResetWatermark(ctx, e.reg, project, "nope", day(1), "ann")
	require.ErrorIs(t, err, registry.ErrWatermarkNotFound)
	from, to, err := materialize.ResetWatermark(ctx, e.reg, project, "user_stats", day(10), "ann")
	require.NoError(t, err)
	require.Equal(t, y2100, from.Time)
	require.Equal(t, day(10), to.Time)

	// New rows arrive; incremental loads them again.
	more := genRows(6, 30, 15)
	var newer []srcRow
	for _, r := range more {
		if !r.event.Before(day(10)) {
			newer = append(newer, r)
		}
	}
	all := append(append([]srcRow{}, fixed...), newer...)
	writeParquet(t, src, all)
	iv, err := materialize.IncrementalInterval(ctx, e.reg, project, "user_stats", 0, day(15))
	require.NoError(t, err)
	require.Equal(t, day(10), iv.Start)
	res, err = materialize.Run(ctx, e.reg, e.job, iv.Start, iv.End, materialize.Options{})
	require.NoError(t, err)
	require.Equal(t, day(15), res.Watermark)
	checkOnline(t, e, 31, expectOnline(all, day(-1), day(15)))

	events, err := e.reg.ListAudit(ctx, registry.AuditFilter{Project: project})
	require.NoError(t, err)
	var actions []registry.AuditAction
	for _, ev := range events {
		actions = append(actions, ev.Action)
	}
	require.Equal(t, []registry.AuditAction{registry.AuditResetWatermark, registry.AuditReplaceOnline}, actions)
	require.Contains(t, string(events[0].Detail), `"from":"2100-01-01T00:00:00Z"`)
}

func readUsers(t *testing.T, e *env, users ...int64) *online.ReadResult {
	t.Helper()
	keys := make([]online.EntityKey, len(users))
	for i, u := range users {
		keys[i] = mustKey(t, e, u)
	}
	res, err := e.online.Read(context.Background(), online.ReadRequest{Views: []online.ViewRead{{View: e.job.OnlineView, Keys: keys}}})
	require.NoError(t, err)
	return res
}
