package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

// TestOpenSpeaksRESP2UnlessAsked: Open's stores speak RESP2 (no push-notification check
// before every reply of a read's pipeline) unless the URL asks for RESP3, and a read gives the
// same values, nulls and not-founds either way.
func TestOpenSpeaksRESP2UnlessAsked(t *testing.T) {
	ctx := context.Background()
	project := onlinetest.Project(t)
	v := onlinetest.MustView(t, project, onlinetest.FeatureView("v", []string{"user"}, 0, "int64", "string"))
	keys := make([]online.EntityKey, 100)
	rows := make([]online.Row, 0, len(keys))
	for i := range keys {
		keys[i] = onlinetest.UserKey(t, v, int64(i))
		if i%3 != 0 { // every third entity is not stored
			val := online.String(fmt.Sprint("s", i))
			if i%5 == 0 {
				val = online.Null()
			}
			rows = append(rows, online.Row{Key: keys[i], EventTS: time.Now(), Values: []online.Value{online.Int64(int64(i)), val}})
		}
	}
	for _, c := range []struct {
		url  string
		want int
	}{
		{"redis://" + single.Addr + "/0", 2},
		{"redis://" + single.Addr + "/0?protocol=3", 3},
		{"redis://" + single.Addr + "/0?protocol=2", 2},
	} {
		s, err := Open(ctx, c.url, Options{})
		require.NoError(t, err)
		require.Equal(t, c.want, s.Client().(*goredis.Client).Options().Protocol, c.url)
		require.NoError(t, s.Write(ctx, v, rows))
		res, err := s.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: keys}, {View: v, Features: []int{1}, Keys: keys}}})
		require.NoError(t, err)
		for i := range keys {
			switch {
			case i%3 == 0:
				require.Equal(t, online.NotFound, res.Columns[0].Statuses[i])
				require.Equal(t, online.NotFound, res.Columns[2].Statuses[i])
			case i%5 == 0:
				require.Equal(t, int64(i), res.Columns[0].Values[i].Int64())
				require.Equal(t, online.NullValue, res.Columns[2].Statuses[i])
			default:
				require.Equal(t, int64(i), res.Columns[0].Values[i].Int64())
				require.Equal(t, fmt.Sprint("s", i), res.Columns[1].Values[i].Str())
				require.Equal(t, fmt.Sprint("s", i), res.Columns[2].Values[i].Str())
			}
		}
		require.NoError(t, s.Close())
	}
	c := cluster.Addrs()
	s, err := Open(ctx, fmt.Sprintf("redis-cluster://%s,%s,%s", c[0], c[1], c[2]), Options{})
	require.NoError(t, err)
	require.Equal(t, 2, s.Client().(*goredis.ClusterClient).Options().Protocol)
	require.NoError(t, s.Close())
}
