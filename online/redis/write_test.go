package redis

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

// TestWriteAllocatesPerCallNotPerRow: Write's allocations grow with its script calls (one
// go-redis command each), not with its rows — keys and script arguments are slices of one
// encoded string, passed to go-redis as pointers (a string in an interface would be one
// allocation per argument). On a single node 2,048 rows may cost at most 0.1 allocations per
// row more than 256 rows (calls of 128 rows); on a cluster, where nearly every row is its own
// call (one hash slot each), at most 1.2 (was 1.1 and 12).
func TestWriteAllocatesPerCallNotPerRow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		open   func() *Store
		perRow float64
	}{
		{"single", func() *Store { return New(newSingleClient(single.Addr), Options{}) }, 0.1},
		{"cluster", func() *Store { return New(newClusterClient(cluster.Addrs()), Options{}) }, 1.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open()
			defer s.Close()
			ctx := context.Background()
			v := onlinetest.MustView(t, onlinetest.Project(t), onlinetest.FeatureView("v", []string{"user"}, time.Hour, "int64", "string", "array<float32>"))
			rows := make([]online.Row, 2048)
			ev := time.Now()
			for i := range rows {
				rows[i] = online.Row{Key: onlinetest.UserKey(t, v, int64(i)), EventTS: ev, Values: []online.Value{
					online.Int64(int64(i)), online.String("segment"), online.Float32s([]float32{1, 2, 3}),
				}}
			}
			allocs := func(n int) float64 {
				require.NoError(t, s.Write(ctx, v, rows[:n])) // connections and script loaded
				return testing.AllocsPerRun(5, func() {
					if err := s.Write(ctx, v, rows[:n]); err != nil {
						panic(err)
					}
				})
			}
			small, large := allocs(256), allocs(2048)
			perRow := (large - small) / (2048 - 256)
			t.Logf("%s: %.0f allocations for 256 rows, %.0f for 2048: %.3f per row", tc.name, small, large, perRow)
			require.Less(t, perRow, tc.perRow)
		})
	}
}
