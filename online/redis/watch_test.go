package redis

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

// TestWatchedWritersRace races two writers through the WATCH path (writeWatched) on the same
// keys, one with rows an hour newer than the other's, and holds the result to the per-key
// guard (the legacy script, one row a call) given the same rows: every key ends with the newer
// row and the same expiry. First deterministically: between the older writer's reads and its
// EXEC, the newer writer writes every key, so the older writer's transactions must abort and
// go to the script (without WATCH, their EXEC would overwrite the newer rows). Then freely:
// both writers at once, rounds of rows over the same keys, views with and without TTL.
func TestWatchedWritersRace(t *testing.T) {
	ctx := context.Background()
	for _, ttl := range []time.Duration{0, 48 * time.Hour} {
		t.Run(ttl.String(), func(t *testing.T) {
			open := func() *Store {
				s := New(newSingleClient(single.Addr), Options{ExpiryGrace: time.Hour, WriteBatch: 500})
				s.watched = true
				return s
			}
			older, newer := open(), open()
			defer older.Close()
			defer newer.Close()
			perKey := New(newSingleClient(single.Addr), Options{ExpiryGrace: time.Hour, RowsPerScript: 1})
			perKey.script = goredis.NewScript(legacyWriteScript)
			defer perKey.Close()
			pw := onlinetest.Project(t)
			pk := pw + "x"
			fv := onlinetest.FeatureView("race", []string{"user"}, ttl, "int64", "string")
			vw, vk := onlinetest.MustView(t, pw, fv), onlinetest.MustView(t, pk, fv)
			const n = 1200
			now := time.Now().Truncate(time.Second)
			rows := func(v *online.View, ev time.Time, tag int64) []online.Row {
				r := make([]online.Row, n)
				for i := range r {
					r[i] = online.Row{Key: onlinetest.UserKey(t, v, int64(i)), EventTS: ev, CreatedTS: ev,
						Values: []online.Value{online.Int64(tag*1_000_000 + int64(i)), online.String("r")}}
				}
				return r
			}
			compare := func(what string) {
				t.Helper()
				pipe := perKey.client.Pipeline()
				type pair struct {
					hw, hk *goredis.MapStringStringCmd
					ew, ek *goredis.DurationCmd
				}
				cmds := make([]pair, n)
				for i := range cmds {
					kw := string(appendHashKey(nil, pw, onlinetest.UserKey(t, vw, int64(i))))
					kk := string(appendHashKey(nil, pk, onlinetest.UserKey(t, vk, int64(i))))
					cmds[i] = pair{pipe.HGetAll(ctx, kw), pipe.HGetAll(ctx, kk), pipe.PExpireTime(ctx, kw), pipe.PExpireTime(ctx, kk)}
				}
				_, err := pipe.Exec(ctx)
				require.NoError(t, err)
				for i, c := range cmds {
					require.Equal(t, c.hk.Val(), c.hw.Val(), "%s: entity %d: fields", what, i)
					ew, ek := c.ew.Val(), c.ek.Val()
					if ew < 0 || ek < 0 {
						require.Equal(t, ek, ew, "%s: entity %d: expiry", what, i)
					} else {
						require.InDelta(t, float64(ek), float64(ew), float64(2*time.Second), "%s: entity %d: expiry", what, i)
					}
				}
			}

			// Every key holds a row first, so that the writes below are rewrites (a first load
			// of a view without TTL goes through writeNew).
			require.NoError(t, older.Write(ctx, vw, rows(vw, now.Add(-3*time.Hour), 0)))
			require.NoError(t, perKey.Write(ctx, vk, rows(vk, now.Add(-3*time.Hour), 0)))
			compare("first load")

			// Deterministic: the newer writer runs inside the older one's read-to-EXEC window.
			var hooked atomic.Int32
			oldRows, newRows := rows(vw, now.Add(-2*time.Hour), 1), rows(vw, now.Add(-time.Hour), 2)
			var once sync.Once
			older.afterReads = func() {
				hooked.Add(1)
				once.Do(func() { require.NoError(t, newer.Write(ctx, vw, newRows)) })
			}
			require.NoError(t, older.Write(ctx, vw, oldRows))
			older.afterReads = nil
			require.Positive(t, hooked.Load(), "the older writer went through writeWatched")
			require.NoError(t, perKey.Write(ctx, vk, rows(vk, now.Add(-2*time.Hour), 1)))
			require.NoError(t, perKey.Write(ctx, vk, rows(vk, now.Add(-time.Hour), 2)))
			compare("newer writer between the older one's reads and EXEC")

			// Free-running: both at once, five rounds, each round's rows newer than the last.
			for round := range 5 {
				base := now.Add(time.Duration(round) * time.Minute)
				ra, rb := rows(vw, base.Add(10*time.Second), int64(10+round)), rows(vw, base.Add(20*time.Second), int64(20+round))
				var wg sync.WaitGroup
				errs := make([]error, 2)
				wg.Go(func() { errs[0] = older.Write(ctx, vw, ra) })
				wg.Go(func() { errs[1] = newer.Write(ctx, vw, rb) })
				wg.Wait()
				require.NoError(t, errs[0])
				require.NoError(t, errs[1])
				require.NoError(t, perKey.Write(ctx, vk, rows(vk, base.Add(10*time.Second), int64(10+round))))
				require.NoError(t, perKey.Write(ctx, vk, rows(vk, base.Add(20*time.Second), int64(20+round))))
				compare("concurrent writers")
			}
		})
	}
}
