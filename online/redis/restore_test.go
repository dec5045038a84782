package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

// TestCRC64Jones: RESTORE checks a payload's CRC-64 (Redis's crc64, Jones polynomial): the
// standard check value, and every tail length of the slicing-by-8 loop against the bytewise one.
func TestCRC64Jones(t *testing.T) {
	require.Equal(t, uint64(0xe9c6d914c4b8d9ca), crc64Jones([]byte("123456789")))
	b := []byte("the quick brown fox jumps over the lazy dog, twice over")
	for n := range len(b) {
		var want uint64
		for _, c := range b[:n] {
			want = crc64Table[0][byte(want)^c] ^ want>>8
		}
		require.Equal(t, want, crc64Jones(b[:n]), "length %d", n)
	}
}

// TestFirstLoadByRestore: a first load goes by RESTORE, one command a row and no script, on a
// single node and on a cluster, for views with and without TTL, with rows whose RDB string
// length takes 1, 2 and 5 bytes (under 64 bytes, under 16 KiB, above): the server accepts every
// payload (nothing falls back), every key holds exactly the row, a view without TTL leaves
// the key without expiry, a view with TTL gives it max(event + TTL, now) + grace; writing the
// same keys again goes to the script (BUSYKEY), and a newer row replaces the restored one.
func TestFirstLoadByRestore(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster bool
	}{{"single", false}, {"cluster", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var s *Store
			if tc.cluster {
				s = New(newClusterClient(cluster.Addrs()), Options{ExpiryGrace: time.Hour})
			} else {
				s = New(newSingleClient(single.Addr), Options{ExpiryGrace: time.Hour})
			}
			defer s.Close()
			for _, ttl := range []time.Duration{0, 48 * time.Hour} {
				project := onlinetest.Project(t) + fmt.Sprint(int(ttl.Hours())) // keys of their own
				v := onlinetest.MustView(t, project, onlinetest.FeatureView(fmt.Sprintf("v%d", int(ttl.Hours())), []string{"user"}, ttl, "string"))
				sizes := []int{1, 40, 100, 16_000, 70_000}
				ev := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
				rows := func(ev time.Time, tag string) []online.Row {
					r := make([]online.Row, len(sizes))
					for i, n := range sizes {
						r[i] = online.Row{Key: onlinetest.UserKey(t, v, int64(i)), EventTS: ev, Values: []online.Value{online.String(tag + strings.Repeat("x", n))}}
					}
					return r
				}
				require.NoError(t, s.Write(ctx, v, rows(ev, "a")))
				require.False(t, s.noRestore.Load(), "the server refused RESTORE")
				check := func(ev time.Time, tag string) {
					t.Helper()
					for i, n := range sizes {
						key := onlinetest.UserKey(t, v, int64(i))
						hk := string(appendHashKey(nil, project, key))
						fields, err := s.client.HKeys(ctx, hk).Result()
						require.NoError(t, err)
						require.Contains(t, fields, v.StorageName())
						res, err := s.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: []online.EntityKey{key}}}})
						require.NoError(t, err)
						require.Equal(t, tag+strings.Repeat("x", n), res.Columns[0].Values[0].Str(), "ttl %v size %d", ttl, n)
						require.Equal(t, ev.UTC(), res.Columns[0].EventTS[0].UTC())
						exp, err := s.client.PExpireTime(ctx, hk).Result()
						require.NoError(t, err)
						if ttl == 0 {
							require.Equal(t, time.Duration(-1), exp, "ttl %v size %d: no expiry", ttl, n)
						} else {
							want := ev.Add(ttl).Add(time.Hour)
							require.InDelta(t, float64(want.UnixMilli()), float64(exp.Milliseconds()), 2000, "ttl %v size %d: expiry", ttl, n)
						}
					}
				}
				check(ev, "a")
				require.NoError(t, s.Write(ctx, v, rows(ev.Add(-time.Minute), "old"))) // stale: the script skips them
				check(ev, "a")
				require.NoError(t, s.Write(ctx, v, rows(ev.Add(time.Minute), "b"))) // newer
				check(ev.Add(time.Minute), "b")
			}
		})
	}
}

// TestFirstLoadWithoutRestorePermission: a user whose ACL refuses RESTORE (no @dangerous)
// still writes: the first RESTORE's NOPERM turns the path off for the store, and those rows
// and every later one go to the script (and, for a view without TTL, writeNew), with the same
// result.
func TestFirstLoadWithoutRestorePermission(t *testing.T) {
	ctx := context.Background()
	admin := newSingleClient(single.Addr)
	defer admin.Close()
	user := "norestore_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))
	require.NoError(t, admin.Do(ctx, "acl", "setuser", user, "reset", "on", ">pw", "~*", "+@all", "-restore").Err())
	defer admin.Do(ctx, "acl", "deluser", user)
	s := New(goredis.NewClient(&goredis.Options{Addr: single.Addr, Username: user, Password: "pw", ContextTimeoutEnabled: true}), Options{ExpiryGrace: time.Hour})
	defer s.Close()
	project := onlinetest.Project(t)
	for _, ttl := range []time.Duration{0, 48 * time.Hour} {
		v := onlinetest.MustView(t, project, onlinetest.FeatureView(fmt.Sprintf("v%d", int(ttl.Hours())), []string{"user"}, ttl, "int64"))
		rows := make([]online.Row, 20)
		for i := range rows {
			rows[i] = online.Row{Key: onlinetest.UserKey(t, v, int64(i)), EventTS: time.Now().Add(-time.Minute), Values: []online.Value{online.Int64(int64(i))}}
		}
		require.NoError(t, s.Write(ctx, v, rows))
		require.True(t, s.noRestore.Load())
		keys := make([]online.EntityKey, len(rows))
		for i := range rows {
			keys[i] = rows[i].Key
		}
		res, err := s.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: keys}}})
		require.NoError(t, err)
		for i := range rows {
			require.Equal(t, int64(i), res.Columns[0].Values[i].Int64())
		}
	}
}
