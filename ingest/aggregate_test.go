package ingest_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/online"
)

const aggDefs = `
entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: txns_push
    push: {}
    timestamp_field: ts
    created_timestamp_field: created
feature_views:
  - name: txn_aggs
    entities: [user]
    source: txns_push
    columns: [{ name: amount, type: int64 }, { name: merchant, type: string }]
    aggregations:
      - { column: amount, function: count, windows: [1h, 1d] }
      - { column: amount, function: sum, windows: [1d] }
      - { column: merchant, function: last, windows: [1d] }
`

// plainStore is a real store without its online.TileFolder methods.
type plainStore struct{ online.Store }

// TestPushAggregationViewCountsEachEventOnce (issue 27): pushes into an aggregation view are
// folded into the entity's tiles; a pushed batch sent again (a client's retry) and an event
// older than every window change nothing online and are reported as stale, while offline
// every pushed row is kept. A store that cannot fold refuses the push.
func TestPushAggregationViewCountsEachEventOnce(t *testing.T) {
	for name, open := range map[string]func(*testing.T) online.Store{"embedded": openEmbedded, "redis": openRedis} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: "sqlite://" + filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")})
			require.NoError(t, err)
			defer cat.Close()
			off, err := iceberg.NewStore(ctx, cat, iceberg.StoreOptions{Namespace: "shop"})
			require.NoError(t, err)
			set, err := ingest.NewViewSet("shop", repoFrom(t, aggDefs), func(string) int { return 1 })
			require.NoError(t, err)
			v, err := set.View("txn_aggs")
			require.NoError(t, err)
			on := open(t)
			in, err := ingest.Open(set, on, off, ingest.Options{LogDir: t.TempDir()})
			require.NoError(t, err)
			defer in.Close()

			now := time.Now().UTC().Truncate(time.Microsecond)
			b := ingest.Batch{Columns: map[string][]online.Value{}}
			add := func(user, amount int64, merchant string, at time.Time) {
				b.Columns["user_id"] = append(b.Columns["user_id"], online.Int64(user))
				b.Columns["amount"] = append(b.Columns["amount"], online.Int64(amount))
				b.Columns["merchant"] = append(b.Columns["merchant"], online.String(merchant))
				b.EventTS = append(b.EventTS, at)
			}
			add(1, 10, "a", now.Add(-3*time.Minute))
			add(1, 20, "b", now.Add(-2*time.Minute))
			add(2, 5, "c", now.Add(-time.Minute))
			res, err := in.Push(ctx, "txn_aggs", b)
			require.NoError(t, err)
			require.Equal(t, ingest.Result{Rows: 3, OnlineRows: 3, Seq: res.Seq}, res)
			res, err = in.Push(ctx, "txn_aggs", b) // the client's retry
			require.NoError(t, err)
			require.Equal(t, ingest.Result{Rows: 3, StaleRows: 3, Seq: res.Seq}, res)
			b = ingest.Batch{Columns: map[string][]online.Value{}}
			add(1, 1000, "z", now.Add(-72*time.Hour)) // older than every window
			res, err = in.Push(ctx, "txn_aggs", b)
			require.NoError(t, err)
			require.Equal(t, int64(1), res.StaleRows)

			keys := []online.EntityKey{}
			for _, u := range []int64{1, 2, 3} {
				k, err := v.Online.Key(online.Int64(u))
				require.NoError(t, err)
				keys = append(keys, k)
			}
			got, err := on.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: v.Online, Keys: keys}}})
			require.NoError(t, err)
			want := [][]online.Value{ // per feature: users 1, 2, 3
				{online.Int64(2), online.Int64(1), online.Int64(0)},
				{online.Int64(2), online.Int64(1), online.Int64(0)},
				{online.Int64(30), online.Int64(5), online.Null()},
				{online.String("b"), online.String("c"), online.Null()},
			}
			for f, col := range got.Columns {
				for r := range keys {
					require.True(t, want[f][r].Equal(col.Values[r]), "%s of user %d: want %v, got %v", col.Field().Name, r+1, want[f][r], col.Values[r])
				}
			}

			// Offline, every distinct event, the late one too (the commit collapses the retry's
			// rows of identical (keys, event_ts, created_ts)).
			_, err = in.Commit(ctx)
			require.NoError(t, err)
			n, err := off.Count(ctx, "txn_aggs", offline.ScanRequest{})
			require.NoError(t, err)
			require.Equal(t, int64(4), n)

			// A store that cannot fold events is refused, naming the view.
			w := &ingest.Writer{Online: plainStore{on}, Offline: off}
			rec, err := v.Build(b, nil)
			require.NoError(t, err)
			defer rec.Release()
			_, err = w.WriteOnline(ctx, v, rec)
			require.ErrorIs(t, err, online.ErrInvalidArgument)
			require.ErrorContains(t, err, `view "txn_aggs" has aggregations`)
		})
	}
}
