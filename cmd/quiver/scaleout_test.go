package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline/iceberg"
)

// TestScaleOutOnTrino is issue 24 against the real Trino 483: materialize --engine trino
// (Trino stages each interval, Quiver commits it) equals the in-process engine row for row,
// and a kill -9 at each point of a run, then a re-run, leaves the table exact and the
// staging table dropped.
func TestScaleOutOnTrino(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections) // trino-go-client's keep-alive connections
	tr := testenv.SharedTrinoServer(t)
	pg := testenv.StartPostgres(t)
	t.Run("EngineMatchesInProcess", func(t *testing.T) { testTrinoEngineMatchesInProcess(t, tr, pg) })
	t.Run("BackfillResumes", func(t *testing.T) { testBackfillResumes(t, tr, pg) })
	t.Run("DatasetThroughStagedTable", func(t *testing.T) { testDatasetThroughStagedTable(t, tr, pg) })
	t.Run("KilledDatasetBuildsStagingIsDropped", func(t *testing.T) { testKilledDatasetBuildsStagingIsDropped(t, tr, pg) })
	t.Run("PinsSurviveTrinoExpiry", func(t *testing.T) { testPinsSurviveTrinoExpiry(t, tr, pg) })
}

// TestTrinoTwoNodes runs materialize --engine trino on a coordinator and a separate worker
// process (own node id, port and data directory): system.runtime.nodes lists both active, and
// the tasks of the staging statement ran on both; the table equals the in-process engine's.
func TestTrinoTwoNodes(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	tr := testenv.StartTrinoServer(t, testenv.TrinoOptions{})
	testenv.StartTrinoWorker(t, tr, testenv.TrinoOptions{})
	pg := testenv.StartPostgres(t)
	l := newRTLake(t, tr, pg)
	nodes := l.trinoRows(t, "SELECT node_id, coordinator FROM system.runtime.nodes WHERE state = 'active' ORDER BY 1")
	require.Len(t, nodes, 2, "a coordinator and a worker: %v", nodes)
	require.NotEqual(t, strings.Split(nodes[0], "|")[0], strings.Split(nodes[1], "|")[0])
	require.ElementsMatch(t, []string{"true", "false"}, []string{strings.Split(nodes[0], "|")[1], strings.Split(nodes[1], "|")[1]})

	const users = 25
	rows := soSourceRows(8, 800, users)
	defer rows.Release()
	table := l.mem + ".default.events"
	tr.LoadTable(t, table, rows)
	const start, end = "2024-02-01T00:00:00Z", "2024-04-01T00:00:00Z"
	localDir, localEnv := l.project(t, "local", soDefs(table))
	trinoDir, trinoEnv := l.project(t, "two", soDefs(table))
	for _, p := range []struct {
		dir    string
		env    map[string]string
		engine string
	}{{localDir, localEnv, "local"}, {trinoDir, trinoEnv, "trino"}} {
		require.Equal(t, exitOK, quiver(t, p.env, "-C", p.dir, "apply").code)
		r := quiver(t, p.env, "-C", p.dir, "materialize", "--engine", p.engine, "--start", start, "--end", end)
		require.Equal(t, exitOK, r.code, r.stderr)
	}
	for _, view := range []string{"prof", "txn"} {
		want := l.scan(t, "local", view, 1)
		require.NotEmpty(t, want)
		require.Equal(t, want, l.scan(t, "two", view, 1), "view %s", view)
	}
	// The staging statements run as prepared statements (their time bounds are parameters):
	// EXECUTE in the query log. This cluster runs nothing else.
	used := l.trinoRows(t, `SELECT t.node_id, count(*), sum(t.completed_splits) FROM system.runtime.tasks t JOIN system.runtime.queries q ON t.query_id = q.query_id
WHERE q.query LIKE 'EXECUTE%' GROUP BY t.node_id ORDER BY 1`)
	t.Logf("staging statements' tasks per node (node|tasks|splits): %v", used)
	require.Len(t, used, 2, "the staging statements ran on both nodes: %v", used)
}

// soDefs is a project over a Trino source: a plain view of every type and an aggregation
// view (whose table holds the raw events).
func soDefs(table string) string {
	defs := strings.Replace(rtLakeDefs, "FEATURES\n", rtFeatureYAML, 1)
	return strings.Replace(defs, "parquet: { path: data/events.parquet }", `trino: { query: "SELECT * FROM `+table+`" }`, 1)
}

// soSourceRows are rtSourceRows with every fifth row twice (identical duplicates, which both
// engines collapse).
func soSourceRows(seed uint64, n, users int) arrow.RecordBatch {
	rows := rtSourceRows(seed, n, users)
	defer rows.Release()
	var parts []arrow.RecordBatch
	for i := int64(0); i < rows.NumRows(); i += 5 {
		parts = append(parts, rows.NewSlice(i, min(i+5, rows.NumRows())), rows.NewSlice(i, i+1))
	}
	tbl := array.NewTableFromRecords(rows.Schema(), parts)
	defer tbl.Release()
	for _, p := range parts {
		p.Release()
	}
	cols := make([]arrow.Array, tbl.NumCols())
	for i := range cols {
		c, err := array.Concatenate(tbl.Column(i).Data().Chunks(), memory.DefaultAllocator)
		if err != nil {
			panic(err)
		}
		cols[i] = c
		defer c.Release()
	}
	return array.NewRecordBatch(rows.Schema(), cols, tbl.NumRows())
}

func testTrinoEngineMatchesInProcess(t *testing.T, tr *testenv.TrinoServer, pg *testenv.Postgres) {
	l := newRTLake(t, tr, pg)
	const users = 25
	rows := soSourceRows(4, 500, users)
	defer rows.Release()
	table := l.mem + ".default.events"
	tr.LoadTable(t, table, rows)
	const first, mid, last = "2024-02-01T00:00:00Z", "2024-03-06T00:00:00Z", "2024-04-01T00:00:00Z"

	localDir, localEnv := l.project(t, "local", soDefs(table))
	trinoDir, trinoEnv := l.project(t, "staged", soDefs(table))
	for _, p := range []struct {
		dir    string
		env    map[string]string
		engine string
	}{{localDir, localEnv, "local"}, {trinoDir, trinoEnv, "trino"}} {
		r := quiver(t, p.env, "-C", p.dir, "apply")
		require.Equal(t, exitOK, r.code, r.stderr)
		r = quiver(t, p.env, "-C", p.dir, "materialize", "--engine", p.engine, "--start", first, "--end", mid)
		require.Equal(t, exitOK, r.code, r.stderr)
	}
	for _, view := range []string{"prof", "txn"} {
		want := l.scan(t, "local", view, 1)
		require.NotEmpty(t, want)
		require.Equal(t, want, l.scan(t, "staged", view, 1), "view %s, first half", view)
	}
	stageSchema := materialize.StageSchema(iceberg.ProjectNamespace("staged"))
	stages := func() []string {
		return l.trinoRows(t, fmt.Sprintf("SELECT table_name FROM %s.information_schema.tables WHERE table_schema = '%s' ORDER BY 1", l.ice, stageSchema))
	}
	require.Empty(t, stages(), "a finished run drops its staging table")
	halfProf, halfTxn := l.scan(t, "staged", "prof", 1), l.scan(t, "staged", "txn", 1)

	// kill -9 of quiver at each point of a run over the whole range: the table still holds
	// the first half alone; a staging table left behind is dropped by the next run, which
	// makes the table exact.
	const lease = 2 * time.Second
	for _, point := range []string{"stage", "staged", "commit"} {
		env := map[string]string{"QUIVER_DEBUG_PAUSE_AT": point, "QUIVER_RUN_LEASE": lease.String()}
		for k, v := range trinoEnv {
			env[k] = v
		}
		cmd, out := quiverProcess(t, env, "-C", trinoDir, "materialize", "--engine", "trino", "--start", first, "--end", last, "prof")
		waitFor(t, "quiver to pause at "+point, 3*time.Minute, func() bool { return strings.Contains(out.String(), "paused at "+point) })
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		require.Equal(t, halfProf, l.scan(t, "staged", "prof", 1), "killed at %s: the table is unchanged", point)
		if point != "stage" {
			require.Len(t, stages(), 1, "killed at %s: the staging table is left", point)
		}
		time.Sleep(lease + lease/2) // the killed run is reaped
		env = map[string]string{"QUIVER_RUN_LEASE": lease.String()}
		for k, v := range trinoEnv {
			env[k] = v
		}
		r := quiver(t, env, "-C", trinoDir, "materialize", "--engine", "trino", "--start", mid, "--end", last, "txn")
		require.Equal(t, exitOK, r.code, r.stderr)
		require.Empty(t, stages(), "killed at %s: the next run drops the staging table", point)
		require.Equal(t, halfProf, l.scan(t, "staged", "prof", 1))
	}
	require.NotEqual(t, halfTxn, l.scan(t, "staged", "txn", 1))
	r := quiver(t, trinoEnv, "-C", trinoDir, "materialize", "--engine", "trino", "--start", first, "--end", last, "prof")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, localEnv, "-C", localDir, "materialize", "--start", first, "--end", last)
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, view := range []string{"prof", "txn"} {
		want := l.scan(t, "local", view, 1)
		require.Equal(t, want, l.scan(t, "staged", view, 1), "view %s after the kills and re-runs", view)
	}
	require.Equal(t, getOnlineJSON(t, localEnv, localDir, "prof", rtFeatures, users), getOnlineJSON(t, trinoEnv, trinoDir, "prof", rtFeatures, users))
	require.Empty(t, stages())

	// A parquet source cannot be read by Trino: a clear error naming it.
	pqDir, pqEnv := l.project(t, "pq", strings.Replace(rtLakeDefs, "FEATURES\n", rtFeatureYAML, 1))
	rtWriteParquet(t, filepath.Join(pqDir, "data", "events.parquet"), rows)
	require.Equal(t, exitOK, quiver(t, pqEnv, "-C", pqDir, "apply").code)
	r = quiver(t, pqEnv, "-C", pqDir, "materialize", "--engine", "trino", "--start", first, "--end", last)
	require.Equal(t, exitInvalid, r.code, r.stderr)
	require.Contains(t, r.stderr, `source "events" is a parquet source; trino reads trino and iceberg sources`)
}

// testBackfillResumes: a backfill through Trino in 2-day chunks, two at a time, killed -9
// before its fourth chunk, then run again, resumes (the chunks done are not run again) and
// leaves the same tables, online values and watermark as one uninterrupted in-process run.
func testBackfillResumes(t *testing.T, tr *testenv.TrinoServer, pg *testenv.Postgres) {
	l := newRTLake(t, tr, pg)
	const users = 25
	rows := soSourceRows(5, 600, users)
	defer rows.Release()
	table := l.mem + ".default.events"
	tr.LoadTable(t, table, rows)
	const start, end = "2024-03-01T00:00:00Z", "2024-03-11T00:00:00Z"
	wholeDir, wholeEnv := l.project(t, "whole", soDefs(table))
	chunkDir, chunkEnv := l.project(t, "chunked", soDefs(table))
	for _, p := range []struct {
		dir string
		env map[string]string
	}{{wholeDir, wholeEnv}, {chunkDir, chunkEnv}} {
		r := quiver(t, p.env, "-C", p.dir, "apply")
		require.Equal(t, exitOK, r.code, r.stderr)
	}
	r := quiver(t, wholeEnv, "-C", wholeDir, "materialize", "--start", start, "--end", end)
	require.Equal(t, exitOK, r.code, r.stderr)

	const lease = 2 * time.Second
	env := map[string]string{"QUIVER_DEBUG_PAUSE_AT": "chunk-3", "QUIVER_RUN_LEASE": lease.String()}
	for k, v := range chunkEnv {
		env[k] = v
	}
	args := []string{"-C", chunkDir, "-o", "json", "materialize", "--engine", "trino", "--chunk", "2d", "--parallel", "2", "--start", start, "--end", end}
	cmd, out := quiverProcess(t, env, args...)
	waitFor(t, "the backfill to pause before chunk 3", 3*time.Minute, func() bool { return strings.Contains(out.String(), "paused at chunk-3") })
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.NotEqual(t, l.scan(t, "whole", "prof", 1), l.scan(t, "chunked", "prof", 1), "the killed backfill loaded part of the range")

	time.Sleep(lease + lease/2) // the killed runs are reaped
	env = map[string]string{"QUIVER_RUN_LEASE": lease.String()}
	for k, v := range chunkEnv {
		env[k] = v
	}
	r = quiver(t, env, args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var rep struct {
		Runs []struct {
			View    string `json:"view"`
			Skipped string `json:"skipped"`
		} `json:"runs"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	resumed, ran := 0, 0
	for _, run := range rep.Runs {
		if run.View != "prof" {
			continue
		}
		if strings.HasPrefix(run.Skipped, "done in an earlier run of backfill") {
			resumed++
		} else {
			ran++
		}
	}
	require.GreaterOrEqual(t, resumed, 2, "the chunks done before the kill are not run again: %s", r.stdout)
	require.Equal(t, 5, resumed+ran, r.stdout)
	for _, view := range []string{"prof", "txn"} {
		want, got := l.scan(t, "whole", view, 1), l.scan(t, "chunked", view, 1)
		require.NotEmpty(t, want)
		require.Equal(t, checksum(want), checksum(got), "view %s", view)
		require.Equal(t, want, got, "view %s", view)
	}
	require.Equal(t, getOnlineJSON(t, wholeEnv, wholeDir, "prof", rtFeatures, users), getOnlineJSON(t, chunkEnv, chunkDir, "prof", rtFeatures, users))
	wm := func(env map[string]string, dir string) string {
		r := quiver(t, env, "-C", dir, "materialize-incremental", "--dry-run", "--end", "2024-04-01T00:00:00Z")
		require.Equal(t, exitOK, r.code, r.stderr)
		return r.stdout
	}
	require.Contains(t, wm(chunkEnv, chunkDir), "2024-03-11T00:00:00Z", "the watermark is at the backfill's end")
	require.Equal(t, wm(wholeEnv, wholeDir), wm(chunkEnv, chunkDir))

	// Run again: every chunk is done, nothing is loaded.
	r = quiver(t, chunkEnv, args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NotContains(t, r.stdout, `"run_id":""`)
	require.Equal(t, 10, strings.Count(r.stdout, "done in an earlier run of backfill"), r.stdout)
}

// checksum is the SHA-256 of rendered rows, sorted.
func checksum(rows []string) string {
	h := sha256.New()
	for _, r := range rows {
		h.Write([]byte(r))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// testDatasetThroughStagedTable: dataset create --engine trino has Trino write the
// point-in-time join with CREATE TABLE AS and reads the table's files: on randomized data
// (plain views of every type, aggregations, with and without --created-cutoff) it equals the
// in-process engine, the join's rows never pass through the coordinator (every statement
// that runs the join is the CREATE TABLE AS, or reads no rows), and the staging table is
// dropped.
func testDatasetThroughStagedTable(t *testing.T, tr *testenv.TrinoServer, pg *testenv.Postgres) {
	l := newRTLake(t, tr, pg)
	const users = 30
	rows := rtSourceRows(3, 600, users)
	defer rows.Release()
	dir, env := l.project(t, "pit", strings.Replace(rtLakeDefs, "FEATURES\n", rtFeatureYAML, 1))
	env["QUIVER_TRINO_STAGE_PARTITION_ROWS"] = "97" // ten partitions, read two at a time
	rtWriteParquet(t, filepath.Join(dir, "data", "events.parquet"), rows)
	require.Equal(t, exitOK, quiver(t, env, "-C", dir, "apply").code)
	r := quiver(t, env, "-C", dir, "materialize", "--start", "2024-02-01T00:00:00Z", "--end", "2024-04-01T00:00:00Z")
	require.Equal(t, exitOK, r.code, r.stderr)
	ents := rtEntities(t, rows, 900)
	defer ents.Release()
	entFile, entSQL := l.entityInputs(t, ents, dir)
	for i, cutoff := range []bool{false, true} {
		args := []string{"--service", "svc"}
		if cutoff {
			args = append(args, "--created-cutoff")
		}
		local := rtDataset(t, rtCreateDataset(t, env, dir, append([]string{"local" + strconv.Itoa(i), "--entities", entFile}, args...)...))
		// An upper-case name: Trino folds the staging table's name to lower case.
		stagedDir := rtCreateDataset(t, env, dir, append([]string{"Staged" + strconv.Itoa(i), "--engine", "trino", "--entities-sql", entSQL}, args...)...)
		staged := rtDataset(t, stagedDir)
		requireEntityOrder(t, stagedDir)
		require.Equal(t, local[0], staged[0], "columns")
		require.Len(t, staged, len(local))
		rtRequireSameCells(t, local[0], local[1:], staged[1:], fmt.Sprintf("created cutoff %v", cutoff))
	}
	// Every statement of this lake's catalog that joined the entity rows either wrote the
	// staging table or read no rows.
	joins := l.trinoRows(t, fmt.Sprintf(`SELECT query FROM system.runtime.queries WHERE query LIKE '%%quiver_entities%%' AND query LIKE '%%%s.default.ents%%' AND query NOT LIKE '%%system.runtime.queries%%'`, l.mem))
	require.NotEmpty(t, joins)
	ctas := 0
	for _, q := range joins {
		switch {
		case strings.HasPrefix(q, "CREATE TABLE"):
			require.Contains(t, q, "truncate(quiver_row, 97)")
			ctas++
		case strings.Contains(q, "LIMIT 0"):
		default:
			t.Fatalf("a join's rows went through the coordinator: %s", q)
		}
	}
	require.Equal(t, 2, ctas)
	stageSchema := materialize.StageSchema(iceberg.ProjectNamespace("pit"))
	require.Empty(t, l.trinoRows(t, fmt.Sprintf("SELECT table_name FROM %s.information_schema.tables WHERE table_schema = '%s'", l.ice, stageSchema)),
		"the staging tables are dropped")
	r = quiver(t, env, "-C", dir, "dataset", "verify", "Staged1")
	require.Equal(t, exitOK, r.code, r.stderr)
}

// testKilledDatasetBuildsStagingIsDropped: a dataset create --engine trino killed -9 after
// Trino staged its join leaves its staging table (its deferred drop never ran). A build that
// runs while the first is still alive keeps it; the next build after the kill drops it, and
// leaves the staging schema empty.
func testKilledDatasetBuildsStagingIsDropped(t *testing.T, tr *testenv.TrinoServer, pg *testenv.Postgres) {
	l := newRTLake(t, tr, pg)
	rows := rtSourceRows(4, 300, 20)
	defer rows.Release()
	dir, env := l.project(t, "sweep", strings.Replace(rtLakeDefs, "FEATURES\n", rtFeatureYAML, 1))
	rtWriteParquet(t, filepath.Join(dir, "data", "events.parquet"), rows)
	require.Equal(t, exitOK, quiver(t, env, "-C", dir, "apply").code)
	r := quiver(t, env, "-C", dir, "materialize", "--start", "2024-02-01T00:00:00Z", "--end", "2024-04-01T00:00:00Z")
	require.Equal(t, exitOK, r.code, r.stderr)
	ents := rtEntities(t, rows, 200)
	defer ents.Release()
	_, entSQL := l.entityInputs(t, ents, dir)
	stageSchema := materialize.StageSchema(iceberg.ProjectNamespace("sweep"))
	staged := func() []string {
		return l.trinoRows(t, fmt.Sprintf("SELECT table_name FROM %s.information_schema.tables WHERE table_schema = '%s' ORDER BY 1", l.ice, stageSchema))
	}

	penv := map[string]string{"QUIVER_DEBUG_PAUSE_AT": "dataset-staged"}
	for k, v := range env {
		penv[k] = v
	}
	cmd, out := quiverProcess(t, penv, "-C", dir, "dataset", "create", "killed", "--service", "svc", "--engine", "trino", "--entities-sql", entSQL)
	waitFor(t, "the build to pause after staging", 3*time.Minute, func() bool { return strings.Contains(out.String(), "paused at dataset-staged") })
	left := staged()
	require.Len(t, left, 1, "the paused build's staging table")
	require.True(t, strings.HasPrefix(left[0], "d") && strings.HasSuffix(left[0], "_killed"), left[0])

	rtCreateDataset(t, env, dir, "alive", "--service", "svc", "--engine", "trino", "--entities-sql", entSQL)
	require.Equal(t, left, staged(), "a build in flight keeps its staging table")

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.Equal(t, left, staged(), "kill -9 leaves the staging table")
	rtCreateDataset(t, env, dir, "after", "--service", "svc", "--engine", "trino", "--entities-sql", entSQL)
	require.Empty(t, staged(), "the next build drops the killed build's staging table")
	r = quiver(t, env, "-C", dir, "dataset", "verify", "after")
	require.Equal(t, exitOK, r.code, r.stderr)
}

// requireEntityOrder checks that a dataset built from entity SQL has its rows in the order
// the Trino engine numbers them: by (user_id, event_timestamp, label).
func requireEntityOrder(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	require.NoError(t, err)
	sort.Strings(files)
	type key struct{ user, ts, label int64 }
	var prev *key
	n := 0
	for _, p := range files {
		rf, err := file.OpenParquetFile(p, false)
		require.NoError(t, err)
		fr, err := pqarrow.NewFileReader(rf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		require.NoError(t, err)
		tbl, err := fr.ReadTable(context.Background())
		require.NoError(t, err)
		rdr := array.NewTableReader(tbl, 0)
		for rdr.Next() {
			rec := rdr.RecordBatch()
			u, ts, l := rec.Column(0).(*array.Int64), rec.Column(1).(*array.Timestamp), rec.Column(2).(*array.Int64)
			for i := range int(rec.NumRows()) {
				k := key{u.Value(i), int64(ts.Value(i)), l.Value(i)}
				if prev != nil {
					require.True(t, prev.user < k.user || (prev.user == k.user && (prev.ts < k.ts || (prev.ts == k.ts && prev.label < k.label))),
						"row %d of %s is out of order: %v after %v", n, p, k, *prev)
				}
				prev = &k
				n++
			}
		}
		rdr.Release()
		tbl.Release()
		require.NoError(t, rf.Close())
	}
	require.Positive(t, n)
}

// testPinsSurviveTrinoExpiry: the offline snapshots registered datasets pin carry Iceberg tags
// (quiver-pin-<id>), so Trino's expire_snapshots with zero retention keeps them — and takes
// an unpinned one —, every dataset version still verifies and its snapshots still read; after
// a dataset version is removed, quiver gc untags and expires its snapshot.
func testPinsSurviveTrinoExpiry(t *testing.T, tr *testenv.TrinoServer, pg *testenv.Postgres) {
	l := &rtLake{tr: tr, dbURL: pg.NewDatabase(t), wh: t.TempDir(), started: time.Now()}
	cat, err := iceberg.OpenCatalog(context.Background(), iceberg.CatalogConfig{URI: l.dbURL, Warehouse: l.wh})
	require.NoError(t, err)
	require.NoError(t, cat.Close())
	ice, err := testenv.IcebergJDBCCatalog("ice", l.dbURL, l.wh)
	require.NoError(t, err)
	ice.Properties["iceberg.expire-snapshots.min-retention"] = "0s" // allow a zero retention
	l.ice = tr.AddCatalog(t, ice)
	l.db = tr.DB(t, l.ice, "")

	rows := rtSourceRows(9, 300, 20)
	defer rows.Release()
	dir, env := l.project(t, "pins", strings.Replace(rtLakeDefs, "FEATURES\n", rtFeatureYAML, 1))
	rtWriteParquet(t, filepath.Join(dir, "data", "events.parquet"), rows)
	require.Equal(t, exitOK, quiver(t, env, "-C", dir, "apply").code)
	ents := rtEntities(t, rows, 100)
	defer ents.Release()
	entFile := filepath.Join(dir, "ents.parquet")
	rtWriteParquet(t, entFile, ents)
	ns := iceberg.ProjectNamespace("pins")
	snapshots := func(view string) []string {
		return l.trinoRows(t, fmt.Sprintf(`SELECT CAST(snapshot_id AS VARCHAR) FROM %s.%s."%s$snapshots" ORDER BY committed_at`, l.ice, ns, view))
	}
	run := func(start, end string) {
		r := quiver(t, env, "-C", dir, "materialize", "--start", start, "--end", end)
		require.Equal(t, exitOK, r.code, r.stderr)
	}
	const first, mid, last = "2024-02-01T00:00:00Z", "2024-03-06T00:00:00Z", "2024-04-01T00:00:00Z"
	run(first, mid)
	rtCreateDataset(t, env, dir, "d1", "--service", "svc", "--entities", entFile)
	run(first, last)
	rtCreateDataset(t, env, dir, "d2", "--service", "svc", "--entities", entFile)
	run(first, last) // unpinned, then superseded: expiry takes it
	run(first, last) // current
	// The snapshots each dataset pins, from its lineage.
	pinnedBy := func(ds, view string) string {
		r := quiver(t, env, "-C", dir, "-o", "json", "dataset", "show", ds)
		require.Equal(t, exitOK, r.code, r.stderr)
		var out struct {
			Lineage struct {
				FeatureViews []struct {
					Name              string `json:"name"`
					OfflineSnapshotID string `json:"offline_snapshot_id"`
				} `json:"feature_views"`
			} `json:"lineage"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
		for _, v := range out.Lineage.FeatureViews {
			if v.Name == view {
				return v.OfflineSnapshotID
			}
		}
		t.Fatalf("dataset %s does not pin view %s: %s", ds, view, r.stdout)
		return ""
	}
	for _, view := range []string{"prof", "txn"} {
		before := snapshots(view)
		require.Len(t, before, 4, view)
		pinned := []string{pinnedBy("d1", view), pinnedBy("d2", view)}
		sort.Strings(pinned)
		var tags []string
		for _, id := range pinned {
			tags = append(tags, "quiver-pin-"+id+"|TAG|"+id)
		}
		require.Equal(t, tags, l.trinoRows(t, fmt.Sprintf(`SELECT name, upper(type), CAST(snapshot_id AS VARCHAR) FROM %s.%s."%s$refs" WHERE name LIKE 'quiver-pin-%%'`, l.ice, ns, view)), view)
		main := l.trinoRows(t, fmt.Sprintf(`SELECT CAST(snapshot_id AS VARCHAR) FROM %s.%s."%s$refs" WHERE name = 'main'`, l.ice, ns, view))
		require.Len(t, main, 1)
		l.exec(t, fmt.Sprintf(`ALTER TABLE %s.%s.%s EXECUTE expire_snapshots(retention_threshold => '0s')`, l.ice, ns, view))
		after := snapshots(view)
		want := map[string]bool{main[0]: true}
		for _, id := range pinned {
			want[id] = true
		}
		got := map[string]bool{}
		for _, id := range after {
			got[id] = true
		}
		require.Equal(t, want, got, "%s: the pinned and the current snapshots stay, the others go (before: %v)", view, before)
		require.Less(t, len(after), len(before), "%s: expiry took the unpinned snapshots", view)
		for _, id := range pinned {
			require.NotEmpty(t, l.trinoRows(t, fmt.Sprintf(`SELECT count(*) FROM %s.%s.%s FOR VERSION AS OF %s`, l.ice, ns, view, id)))
		}
	}
	for _, ds := range []string{"d1", "d2"} {
		r := quiver(t, env, "-C", dir, "dataset", "verify", ds)
		require.Equal(t, exitOK, r.code, "%s: %s", ds, r.stderr)
	}
	// d1 removed: gc untags its snapshots and expires them.
	d1 := pinnedBy("d1", "prof")
	r := quiver(t, env, "-C", dir, "dataset", "rm", "d1@v1")
	require.Equal(t, exitOK, r.code, r.stderr)
	time.Sleep(10 * time.Millisecond)
	r = quiver(t, env, "-C", dir, "gc", "--older-than", "1ms")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NotContains(t, snapshots("prof"), d1)
	require.Len(t, l.trinoRows(t, fmt.Sprintf(`SELECT name FROM %s.%s."prof$refs" WHERE name LIKE 'quiver-pin-%%'`, l.ice, ns)), 1)
	r = quiver(t, env, "-C", dir, "dataset", "verify", "d2")
	require.Equal(t, exitOK, r.code, r.stderr)
}

// TestTrinoKilledMidRun: Trino killed -9 while it stages a run's interval: the run fails
// (exit 4) naming Trino and the table is unchanged. Killed again after it staged: Quiver
// reads the staged files and commits without Trino, so the run succeeds, and warns that the
// staging table could not be dropped (before, the failed drop failed the run after its
// commit, a minute later). Once a new Trino server is up on the same catalog, a re-run
// drops the staging table left and leaves the table equal to the in-process engine's, row
// for row.
func TestTrinoKilledMidRun(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	tr := testenv.StartTrinoServer(t, testenv.TrinoOptions{})
	pg := testenv.StartPostgres(t)
	l := newRTLake(t, tr, pg)
	ctx := context.Background()
	// The source, an Iceberg table of the shared catalog (it outlives the server): 600,000
	// rows over 30,000 users, 16.7 hours from 2024-01-01.
	writeStatsSource(t, l.db, "src", 600_000)
	defs := statsDefs("src")
	refDir, refEnv := l.project(t, "ref", defs)
	dir, env := l.project(t, "tk", defs)
	args := []string{"materialize", "--start", "2024-01-01", "--end", "2024-01-02"}
	for _, p := range []struct {
		dir string
		env map[string]string
	}{{refDir, refEnv}, {dir, env}} {
		r := quiver(t, p.env, "-C", p.dir, "apply")
		require.Equal(t, exitOK, r.code, r.stderr)
	}
	r := quiver(t, refEnv, append([]string{"-C", refDir}, args...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	want := l.scan(t, "ref", "stats", 1)
	require.Len(t, want, 600_000)

	const lease = 2 * time.Second
	env["QUIVER_RUN_LEASE"] = lease.String()
	stageSchema := materialize.StageSchema(iceberg.ProjectNamespace("tk"))
	// restart starts a new Trino server on the same catalog and points the project at it.
	restart := func() *testenv.TrinoServer {
		ice, err := testenv.IcebergJDBCCatalog("ice", l.dbURL, l.wh)
		require.NoError(t, err)
		tr := testenv.StartTrinoServer(t, testenv.TrinoOptions{})
		name := tr.AddCatalog(t, ice)
		env["QUIVER_TRINO_DSN"] = tr.DSN(name, iceberg.ProjectNamespace("tk"))
		l.tr, l.ice, l.db = tr, name, tr.DB(t, name, "")
		return tr
	}
	stages := func() []string {
		return l.trinoRows(t, fmt.Sprintf("SELECT table_name FROM %s.information_schema.tables WHERE table_schema = '%s' ORDER BY 1", l.ice, stageSchema))
	}

	// The first six hours through Trino, so the table exists with rows a killed run must
	// leave as they are.
	r = quiver(t, env, "-C", dir, "materialize", "--engine", "trino", "--start", "2024-01-01T00:00:00Z", "--end", "2024-01-01T06:00:00Z")
	require.Equal(t, exitOK, r.code, r.stderr)
	part := l.scan(t, "tk", "stats", 1)
	var wantPart []string // the in-process table's rows of the first six hours
	for _, row := range want {
		if strings.Split(row, "|")[1] < "2024-01-01T06" {
			wantPart = append(wantPart, row)
		}
	}
	require.NotEmpty(t, wantPart)
	require.Equal(t, wantPart, part, "the first six hours through Trino")
	whole := append([]string{"-C", dir, "-o", "json", "materialize", "--engine", "trino"}, args[1:]...)

	// 1. Killed while it runs the staging statement: the run fails naming Trino; the table is
	// unchanged.
	cmd, out := quiverProcess(t, env, whole...)
	waitFor(t, "the staging statement to run", 3*time.Minute, func() bool {
		var n int
		err := l.db.QueryRowContext(ctx, "SELECT count(*) FROM system.runtime.queries WHERE state = 'RUNNING' AND query LIKE 'EXECUTE%'").Scan(&n)
		return err == nil && n > 0
	})
	tr.Kill()
	err := cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "quiver fails when Trino dies under its staging statement: %s", out.String())
	require.Equal(t, exitFailed, exit.ExitCode(), out.String())
	require.Contains(t, out.String(), "trino", "the error names Trino")
	require.Equal(t, part, l.scan(t, "tk", "stats", 1), "Trino killed while staging: the table is unchanged")

	// 2. Killed once the interval is staged, before Quiver reads the staged files: reading
	// and the commit need no Trino, so the run succeeds; dropping the staging table does, so
	// it is left, with a warning, for the next run.
	tr = restart()
	time.Sleep(lease + lease/2) // the failed run is over; its staging table (if any) is swept
	penv := map[string]string{"QUIVER_DEBUG_PAUSE_AT": "staged", "QUIVER_DEBUG_PAUSE_FOR": "3s"}
	for k, v := range env {
		penv[k] = v
	}
	cmd, out = quiverProcess(t, penv, whole...)
	waitFor(t, "the run to stage its interval", 3*time.Minute, func() bool { return strings.Contains(out.String(), "paused at staged") })
	require.Len(t, stages(), 1, "the staged interval")
	tr.Kill()
	require.NoError(t, cmd.Wait(), "the commit needs no Trino: %s", out.String())
	require.Contains(t, out.String(), "the staging table could not be dropped")
	require.Equal(t, want, l.scan(t, "tk", "stats", 1), "Trino killed after staging: the run committed the whole interval")

	// A new server on the same catalog: the re-run drops what the dead runs left and leaves
	// the table exact.
	restart()
	require.Len(t, stages(), 1, "the staging table the run could not drop")
	r = quiver(t, env, whole...)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, want, l.scan(t, "tk", "stats", 1), "after the re-run the table equals the in-process engine's")
	require.Empty(t, stages(), "no staging table is left")
}
