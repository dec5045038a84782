package redis

import (
	"testing"
	"time"

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
