package main

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
)

// BenchmarkScaleOut measures issue 24's paths on one machine (docs/BENCHMARKS.md, "Scale-out
// on Trino"; scripts/bench-scaleout.sh): materialization of QUIVER_BENCH_ROWS rows (default
// 200,000) of an Iceberg source table in process, through Trino (one node) in one run and
// in 1-day chunks two at a time, and through Trino on two nodes (a coordinator and a worker
// process started for it; QUIVER_BENCH_TRINO2=0 leaves it out), with an order-independent
// checksum of each resulting table; then the online load of the in-process table into Redis
// with 1, 2 and 4 workers. One iteration: the figures are the run's, reported as metrics.
func BenchmarkScaleOut(b *testing.B) {
	rows := int64(200_000)
	if s := os.Getenv("QUIVER_BENCH_ROWS"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		require.NoError(b, err)
		rows = n
	}
	// QUIVER_BENCH_CHUNK is the backfills' --chunk (default 1d: 24 chunks at 20 M rows; a
	// smaller one gives a short run several chunks too).
	chunk := cmp.Or(os.Getenv("QUIVER_BENCH_CHUNK"), "1d")
	b.Cleanup(http.DefaultClient.CloseIdleConnections)
	// QUIVER_BENCH_TRINO_HEAP (e.g. 4G, for 20 M rows) starts Trino servers of that heap
	// instead of the test run's shared one.
	heap := os.Getenv("QUIVER_BENCH_TRINO_HEAP")
	trinoOpts := trinoBenchOptions(b, heap)
	var tr *testenv.TrinoServer
	if heap == "" {
		tr = testenv.SharedTrinoServer(b)
	} else {
		tr = testenv.StartTrinoServer(b, trinoOpts)
	}
	pg := testenv.StartPostgres(b)
	rd := testenv.StartRedis(b)
	dbURL, wh := pg.NewDatabase(b), b.TempDir()
	cat, err := iceberg.OpenCatalog(context.Background(), iceberg.CatalogConfig{URI: dbURL, Warehouse: wh})
	require.NoError(b, err)
	require.NoError(b, cat.Close())
	ice, err := testenv.IcebergJDBCCatalog("ice", dbURL, wh)
	require.NoError(b, err)
	iceName := tr.AddCatalog(b, ice)
	db := tr.DB(b, iceName, "")
	ctx := context.Background()
	t0 := time.Now()
	writeStatsSource(b, db, "bench", rows)
	b.Logf("source: %d rows written by Trino in %.1fs", rows, time.Since(t0).Seconds())
	end := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rows)*100*time.Millisecond + time.Hour).Truncate(24 * time.Hour).Add(24 * time.Hour)
	defs := statsDefs("bench")
	project := func(name string, redisDB int) (string, map[string]string) {
		dir := filepath.Join(b.TempDir(), name)
		writeFile(b, filepath.Join(dir, "quiver.yaml"), "project: "+name+"\ndefinitions: [features]\n")
		writeFile(b, filepath.Join(dir, "features", "defs.yaml"), defs)
		env := map[string]string{"QUIVER_REGISTRY": dbURL, "QUIVER_WAREHOUSE": wh,
			"QUIVER_ONLINE":    "redis://" + rd.Addr + "/" + strconv.Itoa(redisDB),
			"QUIVER_TRINO_DSN": tr.DSN(iceName, iceberg.ProjectNamespace(name))}
		r := quiver(b, env, "-C", dir, "apply")
		require.Equal(b, exitOK, r.code, r.stderr)
		return dir, env
	}
	type report struct {
		Runs []struct {
			RowsRead      int64   `json:"rows_read"`
			OnlineRows    int64   `json:"online_rows"`
			Seconds       float64 `json:"seconds"`
			OnlineSeconds float64 `json:"online_seconds"`
			Skipped       string  `json:"skipped"`
		} `json:"runs"`
	}
	materialize := func(dir string, env map[string]string, args ...string) (secs float64, rep report) {
		t0 := time.Now()
		r := quiver(b, env, append([]string{"-C", dir, "-o", "json", "materialize", "--start", "2024-01-01", "--end", end.Format(time.DateOnly)}, args...)...)
		secs = time.Since(t0).Seconds()
		require.Equal(b, exitOK, r.code, r.stderr)
		require.NoError(b, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
		return secs, rep
	}
	b.ResetTimer()
	for b.Loop() {
		local, localEnv := project("inproc", 0)
		secs, _ := materialize(local, localEnv)
		b.ReportMetric(float64(rows)/secs, "inprocess_rows/s")
		b.Logf("in process: %d rows in %.1fs: %.0f rows/s", rows, secs, float64(rows)/secs)
		sum := tableChecksum(b, dbURL, wh, "inproc")
		online := redisChecksum(b, rd.Addr, 0, "inproc")
		b.Logf("in process: table %s; Redis %s", sum, online)

		t1, t1Env := project("trino1", 1)
		secs, _ = materialize(t1, t1Env, "--engine", "trino")
		b.ReportMetric(float64(rows)/secs, "trino1_rows/s")
		b.Logf("trino, 1 node, one run: %.1fs: %.0f rows/s", secs, float64(rows)/secs)
		require.Equal(b, sum, tableChecksum(b, dbURL, wh, "trino1"), "the trino engine's table equals the in-process one")
		requireSameRedis(b, rd.Addr, online, "trino1", 1)

		tc, tcEnv := project("trinochunks", 2)
		chunked, _ := materialize(tc, tcEnv, "--engine", "trino", "--chunk", chunk, "--parallel", "2")
		b.ReportMetric(float64(rows)/chunked, "trino1_chunked_rows/s")
		b.Logf("trino, 1 node, %s chunks, 2 at a time: %.1fs: %.0f rows/s", chunk, chunked, float64(rows)/chunked)
		require.Equal(b, sum, tableChecksum(b, dbURL, wh, "trinochunks"), "the chunked backfill's table equals the in-process one")
		requireSameRedis(b, rd.Addr, online, "trinochunks", 2)

		// The same backfill killed -9 halfway through (at half the uninterrupted run's
		// time, so one or two chunks are mid-flight: staging in Trino, reading the staged
		// files or committing), then run again: it resumes at the chunks not done and leaves
		// the same table and Redis.
		tk, tkEnv := project("trinoresume", 7)
		const lease = 10 * time.Second
		tkEnv["QUIVER_RUN_LEASE"] = lease.String()
		args := []string{"-C", tk, "-o", "json", "materialize", "--start", "2024-01-01", "--end", end.Format(time.DateOnly), "--engine", "trino", "--chunk", chunk, "--parallel", "2"}
		cmd, out := quiverProcess(b, tkEnv, args...)
		time.Sleep(time.Duration(chunked / 2 * float64(time.Second)))
		require.NoError(b, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		b.Logf("killed -9 after %.1fs; it had said: %s", chunked/2, lastLines(out.String(), 3))
		require.NotEqual(b, sum, tableChecksum(b, dbURL, wh, "trinoresume"), "the killed backfill loaded part of the range")
		time.Sleep(lease + lease/2) // the killed runs' leases lapse; the next run reaps them
		t0 := time.Now()
		r := quiver(b, tkEnv, args...)
		resumed := time.Since(t0).Seconds()
		require.Equal(b, exitOK, r.code, r.stderr)
		var rep report
		require.NoError(b, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
		done, ran := 0, 0
		for _, run := range rep.Runs {
			if strings.HasPrefix(run.Skipped, "done in an earlier run of backfill") {
				done++
			} else if run.Skipped == "" {
				ran++
			}
		}
		b.Logf("resumed: %d chunks done before the kill were skipped, %d ran, in %.1fs", done, ran, resumed)
		require.Positive(b, done, "the resume skips the chunks the killed run finished")
		require.Positive(b, ran, "the resume runs the chunks the killed run did not finish")
		require.Equal(b, sum, tableChecksum(b, dbURL, wh, "trinoresume"), "the killed and resumed backfill's table equals the in-process one")
		requireSameRedis(b, rd.Addr, online, "trinoresume", 7)

		// Two nodes: a coordinator and a worker process of their own, with the same catalog.
		if os.Getenv("QUIVER_BENCH_TRINO2") != "0" {
			tr2 := testenv.StartTrinoServer(b, trinoOpts)
			testenv.StartTrinoWorker(b, tr2, trinoBenchOptions(b, heap))
			ice2 := tr2.AddCatalog(b, ice)
			// Warm the new cluster up (catalog load, first-query compilation) as the shared
			// server is warm by now.
			var n int64
			require.NoError(b, tr2.DB(b, ice2, "").QueryRowContext(ctx, "SELECT count(*) FROM bench.events WHERE clicks >= 0").Scan(&n))
			t2, t2Env := project("trino2", 6)
			t2Env["QUIVER_TRINO_DSN"] = tr2.DSN(ice2, iceberg.ProjectNamespace("trino2"))
			secs, _ = materialize(t2, t2Env, "--engine", "trino")
			b.ReportMetric(float64(rows)/secs, "trino2_rows/s")
			b.Logf("trino, 2 nodes, one run: %.1fs: %.0f rows/s", secs, float64(rows)/secs)
			require.Equal(b, sum, tableChecksum(b, dbURL, wh, "trino2"), "the two-node table equals the in-process one")
			requireSameRedis(b, rd.Addr, online, "trino2", 6)
		}

		for i, w := range []int{1, 2, 4} {
			env := map[string]string{}
			for k, v := range localEnv {
				env[k] = v
			}
			env["QUIVER_ONLINE"] = "redis://" + rd.Addr + "/" + strconv.Itoa(3+i)
			_, rep := materialize(local, env, "--online-workers", strconv.Itoa(w))
			var secs float64
			var n int64
			for _, r := range rep.Runs {
				secs += r.OnlineSeconds
				n += r.OnlineRows
			}
			b.ReportMetric(float64(n)/secs, "online_"+strconv.Itoa(w)+"w_entities/s")
			b.Logf("online load, %d workers: %d entities in %.2fs: %.0f entities/s", w, n, secs, float64(n)/secs)
			requireSameRedis(b, rd.Addr, online, "inproc", 3+i)
		}
	}
}

// writeStatsSource writes schema.events, the scale-out source, through Trino into the
// Iceberg catalog of db: rows numbered n = 0..rows-1, a user per n mod rows/20, row n's event
// n × 100 ms after 2024-01-01 (rounded to the second: date_add keeps TIMESTAMP(0)'s precision;
// no two rows share a user and second), created 1 s later, four features.
func writeStatsSource(t testing.TB, db *sql.DB, schema string, rows int64) {
	ctx := context.Background()
	_, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	blocks := (rows + 9999) / 10000
	_, err = db.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s.events WITH (format = 'PARQUET') AS
SELECT n %% %d AS user_id,
  CAST(date_add('millisecond', n * 100, TIMESTAMP '2024-01-01 00:00:00 UTC') AS TIMESTAMP(6) WITH TIME ZONE) AS ts,
  CAST(date_add('millisecond', n * 100 + 1000, TIMESTAMP '2024-01-01 00:00:00 UTC') AS TIMESTAMP(6) WITH TIME ZONE) AS created,
  n %% 1000 AS clicks, CAST(n AS DOUBLE) / 7 AS spend, 'u' || CAST(n %% 97 AS VARCHAR) AS name, n %% 2 = 0 AS active
FROM (SELECT j * 10000 + i AS n FROM UNNEST(sequence(0, 9999)) AS a(i) CROSS JOIN UNNEST(sequence(0, %d)) AS b(j))
WHERE n < %d`, schema, max(rows/20, 1), blocks-1, rows))
	require.NoError(t, err)
}

// statsDefs is a project with one view, stats, over writeStatsSource's schema.events.
func statsDefs(schema string) string {
	return `entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: events
    iceberg: { table: ` + schema + `.events }
    timestamp_field: ts
    created_timestamp_field: created
feature_views:
  - name: stats
    entities: [user]
    source: events
    online: true
    features:
      - { name: clicks, type: int64 }
      - { name: spend, type: float64 }
      - { name: name, type: string }
      - { name: active, type: bool }
`
}

// trinoBenchOptions are the options of a Trino server of the given heap (testenv's small
// default when ""): a query may use 55% of the heap on each node (Trino keeps 30% as headroom),
// and operators that can spill do, into a directory of the benchmark's. The test run's 256 MB
// per query is too little to stage 20 M rows in one interval: row_number() over (keys,
// event_ts, created_ts) holds every distinct key of the interval.
func trinoBenchOptions(b *testing.B, heap string) testenv.TrinoOptions {
	if heap == "" {
		return testenv.TrinoOptions{}
	}
	n, err := strconv.ParseInt(strings.TrimRight(heap, "GgMm"), 10, 64)
	require.NoError(b, err, "QUIVER_BENCH_TRINO_HEAP %q: want a size like 4G or 3072M", heap)
	mb := n
	if strings.ContainsAny(heap, "Gg") {
		mb *= 1024
	}
	perNode := mb * 55 / 100
	return testenv.TrinoOptions{Heap: heap, Config: map[string]string{
		"query.max-memory-per-node": strconv.FormatInt(perNode, 10) + "MB",
		"query.max-memory":          strconv.FormatInt(2*perNode, 10) + "MB",
		"spill-enabled":             "true",
		"spiller-spill-path":        b.TempDir(),
	}}
}

// requireSameRedis checks that database db of the Redis at addr holds what the in-process run
// left in database 0 (want, redisChecksum's), key for key.
func requireSameRedis(b *testing.B, addr, want, project string, db int) {
	got := redisChecksum(b, addr, db, project)
	b.Logf("redis db %d (%s): %s", db, project, got)
	require.Equal(b, want, got, "redis db %d (%s) equals the in-process run's", db, project)
}

// redisChecksum is an order-independent checksum of one Redis database: the sum over keys of
// the FNV-64 hash of the key (without its "q:<project>:" prefix, so projects compare), its
// type, its fields and values sorted, and whether it expires; and the key count. Read with
// SCAN and pipelined HGETALL, a thousand keys at a time, so a million keys fit in memory.
func redisChecksum(b *testing.B, addr string, db int, project string) string {
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	defer c.Close()
	prefix := "q:" + project + ":"
	var sum, n uint64
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, "*", 1000).Result()
		require.NoError(b, err)
		pipe := c.Pipeline()
		all := make([]*redis.MapStringStringCmd, len(keys))
		ttls := make([]*redis.DurationCmd, len(keys))
		for i, k := range keys {
			all[i], ttls[i] = pipe.HGetAll(ctx, k), pipe.PTTL(ctx, k)
		}
		_, err = pipe.Exec(ctx)
		require.NoError(b, err)
		for i, k := range keys {
			require.True(b, strings.HasPrefix(k, prefix), "key %q in db %d is not project %s's", k, db, project)
			m := all[i].Val()
			fields := make([]string, 0, len(m))
			for f, v := range m {
				fields = append(fields, strconv.Quote(f)+"="+strconv.Quote(v))
			}
			sort.Strings(fields)
			h := fnv.New64a()
			_, _ = fmt.Fprintf(h, "%q hash %s expires=%v", strings.TrimPrefix(k, prefix), strings.Join(fields, ","), ttls[i].Val() > 0)
			sum += h.Sum64()
			n++
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	return fmt.Sprintf("%d keys, sum %016x", n, sum)
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}

// tableChecksum is an order-independent checksum of a project's stats table: the sum of each
// row's FNV-64 hash, and the row count.
func tableChecksum(b *testing.B, dbURL, wh, project string) string {
	ctx := context.Background()
	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: dbURL, Warehouse: wh})
	require.NoError(b, err)
	defer cat.Close()
	store, err := iceberg.NewStore(ctx, cat, iceberg.StoreOptions{Namespace: iceberg.ProjectNamespace(project)})
	require.NoError(b, err)
	st, err := store.Scan(ctx, "stats", offline.ScanRequest{})
	require.NoError(b, err)
	defer st.Close()
	var sum, n uint64
	for {
		rec, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(b, err)
		for _, row := range rtRecordRows(rec) {
			h := fnv.New64a()
			_, _ = h.Write([]byte(row))
			sum += h.Sum64()
			n++
		}
		rec.Release()
	}
	return fmt.Sprintf("%d rows, sum %016x", n, sum)
}
