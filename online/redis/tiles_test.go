package redis

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

func TestTileFoldSingleNode(t *testing.T) {
	onlinetest.RunTileFoldTests(t, func(t *testing.T, now func() time.Time) online.Store {
		return New(newSingleClient(single.Addr), Options{Now: now})
	})
}

func TestTileFoldCluster(t *testing.T) {
	onlinetest.RunTileFoldTests(t, func(t *testing.T, now func() time.Time) online.Store {
		return New(newClusterClient(cluster.Addrs()), Options{Now: now, RowsPerScript: 3})
	})
}

// TestTilesCASRefusesChangedRow: the compare-and-set stores a folded row only over the row its
// fold read, so a fold racing another process's is redone, never lost (within one process the
// folds of an entity also take a lock, so this is the cross-process guard).
func TestTilesCASRefusesChangedRow(t *testing.T) {
	for name, client := range map[string]func() *Store{
		"single":  func() *Store { return New(newSingleClient(single.Addr), Options{}) },
		"cluster": func() *Store { return New(newClusterClient(cluster.Addrs()), Options{}) },
	} {
		t.Run(name, func(t *testing.T) {
			s := client()
			defer s.Close()
			ctx := context.Background()
			v := onlinetest.AggView(t, onlinetest.Project(t))
			k := string(appendHashKey(nil, v.Project, onlinetest.UserKey(t, v, 1)))
			cas := func(old, nw string) bool {
				res, err := s.casGroups(ctx, v, [][]int{{0}}, func(int) (string, string, string) { return k, old, nw })
				require.NoError(t, err)
				return res[0][0]
			}
			require.True(t, cas("", "a"))   // none stored: stored
			require.False(t, cas("", "b"))  // a row appeared since the read: refused
			require.True(t, cas("a", "b"))  // the row read: replaced
			require.False(t, cas("a", "c")) // changed since: refused
			got, err := s.client.HGet(ctx, k, field(v)).Result()
			require.NoError(t, err)
			require.Equal(t, "b", got)
		})
	}
}
