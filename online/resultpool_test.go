package online_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

// TestReleasedResultArraysReadAsNew: a read after a released one may get its arrays back; it
// must see every row NotFound, null, with no event time — nothing of the earlier read —
// whatever the two reads' shapes.
func TestReleasedResultArraysReadAsNew(t *testing.T) {
	v := onlinetest.MustView(t, "shop", onlinetest.FeatureView("v", []string{"user"}, 0, "int64", "string"))
	ts := time.UnixMicro(1_700_000_000_000_000).UTC()
	enc, err := online.EncodeRow(nil, v, &online.Row{EventTS: ts, Values: []online.Value{online.Int64(7), online.String("seven")}})
	require.NoError(t, err)
	read := func(rows int, set bool) *online.ReadResult {
		keys := make([]online.EntityKey, rows)
		for i := range keys {
			keys[i] = online.EntityKey("k")
		}
		req := online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: keys}, {View: v, Features: []int{1}, Keys: keys}}}
		b, err := online.NewResultBuilder(&req, ts)
		require.NoError(t, err)
		if set {
			for r := range rows {
				require.NoError(t, b.Set(0, r, string(enc)))
				require.NoError(t, b.Set(1, r, string(enc)))
			}
		}
		return b.Result()
	}
	for _, shape := range [][2]int{{50, 50}, {50, 20}, {20, 50}, {1, 1}, {300, 3}} {
		for range 3 { // sync.Pool may drop what it is given: try a few times
			first := read(shape[0], true)
			require.Equal(t, online.Present, first.Columns[2].Statuses[shape[0]-1])
			first.Release()
			first.Release() // twice is harmless
			second := read(shape[1], false)
			require.Len(t, second.Columns, 3)
			for _, c := range second.Columns {
				require.Len(t, c.Values, shape[1])
				for r := range shape[1] {
					require.True(t, c.Values[r].IsNull(), "row %d", r)
					require.Equal(t, online.NotFound, c.Statuses[r])
					require.True(t, c.EventTS[r].IsZero())
				}
			}
			second.Release()
		}
	}
	var none *online.ReadResult
	none.Release()
	(&online.ReadResult{}).Release()
}
