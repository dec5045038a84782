package redis

import (
	"context"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

// TestFirstLoadWritersRace races two writers' first loads of the same new keys (writeRestore),
// one with rows an hour newer than the other's, and holds the result to the per-key guard (the
// legacy script, one row a call) given the same rows: every key ends with the newer row and the
// same expiry, whichever writer's RESTORE came first — the other's fails (BUSYKEY) and its rows
// go to the script, which keeps the newer. First in both orders one after the other, then at
// once, for views with and without TTL; then both writers again over the stored keys
// (rewrites, through the script). A RESTORE that replaced existing keys would keep whichever
// row came last.
func TestFirstLoadWritersRace(t *testing.T) {
	ctx := context.Background()
	for _, ttl := range []time.Duration{0, 48 * time.Hour} {
		t.Run(ttl.String(), func(t *testing.T) {
			// Fresh stores for every write: a store that saw its RESTOREs fail sends the next
			// pipelines of the view straight to the script (firstLoads).
			open := func() *Store {
				return New(newSingleClient(single.Addr), Options{ExpiryGrace: time.Hour, WriteBatch: 500})
			}
			perKey := New(newSingleClient(single.Addr), Options{ExpiryGrace: time.Hour, RowsPerScript: 1})
			perKey.script = goredis.NewScript(legacyWriteScript)
			defer perKey.Close()
			pw := onlinetest.Project(t)
			pk := pw + "x"
			fv := onlinetest.FeatureView("race", []string{"user"}, ttl, "int64", "string")
			vw, vk := onlinetest.MustView(t, pw, fv), onlinetest.MustView(t, pk, fv)
			const n = 1200
			now := time.Now().Truncate(time.Second)
			rows := func(v *online.View, first int, ev time.Time, tag int64) []online.Row {
				r := make([]online.Row, n)
				for i := range r {
					r[i] = online.Row{Key: onlinetest.UserKey(t, v, int64(first+i)), EventTS: ev, CreatedTS: ev,
						Values: []online.Value{online.Int64(tag*1_000_000 + int64(i)), online.String("r")}}
				}
				return r
			}
			compare := func(first int, what string) {
				t.Helper()
				pipe := perKey.client.Pipeline()
				type pair struct {
					hw, hk *goredis.MapStringStringCmd
					ew, ek *goredis.DurationCmd
				}
				cmds := make([]pair, n)
				for i := range cmds {
					kw := string(appendHashKey(nil, pw, onlinetest.UserKey(t, vw, int64(first+i))))
					kk := string(appendHashKey(nil, pk, onlinetest.UserKey(t, vk, int64(first+i))))
					cmds[i] = pair{pipe.HGetAll(ctx, kw), pipe.HGetAll(ctx, kk), pipe.PExpireTime(ctx, kw), pipe.PExpireTime(ctx, kk)}
				}
				_, err := pipe.Exec(ctx)
				require.NoError(t, err)
				for i, c := range cmds {
					require.NotEmpty(t, c.hw.Val(), "%s: entity %d", what, first+i)
					require.Equal(t, c.hk.Val(), c.hw.Val(), "%s: entity %d: fields", what, first+i)
					ew, ek := c.ew.Val(), c.ek.Val()
					if ew < 0 || ek < 0 {
						require.Equal(t, ek, ew, "%s: entity %d: expiry", what, first+i)
					} else {
						require.InDelta(t, float64(ek), float64(ew), float64(2*time.Second), "%s: entity %d: expiry", what, first+i)
					}
				}
			}
			write := func(v *online.View, r []online.Row) error {
				s := open()
				defer s.Close()
				return s.Write(ctx, v, r)
			}
			reference := func(first int, evOld, evNew time.Time, round int64) {
				require.NoError(t, perKey.Write(ctx, vk, rows(vk, first, evOld, 2*round)))
				require.NoError(t, perKey.Write(ctx, vk, rows(vk, first, evNew, 2*round+1)))
			}
			for round := range int64(6) {
				first := int(round) * n
				evOld, evNew := now.Add(-2*time.Hour), now.Add(-time.Hour)
				older, newer := rows(vw, first, evOld, 2*round), rows(vw, first, evNew, 2*round+1)
				switch round {
				case 0: // the newer writer first: the older one's RESTOREs fail, the script skips its rows
					require.NoError(t, write(vw, newer))
					require.NoError(t, write(vw, older))
				case 1: // the older first: the newer one's RESTOREs fail, the script replaces the rows
					require.NoError(t, write(vw, older))
					require.NoError(t, write(vw, newer))
				default: // at once
					var wg sync.WaitGroup
					errs := make([]error, 2)
					wg.Go(func() { errs[0] = write(vw, older) })
					wg.Go(func() { errs[1] = write(vw, newer) })
					wg.Wait()
					require.NoError(t, errs[0])
					require.NoError(t, errs[1])
				}
				reference(first, evOld, evNew, round)
				compare(first, "first loads")
			}
			// Both writers again, at once, over stored keys, with rows newer than all of them.
			evOld, evNew := now.Add(-30*time.Minute), now.Add(-10*time.Minute)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			wg.Go(func() { errs[0] = write(vw, rows(vw, 0, evOld, 100)) })
			wg.Go(func() { errs[1] = write(vw, rows(vw, 0, evNew, 101)) })
			wg.Wait()
			require.NoError(t, errs[0])
			require.NoError(t, errs[1])
			require.NoError(t, perKey.Write(ctx, vk, rows(vk, 0, evOld, 100)))
			require.NoError(t, perKey.Write(ctx, vk, rows(vk, 0, evNew, 101)))
			compare(0, "rewrites")
		})
	}
}
