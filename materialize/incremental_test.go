package materialize_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline"
)

// TestFirstIncrementalRunFillsHistory is issue 22 item 10: a first incremental run covered only
// end - ttl, so training rows before that joined nulls. It now covers the source's whole
// history offline, while the online store gets only what is live (events at or after
// end - ttl).
func TestFirstIncrementalRunFillsHistory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := genRows(5, 40, 20)
	writeParquet(t, filepath.Join(dir, "activity.parquet"), rows)
	e := openEnv(t, dir, 64)
	const ttl = 24 * time.Hour

	iv, err := materialize.IncrementalInterval(ctx, e.reg, project, "user_stats", ttl, day(20))
	require.NoError(t, err)
	require.False(t, iv.FromWatermark)
	require.Equal(t, time.Unix(0, 0).UTC(), iv.Start, "from the source's beginning")
	require.Equal(t, day(19), iv.OnlineFrom, "online: only what is live")
	res, err := materialize.Run(ctx, e.reg, e.job, iv.Start, iv.End, materialize.Options{OnlineSince: iv.OnlineFrom})
	require.NoError(t, err)
	require.Equal(t, day(20), res.Watermark)
	n, err := e.offline.Count(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	require.Equal(t, expectOffline(rows, day(0), day(20)), n, "every row of the source's history is offline")
	live := expectOnline(rows, day(19), day(20))
	require.Less(t, len(live), 40, "some users have no live value: the test can tell")
	checkOnline(t, e, 40, live)

	// Later runs continue from the watermark, online as usual.
	iv, err = materialize.IncrementalInterval(ctx, e.reg, project, "user_stats", ttl, day(25))
	require.NoError(t, err)
	require.True(t, iv.FromWatermark)
	require.Equal(t, day(20), iv.Start)
	require.True(t, iv.OnlineFrom.IsZero())
}
