package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

// legacyWriteScript is the stale-write guard as it was before it probed keys with
// PEXPIRETIME first (HGET, HSET, then PERSIST or PEXPIREAT ... GT on every row): the
// reference TestWriteScriptMatchesLegacy holds the current script to.
const legacyWriteScript = `
local field = ARGV[1]
local persist = ARGV[2] == '1'
local grace = tonumber(ARGV[3])
local unpack = struct.unpack
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local written = 0
for i, key in ipairs(KEYS) do
  local new = ARGV[2 + 2 * i]
  local old = redis.call('HGET', key, field)
  local write = true
  if old and #old >= 17 and string.byte(old, 1) == string.byte(new, 1) then
    local n1, n2, n3, n4 = unpack('>I4I4I4I4', new, 2)
    local o1, o2, o3, o4 = unpack('>I4I4I4I4', old, 2)
    if n1 ~= o1 then write = n1 > o1
    elseif n2 ~= o2 then write = n2 > o2
    elseif n3 ~= o3 then write = n3 > o3
    else write = n4 >= o4 end
  end
  if write then
    if persist then
      redis.call('HSET', key, field, new)
      redis.call('PERSIST', key)
    else
      local target = math.max(tonumber(ARGV[3 + 2 * i]), now) + grace
      if old then
        redis.call('HSET', key, field, new)
        redis.call('PEXPIREAT', key, target, 'GT')
      else
        local exp = redis.call('PEXPIRETIME', key)
        redis.call('HSET', key, field, new)
        if exp == -2 or (exp ~= -1 and target > exp) then redis.call('PEXPIREAT', key, target) end
      end
    end
    written = written + 1
  end
end
return written
`

// TestWriteScriptMatchesLegacy writes the same random sequence of rows — three views (no
// TTL, 2 h, 48 h) sharing the hashes of a few entities, event times from 100 h ago to now,
// in random order, with repeats and stale rows, several rows of one entity in one script call
// — through the current script and through the legacy one into two projects of the same
// Redis, and asserts that every hash ends with the same fields, values and expiry. Between
// rounds it also gives some keys an expiry or takes it away behind the store's back.
func TestWriteScriptMatchesLegacy(t *testing.T) {
	ctx := context.Background()
	client := newSingleClient(single.Addr)
	defer client.Close()
	cur := New(newSingleClient(single.Addr), Options{ExpiryGrace: time.Hour, RowsPerScript: 3})
	defer cur.Close()
	legacy := New(newSingleClient(single.Addr), Options{ExpiryGrace: time.Hour, RowsPerScript: 3})
	legacy.script = goredis.NewScript(legacyWriteScript)
	defer legacy.Close()
	pc, pl := onlinetest.Project(t), onlinetest.Project(t)+"x"
	type pair struct{ cur, legacy *online.View }
	var views []pair
	for _, ttl := range []time.Duration{0, 2 * time.Hour, 48 * time.Hour} {
		fv := onlinetest.FeatureView(fmt.Sprintf("v%d", int(ttl.Hours())), []string{"user"}, ttl, "int64")
		views = append(views, pair{onlinetest.MustView(t, pc, fv), onlinetest.MustView(t, pl, fv)})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now().Truncate(time.Hour)
	const entities = 6
	for round := range 40 {
		vp := views[rng.IntN(len(views))]
		var rc, rl []online.Row
		for range 1 + rng.IntN(6) {
			id := int64(rng.IntN(entities))
			ev := now.Add(-time.Duration(rng.IntN(100)) * time.Hour)
			created := ev.Add(time.Duration(rng.IntN(2)) * time.Second)
			val := []online.Value{online.Int64(int64(round))}
			rc = append(rc, online.Row{Key: onlinetest.UserKey(t, vp.cur, id), EventTS: ev, CreatedTS: created, Values: val})
			rl = append(rl, online.Row{Key: onlinetest.UserKey(t, vp.legacy, id), EventTS: ev, CreatedTS: created, Values: val})
		}
		require.NoError(t, cur.Write(ctx, vp.cur, rc))
		require.NoError(t, legacy.Write(ctx, vp.legacy, rl))
		if round%7 == 3 { // someone else touches a key's expiry
			id := int64(rng.IntN(entities))
			expire := rng.IntN(2) == 0
			for _, p := range []string{pc, pl} {
				k := string(appendHashKey(nil, p, onlinetest.UserKey(t, views[0].cur, id)))
				if expire {
					client.PExpireAt(ctx, k, now.Add(30*time.Hour))
				} else {
					client.Persist(ctx, k)
				}
			}
		}
		for id := range int64(entities) {
			kc := string(appendHashKey(nil, pc, onlinetest.UserKey(t, views[0].cur, id)))
			kl := string(appendHashKey(nil, pl, onlinetest.UserKey(t, views[0].cur, id)))
			hc, err := client.HGetAll(ctx, kc).Result()
			require.NoError(t, err)
			hl, err := client.HGetAll(ctx, kl).Result()
			require.NoError(t, err)
			require.Equal(t, hl, hc, "round %d entity %d: fields", round, id)
			ec, err := client.PExpireTime(ctx, kc).Result()
			require.NoError(t, err)
			el, err := client.PExpireTime(ctx, kl).Result()
			require.NoError(t, err)
			if el < 0 || ec < 0 {
				require.Equal(t, el, ec, "round %d entity %d: expiry", round, id)
			} else {
				// Expiries from the write time (max(event + TTL, now)) differ by the time between
				// the two scripts' runs.
				require.InDelta(t, float64(el), float64(ec), float64(2*time.Second), "round %d entity %d: expiry", round, id)
			}
		}
	}
}

// TestWriteScriptCallsPerRow counts the Redis calls the guard makes for a call of 50 rows
// (INFO commandstats of a throwaway server). A write first tries its rows without the script
// (writeRestore): a RESTORE a row, which creates a key that does not exist; the rows that
// leaves — all of them when the keys exist — go to the script, and after such a pipeline the
// next ones of the view go straight to the script (so the TTL view's writes below, after its
// first pipeline failed, show the script alone). A script call probes its first key with PEXPIRETIME; when
// that key is new, one EXISTS over the others tells whether all are: then each row is an HSETNX
// (plus PEXPIREAT with a TTL), with no HGET and no probe. Otherwise each row starts with HGET;
// a stored row is followed, when written, by HSET and PEXPIREAT ... GT (or PERSIST), and only
// a row without a stored value is probed. A row identical to the stored one is not written
// again, a stale row costs its HGET alone.
func TestWriteScriptCallsPerRow(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t).Addr
	client := newSingleClient(srv)
	defer client.Close()
	s := New(newSingleClient(srv), Options{})
	defer s.Close()
	project := onlinetest.Project(t)
	forever := onlinetest.MustView(t, project, onlinetest.FeatureView("forever", []string{"user"}, 0, "int64"))
	week := onlinetest.MustView(t, project, onlinetest.FeatureView("week", []string{"user"}, 7*24*time.Hour, "int64"))
	const n = 50
	rows := func(v *online.View, first int, ev time.Time) []online.Row {
		r := make([]online.Row, n)
		for i := range r {
			r[i] = online.Row{Key: onlinetest.UserKey(t, v, int64(first+i)), EventTS: ev, Values: []online.Value{online.Int64(1)}}
		}
		return r
	}
	ev := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name  string
		write func()
		calls map[string]int64 // for the 50 rows
	}{
		{"new entities, no TTL: no script, a RESTORE a row", func() { require.NoError(t, s.Write(ctx, forever, rows(forever, 0, ev))) },
			map[string]int64{"restore": n}},
		{"the same rows again: RESTORE fails (BUSYKEY), then the script: nothing to write, PERSIST keeps the keys without expiry", func() { require.NoError(t, s.Write(ctx, forever, rows(forever, 0, ev))) },
			map[string]int64{"restore": n, "pexpiretime": 1, "hget": n, "persist": n - 1}},
		{"older rows: straight to the script (the last try of RESTORE failed)", func() { require.NoError(t, s.Write(ctx, forever, rows(forever, 0, ev.Add(-time.Hour)))) },
			map[string]int64{"pexpiretime": 1, "hget": n}},
		{"a view with TTL on keys without expiry: RESTORE fails, then the script: probed, no PEXPIREAT", func() { require.NoError(t, s.Write(ctx, week, rows(week, 0, ev))) },
			map[string]int64{"restore": n, "pexpiretime": n, "hget": n, "hset": n}},
	} {
		require.NoError(t, client.ConfigResetStat(ctx).Err())
		tc.write()
		require.Equal(t, tc.calls, commandCalls(t, client), tc.name)
	}
	require.NoError(t, client.FlushAll(ctx).Err())
	for _, tc := range []struct {
		name  string
		first int
		ev    time.Time
		calls map[string]int64
	}{
		{"new entities, TTL", 0, ev, map[string]int64{"pexpiretime": 1, "exists": 1, "hsetnx": n, "pexpireat": n}},
		{"the same rows again: the expiry is already right", 0, ev, map[string]int64{"pexpiretime": 1, "hget": n, "pexpireat": n - 1}},
		{"newer rows move the expiry", 0, ev.Add(time.Minute), map[string]int64{"pexpiretime": 1, "hget": n, "hset": n, "pexpireat": n}},
		{"stale rows", 0, ev, map[string]int64{"pexpiretime": 1, "hget": n}},
		{"half stored, half new entities", n / 2, ev.Add(2 * time.Minute), map[string]int64{"pexpiretime": 1 + n/2, "hget": n, "hset": n, "pexpireat": n}},
	} {
		require.NoError(t, client.ConfigResetStat(ctx).Err())
		require.NoError(t, s.Write(ctx, week, rows(week, tc.first, tc.ev)))
		require.Equal(t, tc.calls, commandCalls(t, client), tc.name)
	}
}

// commandCalls returns the calls made since the last CONFIG RESETSTAT, by command, leaving
// out the script's own (EVALSHA, SCRIPT, TIME) and the test's.
func commandCalls(t *testing.T, client *goredis.Client) map[string]int64 {
	t.Helper()
	info, err := client.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(rest, "calls=") {
			continue
		}
		var calls int64
		if _, err := fmt.Sscanf(rest, "calls=%d", &calls); err != nil {
			continue
		}
		switch name {
		case "evalsha", "eval", "script|load", "script", "time", "config|resetstat", "info", "hello", "client|setinfo", "ping", "select":
			continue
		}
		out[name] = calls
	}
	return out
}
