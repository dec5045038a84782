package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/utils"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
)

// TestRealS3Warehouse is issue 30 item 6: make demo's loop with the warehouse on the real S3
// server (S3Proxy 4.1.0, internal/testenv) at s3://BUCKET/warehouse, the registry and the
// Iceberg catalog on PostgreSQL, reached through the standard AWS environment
// (AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY): the offline
// tables' files are in the bucket and nowhere on local disk; dataset create puts the snapshot
// in the bucket too, and verify, export and train (whose trainer reads the dataset) work, also
// from the bucket's copy alone; the run's artifact is copied to the bucket; Trino 483 reads the same tables through its
// native S3 file system; quiver gc removes the files of expired snapshots from the bucket and
// nothing a live snapshot needs.
func TestRealS3Warehouse(t *testing.T) {
	srv := testenv.SharedS3(t)
	tr := testenv.SharedTrinoServer(t)
	pg := testenv.StartPostgres(t)
	// Every S3 client of this test binary has its HTTP transport, closed at the end, so no
	// keep-alive connection to the run's shared S3 server outlives the test (goleak); the CLI
	// runs as child processes.
	tr3 := &http.Transport{}
	t.Cleanup(func() {
		tr3.CloseIdleConnections()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections() // the Trino client's
	})
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.Endpoint), Region: srv.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		HTTPClient:  &http.Client{Transport: tr3},
	})
	ctx := utils.WithAwsConfig(context.Background(), &aws.Config{
		Region:      srv.Region,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		HTTPClient:  &http.Client{Transport: tr3},
	})
	bucket := srv.NewBucket(t)
	wh := "s3://" + bucket + "/warehouse"
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.Endpoint)
	t.Setenv("AWS_REGION", srv.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dbURL := pg.NewDatabase(t)
	env := map[string]string{"QUIVER_REGISTRY": dbURL, "QUIVER_WAREHOUSE": wh}

	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "train.sh"), []byte(`#!/bin/sh
test -f "$QUIVER_DATASET_DIR/manifest.json" || exit 9
ls "$QUIVER_DATASET_DIR"/*.parquet >/dev/null || exit 9
echo '{"key":"loss","value":0.5,"step":1}' >> "$QUIVER_METRICS_FILE"
echo fake-onnx > "$QUIVER_OUTPUT_DIR/model.onnx"
`), 0o755))
	jobs := filepath.Join(dir, "features", "churn.yaml")
	b, err := os.ReadFile(jobs)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(jobs, []byte(strings.ReplaceAll(string(b), `command: ["shop-trainer"]`, `command: ["./train.sh"]`)), 0o644))
	run := func(args ...string) result {
		t.Helper()
		r := quiverChild(t, env, append([]string{"-C", dir}, args...)...)
		require.Equal(t, exitOK, r.code, "quiver %v: %s", args, r.stderr)
		return r
	}
	run("apply")
	now := time.Now().UTC()
	start, end := now.Add(-40*24*time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)
	// Two runs over the same interval: the second replaces the first's rows, whose files then
	// belong to an older snapshot only.
	run("materialize", "--start", start, "--end", end)
	run("materialize", "--start", start, "--end", end)

	keys := bucketKeys(t, client, bucket)
	ns := iceberg.ProjectNamespace("shop")
	table := "warehouse/" + ns + ".db/user_stats/" // iceberg-go's layout: NAMESPACE.db/TABLE
	kinds := map[string]int{}
	for k := range keys {
		if strings.HasPrefix(k, table) {
			kinds[fileKindOf(k)]++
		}
	}
	t.Logf("bucket after two materializations: %d objects, user_stats: %v", len(keys), kinds)
	require.GreaterOrEqual(t, kinds["data"], 2, "each run's Parquet files are in the bucket")
	require.GreaterOrEqual(t, kinds["metadata"], 2)
	require.GreaterOrEqual(t, kinds["manifest-list"], 2)
	require.NoDirExists(t, filepath.Join(dir, ".quiver", "warehouse"), "nothing of the offline store on local disk")
	require.NoDirExists(t, filepath.Join(dir, "s3:"))

	// The offline table, read by Quiver through S3, and by Trino through its S3 file system.
	ice, err := testenv.IcebergJDBCCatalog("ice", dbURL, wh)
	require.NoError(t, err)
	for k, v := range srv.TrinoProperties() {
		ice.Properties[k] = v
	}
	lake := &rtLake{tr: tr, dbURL: dbURL, wh: wh, ice: tr.AddCatalog(t, ice)}
	quiverRows := func() []string {
		cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: dbURL, Warehouse: wh, Props: iceberg.S3Props(os.Getenv)})
		require.NoError(t, err)
		defer cat.Close()
		store, err := iceberg.NewStore(ctx, cat, iceberg.StoreOptions{Namespace: ns})
		require.NoError(t, err)
		st, err := store.Scan(ctx, "user_stats", offline.ScanRequest{})
		require.NoError(t, err)
		tbl, err := offline.ReadAll(ctx, st)
		require.NoError(t, err)
		defer tbl.Release()
		return rtTableRows(tbl)
	}
	before := quiverRows()
	require.NotEmpty(t, before)
	require.Equal(t, before, lake.trinoRows(t, `SELECT * FROM "`+ns+`".user_stats`), "Trino reads the table Quiver wrote to S3")

	// Datasets, training, export.
	run("dataset", "create", "churn_train", "--service", "churn_v1", "--entities", filepath.Join(dir, "data", "labels.parquet"))
	run("dataset", "verify", "churn_train@v1")
	export := filepath.Join(t.TempDir(), "churn")
	run("dataset", "export", "churn_train@v1", "--to", export, "--format", "csv")
	parts, err := filepath.Glob(filepath.Join(export, "*.csv"))
	require.NoError(t, err)
	require.NotEmpty(t, parts)
	lines := 0
	for _, p := range parts {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		lines += strings.Count(string(b), "\n")
	}
	require.Greater(t, lines, 100, "the exported dataset has its rows")
	r := run("train", "churn_train")
	require.Contains(t, r.stderr, "Dataset cache hit: reusing churn_train@v1", "training reads the dataset built before")
	require.Contains(t, r.stdout, "Registered model churn v1")
	// The run's artifact (the model, the job's log) is in the bucket as well.
	models, err := filepath.Glob(filepath.Join(dir, ".quiver", "files", "projects", "shop", "artifacts", "sha256-*", "model.onnx"))
	require.NoError(t, err)
	require.Len(t, models, 1)
	art := "warehouse/projects/shop/artifacts/" + filepath.Base(filepath.Dir(models[0])) + "/"
	keys = bucketKeys(t, client, bucket)
	require.True(t, keys[art+"model.onnx"], "the model is in the bucket at %s", art)
	require.True(t, keys[art+"quiver-job.log"], "the job's log is in the bucket at %s", art)
	// The snapshot is in the bucket, under the warehouse's layout, as well as in the local
	// files directory it was built in.
	manifests, err := filepath.Glob(filepath.Join(dir, ".quiver", "files", "projects", "shop", "datasets", "sha256-*", "manifest.json"))
	require.NoError(t, err)
	require.Len(t, manifests, 1, "the dataset snapshot is built in the repo's .quiver/files")
	local := filepath.Dir(manifests[0])
	remote := "warehouse/projects/shop/datasets/" + filepath.Base(local) + "/"
	keys = bucketKeys(t, client, bucket)
	entries, err := os.ReadDir(local)
	require.NoError(t, err)
	for _, e := range entries {
		require.True(t, keys[remote+e.Name()], "dataset file %s is in the bucket at %s", e.Name(), remote)
	}
	// A host without the local copy (here: the copy removed) reads the snapshot from the
	// bucket: verify re-hashes what it pulled, and the trainer reads it.
	require.NoError(t, os.RemoveAll(local))
	run("dataset", "verify", "churn_train@v1")
	require.FileExists(t, manifests[0])
	require.NoError(t, os.RemoveAll(local))
	r = run("train", "churn_train", "--dataset", "churn_train@v1")
	require.Contains(t, r.stdout, "Registered model churn v2")
	// A second snapshot, removed: gc takes its copy out of the bucket, not the live one's.
	run("dataset", "create", "checkout_train", "--service", "checkout_v1", "--entities", filepath.Join(dir, "data", "checkouts.parquet"))
	keys = bucketKeys(t, client, bucket)
	require.Len(t, datasetFolders(keys), 2, "two snapshots in the bucket")
	run("dataset", "rm", "checkout_train@v1")

	// A file no snapshot references yet, as a writer on another host leaves it until its
	// commit: gc with a minimum orphan age longer than its age leaves it (no lock reaches the
	// bucket; the minimum orphan age is its grace period), and removes no data or manifest
	// file of the table: only the superseded metadata files the table's metadata log names,
	// known to be committed.
	orphan := table + "data/event_ts_day=2026-01-01/in-flight-write.parquet"
	_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(orphan), Body: strings.NewReader("not yet committed")})
	require.NoError(t, err)
	r = run("-o", "json", "gc", "--older-than", "1h", "--min-orphan-age", "1h")
	var first gcOut
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &first), r.stdout)
	for _, c := range first.Collectors {
		for _, it := range c.Removed {
			if strings.HasPrefix(it.Path, "s3://"+bucket+"/"+table) {
				require.Equal(t, "metadata", it.Kind, "gc --older-than 1h removes no data or manifest file of the table: %s", it.Path)
			}
		}
	}
	require.True(t, bucketKeys(t, client, bucket)[orphan], "a young unreferenced file stays")
	keys[orphan] = true

	// gc: the first run's snapshot expires; its files leave the bucket, the live ones stay,
	// and so does the orphan with no minimum age.
	r = run("-o", "json", "gc", "--older-than", "0s", "--min-orphan-age", "0s")
	var gc gcOut
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &gc), r.stdout)
	removed, removedDatasets := map[string]bool{}, 0
	for _, c := range gc.Collectors {
		for _, it := range c.Removed {
			switch {
			case strings.HasPrefix(it.Path, "s3://"+bucket+"/warehouse/projects/shop/datasets/sha256-"):
				removedDatasets++
			case strings.HasPrefix(it.Path, "s3://"):
				removed[strings.TrimPrefix(it.Path, "s3://"+bucket+"/")] = true
			}
		}
	}
	require.Equal(t, 1, removedDatasets, "gc removes the removed snapshot's copy from the bucket")
	t.Logf("gc removed %d objects from the bucket", len(removed))
	require.NotEmpty(t, removed, "gc removes the expired snapshot's files from the bucket")
	after := bucketKeys(t, client, bucket)
	var removedKinds []string
	for k := range removed {
		require.True(t, keys[k], "gc removed %s, which was in the bucket", k)
		require.False(t, after[k], "%s is still in the bucket after gc removed it", k)
		removedKinds = append(removedKinds, fileKindOf(k))
	}
	require.Contains(t, removedKinds, "data", "the replaced rows' Parquet files are gone")
	require.True(t, removed[orphan], "gc --min-orphan-age 0s removes the unreferenced file")
	require.Equal(t, []string{filepath.Base(local)}, datasetFolders(after), "only the live snapshot's copy is left in the bucket")
	require.Equal(t, before, quiverRows(), "the table reads the same after gc")
	require.Equal(t, before, lake.trinoRows(t, `SELECT * FROM "`+ns+`".user_stats`), "and so does Trino")
	run("dataset", "verify", "churn_train@v1")
	again := run("-o", "json", "gc", "--older-than", "0s", "--min-orphan-age", "0s", "--dry-run")
	var gc2 gcOut
	require.NoError(t, json.Unmarshal([]byte(again.stdout), &gc2), again.stdout)
	for _, c := range gc2.Collectors {
		for _, it := range c.Removed {
			require.False(t, strings.HasPrefix(it.Path, "s3://") && fileKindOf(it.Path) != "metadata", "a second gc finds %s to remove", it.Path)
		}
	}
}

// bucketKeys lists every object key in bucket.
func bucketKeys(t *testing.T, client *s3.Client, bucket string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		require.NoError(t, err)
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = true
		}
	}
	return out
}

// fileKindOf names an Iceberg table file's kind by its name, as gc does.
func fileKindOf(key string) string {
	base := filepath.Base(key)
	switch {
	case strings.HasSuffix(base, ".metadata.json"):
		return "metadata"
	case strings.HasPrefix(base, "snap-") && strings.HasSuffix(base, ".avro"):
		return "manifest-list"
	case strings.HasSuffix(base, ".avro"):
		return "manifest"
	case strings.HasSuffix(base, ".parquet"):
		return "data"
	}
	return "other"
}

// datasetFolders lists the dataset content folders of project shop in the bucket.
func datasetFolders(keys map[string]bool) []string {
	const prefix = "warehouse/projects/shop/datasets/"
	seen := map[string]bool{}
	var out []string
	for k := range keys {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			if f, _, _ := strings.Cut(rest, "/"); !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// quiverChild runs one command line as a child process (this test binary as the CLI, see
// TestMain), with env added to a clean environment: what it opens (S3 clients, connection
// pools) ends with it.
func quiverChild(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUIVER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, cliEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("quiver %v: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errOut.String()}
}
