package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
)

// TestOnlineFanOutLeavesIdenticalRedis is issue 24's online load fan-out: materialize with
// --online-workers 1, 2 and 4 (after the offline commit, each worker folding a disjoint range
// of entity keys through the stale-write guard), and without (the rows folded on their way
// offline), into four databases of one Redis, leaves every key with the same contents, over
// 400 entities, after two runs, the second over older rows too (they meet the guard). (The
// project's aggregation view loads its tiles as without --online-workers; its windows end
// before the run's end here, so it has none.)
func TestOnlineFanOutLeavesIdenticalRedis(t *testing.T) {
	rd := testenv.StartRedis(t)
	dir := filepath.Join(t.TempDir(), "fan")
	writeFile(t, filepath.Join(dir, "quiver.yaml"), "project: fan\ndefinitions: [features]\n")
	writeFile(t, filepath.Join(dir, "features", "defs.yaml"), strings.Replace(rtLakeDefs, "FEATURES\n", rtFeatureYAML, 1))
	rows := rtSourceRows(11, 3000, 400)
	defer rows.Release()
	rtWriteParquet(t, filepath.Join(dir, "data", "events.parquet"), rows)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)

	workers := []string{"0", "1", "2", "4"}
	for db, w := range workers {
		env := map[string]string{"QUIVER_ONLINE": "redis://" + rd.Addr + "/" + strconv.Itoa(db)}
		// The later half first, then the whole range: the second run's older rows meet the
		// guard.
		for _, iv := range [][2]string{{"2024-03-06T00:00:00Z", "2024-04-01T00:00:00Z"}, {"2024-02-01T00:00:00Z", "2024-04-01T00:00:00Z"}} {
			r := quiver(t, env, "-C", dir, "materialize", "--online-workers", w, "--start", iv[0], "--end", iv[1])
			require.Equal(t, exitOK, r.code, r.stderr)
		}
	}
	want := redisContents(t, rd.Addr, 0)
	require.Len(t, want, 400, "every entity is online")
	for k, v := range want {
		require.Contains(t, v, `"prof"=`, "key %q", k)
	}
	for db := 1; db < len(workers); db++ {
		got := redisContents(t, rd.Addr, db)
		require.Equal(t, len(want), len(got), "--online-workers %s: keys", workers[db])
		for k, v := range want {
			require.Equal(t, v, got[k], "--online-workers %s: key %q", workers[db], k)
		}
	}
	r := quiver(t, nil, "-C", dir, "materialize", "--online-workers", "-1", "--start", "2024-02-01", "--end", "2024-04-01")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "--online-workers -1")
}

// redisContents is every key of one Redis database with its type and contents (hash fields
// sorted), and whether it expires.
func redisContents(t *testing.T, addr string, db int) map[string]string {
	t.Helper()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	defer c.Close()
	out := map[string]string{}
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ, err := c.Type(ctx, k).Result()
		require.NoError(t, err)
		var v string
		switch typ {
		case "hash":
			m, err := c.HGetAll(ctx, k).Result()
			require.NoError(t, err)
			fields := make([]string, 0, len(m))
			for f, x := range m {
				fields = append(fields, fmt.Sprintf("%q=%q", f, x))
			}
			sort.Strings(fields)
			v = strings.Join(fields, ",")
		case "string":
			v, err = c.Get(ctx, k).Result()
			require.NoError(t, err)
		case "zset":
			zs, err := c.ZRangeWithScores(ctx, k, 0, -1).Result()
			require.NoError(t, err)
			v = fmt.Sprint(zs)
		default:
			t.Fatalf("key %q has type %s, which this comparison does not read", k, typ)
		}
		ttl, err := c.PTTL(ctx, k).Result()
		require.NoError(t, err)
		out[k] = fmt.Sprintf("%s %s expires=%v", typ, v, ttl > 0)
	}
	require.NoError(t, iter.Err())
	return out
}

// TestScaleOutFlagsAreChecked: bad --engine, --chunk, --parallel and --online-workers are
// usage errors naming the flag and what would be valid, before anything runs.
func TestScaleOutFlagsAreChecked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--engine", "spark"}, `--engine "spark" is not an engine; valid engines: local, trino`},
		{[]string{"--engine", "trino"}, "--engine trino needs trino.dsn"},
		{[]string{"--parallel", "2"}, "--parallel goes with --chunk D"},
		{[]string{"--chunk", "0d"}, `--chunk "0d" is not a positive duration`},
		{[]string{"--chunk", "soon"}, `--chunk "soon" is not a positive duration`},
		{[]string{"--chunk", "1d", "--parallel", "0"}, "--parallel 0: run at least 1 chunk at a time"},
		{[]string{"--online-workers", "1000"}, "--online-workers 1000: use 1 to 256 workers"},
	} {
		r := quiver(t, nil, append([]string{"-C", dir, "materialize", "--start", "2026-01-01", "--end", "2026-01-02"}, tc.args...)...)
		require.Contains(t, r.stderr, tc.want, "%v", tc.args)
		if tc.args[1] != "trino" {
			require.Equal(t, exitUsage, r.code, "%v: %s", tc.args, r.stderr)
		} else {
			require.Equal(t, exitInvalid, r.code, "%v: %s", tc.args, r.stderr)
		}
	}
	r := quiver(t, nil, "-C", dir, "runs", "list", "--kind", "materialization")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NotContains(t, r.stdout, "RUNNING", "nothing ran")
	require.NotContains(t, r.stdout, "FAILED", "nothing ran")
}

// TestShardedOnlineLoadLeavesIdenticalRedis: the pods of materialize --backend kubernetes
// --shards N each run materialize --shard i/N; run here one after another (no cluster), the
// three shards of an interval committed offline before leave Redis exactly as one
// --online-workers 1 load of it does, every key compared, and each shard loads a part.
func TestShardedOnlineLoadLeavesIdenticalRedis(t *testing.T) {
	rd := testenv.StartRedis(t)
	dir := filepath.Join(t.TempDir(), "fan")
	writeFile(t, filepath.Join(dir, "quiver.yaml"), "project: fan\ndefinitions: [features]\n")
	writeFile(t, filepath.Join(dir, "features", "defs.yaml"), strings.Replace(rtLakeDefs, "FEATURES\n", rtFeatureYAML, 1))
	rows := rtSourceRows(13, 3000, 400)
	defer rows.Release()
	rtWriteParquet(t, filepath.Join(dir, "data", "events.parquet"), rows)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	const start, end = "2024-02-01T00:00:00Z", "2024-04-01T00:00:00Z"
	env := func(db int) map[string]string {
		return map[string]string{"QUIVER_ONLINE": "redis://" + rd.Addr + "/" + strconv.Itoa(db)}
	}

	r := quiver(t, env(0), "-C", dir, "materialize", "--online-workers", "1", "--start", start, "--end", end)
	require.Equal(t, exitOK, r.code, r.stderr)
	want := redisContents(t, rd.Addr, 0)
	require.Len(t, want, 400, "every entity is online")

	const n = 3
	loaded := 0
	for i := range n {
		r := quiver(t, env(1), "-C", dir, "-o", "json", "materialize", "--shard", fmt.Sprintf("%d/%d", i, n), "--start", start, "--end", end)
		require.Equal(t, exitOK, r.code, r.stderr)
		require.Contains(t, r.stdout, fmt.Sprintf(`"shard": "%d/%d"`, i, n), r.stdout)
		got := len(redisContents(t, rd.Addr, 1))
		require.Greater(t, got, loaded, "shard %d/%d loads a part", i, n)
		if i < n-1 {
			require.Less(t, got, len(want), "shard %d/%d loads only its part", i, n)
		}
		loaded = got
	}
	got := redisContents(t, rd.Addr, 1)
	require.Equal(t, len(want), len(got), "keys")
	for k, v := range want {
		require.Equal(t, v, got[k], "key %q", k)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--shard", "3/3"}, exitUsage, `--shard "3/3": want INDEX/COUNT`},
		{[]string{"--shards", "3"}, exitUsage, "--shards N needs --backend kubernetes"},
		{[]string{"--shard", "0/3", "--dry-run"}, exitUsage, "they take no --dry-run"},
		{[]string{"--backend", "kubernetes", "--shards", "3", "--image", "quiver:1"}, exitInvalid, "the registry is embedded"},
	} {
		r := quiver(t, env(2), append([]string{"-C", dir, "materialize", "--start", start, "--end", end}, tc.args...)...)
		require.Equal(t, tc.code, r.code, "%v: %s", tc.args, r.stderr)
		require.Contains(t, r.stderr, tc.want, tc.args)
	}
}
