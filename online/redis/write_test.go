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

// TestFirstLoadLiftsAnotherViewsExpiry: a first load of a view without TTL (the scriptless
// path, writeNew) into keys that already hold a row of a view with TTL leaves them without
// expiry, as the script does, on a single node (where the keys' EXISTS sends the stored rows
// to a probe) and on a cluster (where every row is probed): the view without TTL keeps its
// rows. Keys the load creates have no expiry; keys of the TTL view only keep theirs.
func TestFirstLoadLiftsAnotherViewsExpiry(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func() *Store
	}{
		{"single", func() *Store { return New(newSingleClient(single.Addr), Options{}) }},
		{"cluster", func() *Store { return New(newClusterClient(cluster.Addrs()), Options{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := tc.open()
			defer s.Close()
			project := onlinetest.Project(t)
			week := onlinetest.MustView(t, project, onlinetest.FeatureView("week", []string{"user"}, 7*24*time.Hour, "int64"))
			forever := onlinetest.MustView(t, project, onlinetest.FeatureView("forever", []string{"user"}, 0, "int64"))
			rows := func(v *online.View, from, to int) []online.Row {
				var r []online.Row
				for id := from; id < to; id++ {
					r = append(r, online.Row{Key: onlinetest.UserKey(t, v, int64(id)), EventTS: time.Now().Add(-time.Minute), Values: []online.Value{online.Int64(int64(id))}})
				}
				return r
			}
			require.NoError(t, s.Write(ctx, week, rows(week, 0, 100)))       // keys 0..99 with an expiry
			require.NoError(t, s.Write(ctx, week, rows(week, 300, 310)))     // keys only the TTL view writes
			require.NoError(t, s.Write(ctx, forever, rows(forever, 0, 200))) // 0..99 exist, 100..199 new
			for id := range 310 {
				if id >= 200 && id < 300 {
					continue
				}
				key := string(appendHashKey(nil, project, onlinetest.UserKey(t, forever, int64(id))))
				exp, err := s.client.Do(ctx, "pexpiretime", key).Int64()
				require.NoError(t, err)
				if id >= 300 {
					require.Positive(t, exp, "entity %d: a key of the TTL view alone keeps its expiry", id)
					continue
				}
				require.Equal(t, int64(-1), exp, "entity %d: expiry of a key the view without TTL wrote", id)
				res, err := s.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: forever, Keys: []online.EntityKey{onlinetest.UserKey(t, forever, int64(id))}}}})
				require.NoError(t, err)
				require.Equal(t, int64(id), res.Columns[0].Values[0].Int64(), "entity %d", id)
			}
		})
	}
}
