package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go/table"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

// TestStartTrinoServer starts the real Trino with an Iceberg JDBC catalog on PostgreSQL (the
// warehouse on local disk) and a memory source catalog; Trino writes an Iceberg table from the
// source and reads it back, and Quiver's own Iceberg SQL catalog on the same database lists,
// loads and scans that table: the two share one catalog.
func TestStartTrinoServer(t *testing.T) {
	require.Equal(t, iceberg.DefaultCatalogName, QuiverCatalogName)
	ctx := context.Background()
	pg := StartPostgres(t)
	dbURL := pg.NewDatabase(t)
	warehouse := t.TempDir()

	// Quiver opens its catalog first: iceberg-go creates the catalog tables Trino's JDBC catalog
	// expects to exist.
	qcat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: dbURL, Warehouse: warehouse})
	require.NoError(t, err)
	defer qcat.Close()

	ice, err := IcebergJDBCCatalog("iceberg", dbURL, warehouse)
	require.NoError(t, err)
	tr := StartTrinoServer(t, TrinoOptions{Catalogs: []TrinoCatalog{ice, MemoryCatalog("source")}})
	db := tr.DB(t, "iceberg", "smoke")

	var version string
	require.NoError(t, db.QueryRowContext(ctx, "SELECT node_version FROM system.runtime.nodes").Scan(&version))
	require.Equal(t, "483", version)

	for _, stmt := range []string{
		"CREATE TABLE source.default.events AS SELECT * FROM (VALUES (1, 'a', DOUBLE '1.5'), (2, 'b', NULL), (3, 'c', DOUBLE '-2.0')) AS v(user_id, name, score)",
		"CREATE SCHEMA iceberg.smoke",
		"CREATE TABLE iceberg.smoke.events AS SELECT CAST(user_id AS bigint) AS user_id, name, score FROM source.default.events",
	} {
		_, err := db.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	require.Equal(t, []string{"1 a 1.5", "2 b <nil>", "3 c -2"}, trinoRows(t, db, "SELECT user_id, name, score FROM iceberg.smoke.events ORDER BY user_id"))

	// The catalog row is Quiver's: catalog_name "quiver", a metadata file in the warehouse.
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var catalogName, location string
	require.NoError(t, conn.QueryRow(ctx, "SELECT catalog_name, metadata_location FROM iceberg_tables WHERE table_namespace = 'smoke' AND table_name = 'events'").Scan(&catalogName, &location))
	require.Equal(t, QuiverCatalogName, catalogName)
	require.True(t, strings.HasPrefix(location, "file://"+warehouse+"/"), location)

	// Quiver's iceberg-go catalog sees the table Trino made, and reads its rows.
	var names []string
	for id, err := range qcat.Iceberg().ListTables(ctx, table.Identifier{"smoke"}) {
		require.NoError(t, err)
		names = append(names, strings.Join(id, "."))
	}
	require.Equal(t, []string{"smoke.events"}, names)
	tbl, err := qcat.Iceberg().LoadTable(ctx, table.Identifier{"smoke", "events"})
	require.NoError(t, err)
	at, err := tbl.Scan().ToArrowTable(ctx)
	require.NoError(t, err)
	defer at.Release()
	require.EqualValues(t, 3, at.NumRows())
	ids := map[int64]bool{}
	rdr := array.NewTableReader(at, 0)
	defer rdr.Release()
	for rdr.Next() {
		col := rdr.RecordBatch().Column(0).(*array.Int64)
		for i := range col.Len() {
			ids[col.Value(i)] = true
		}
	}
	require.Equal(t, map[int64]bool{1: true, 2: true, 3: true}, ids)
}

// TestTrinoIcebergOnS3 gives the shared Trino (AddCatalog, a dynamic catalog) an Iceberg JDBC
// catalog whose warehouse is a bucket on the real S3 server (S3Proxy), read and written through
// Trino's native S3 file system, and Quiver's iceberg-go catalog the same warehouse: Trino's
// INSERT (a data file over the 5 MB part size: a multipart upload), DELETE (a position-delete
// file) and DROP TABLE show up as objects in the bucket; iceberg-go reads what Trino wrote,
// deletes applied, and Trino reads what Quiver's offline store wrote there.
func TestTrinoIcebergOnS3(t *testing.T) {
	ctx := context.Background()
	pg := StartPostgres(t)
	dbURL := pg.NewDatabase(t)
	store := StartS3(t)
	bucket := store.NewBucket(t)

	qcat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: dbURL, Warehouse: "s3://" + bucket + "/warehouse", Props: store.IcebergProperties()})
	require.NoError(t, err)
	defer qcat.Close()

	tr := SharedTrinoServer(t)
	ice, err := IcebergJDBCCatalog("lake", dbURL, "s3://"+bucket+"/warehouse")
	require.NoError(t, err)
	for k, v := range store.TrinoProperties() {
		ice.Properties[k] = v
	}
	name := tr.AddCatalog(t, ice)
	db := tr.DB(t, name, "s3smoke")
	for _, stmt := range []string{
		"CREATE SCHEMA " + name + ".s3smoke",
		"CREATE TABLE " + name + ".s3smoke.t (id bigint, v varchar)",
		"INSERT INTO " + name + ".s3smoke.t VALUES (1, 'x'), (2, 'y')",
		"DELETE FROM " + name + ".s3smoke.t WHERE id = 1",
	} {
		_, err := db.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	require.Equal(t, []string{"2 y"}, trinoRows(t, db, "SELECT id, v FROM "+name+".s3smoke.t"))

	keys := s3Keys(t, store, bucket)
	var metadata, data int
	for k := range keys {
		require.True(t, strings.HasPrefix(k, "warehouse/s3smoke/t-"), k)
		switch {
		case strings.HasSuffix(k, ".metadata.json"):
			metadata++
		case strings.HasSuffix(k, ".parquet"):
			data++
		}
	}
	require.GreaterOrEqual(t, metadata, 3, keys) // create, insert, delete
	require.GreaterOrEqual(t, data, 2, keys)     // the data file and the position-delete file

	// 100,000 rows of random hex: a data file over the 5 MB part size Trino streams in.
	_, err = db.ExecContext(ctx, "INSERT INTO "+name+".s3smoke.t SELECT i * 1000 + j, to_hex(sha512(to_utf8(CAST(i * 1000 + j AS varchar)))) "+
		"FROM UNNEST(sequence(1, 400)) AS a(i) CROSS JOIN UNNEST(sequence(1, 250)) AS b(j)")
	require.NoError(t, err)
	var largest int64
	for _, size := range s3Keys(t, store, bucket) {
		largest = max(largest, size)
	}
	require.Greater(t, largest, int64(5<<20), "a data file went up in parts")

	// iceberg-go reads the table from the bucket, Trino's position delete applied.
	tbl, err := qcat.Iceberg().LoadTable(ctx, table.Identifier{"s3smoke", "t"})
	require.NoError(t, err)
	at, err := tbl.Scan(table.WithSelectedFields("id")).ToArrowTable(ctx)
	require.NoError(t, err)
	ids := map[int64]bool{}
	rdr := array.NewTableReader(at, 0)
	for rdr.Next() {
		col := rdr.RecordBatch().Column(0).(*array.Int64)
		for i := range col.Len() {
			ids[col.Value(i)] = true
		}
	}
	rdr.Release()
	at.Release()
	require.Len(t, ids, 100_001)
	require.False(t, ids[1], "the deleted row")

	// Quiver's offline store writes a view table into the bucket; Trino reads it.
	off, err := iceberg.NewStore(ctx, qcat, iceberg.StoreOptions{Namespace: "s3smoke"})
	require.NoError(t, err)
	rows := sourcetest.Rows()
	batch := sourcetest.SourceBatch(memory.DefaultAllocator, rows)
	defer batch.Release()
	m, err := offline.NewMapper("test", batch.Schema(), sourcetest.View(), sourcetest.Fields(), offline.Range{Start: sourcetest.Base, End: sourcetest.Base.AddDate(0, 0, 10)}, memory.DefaultAllocator)
	require.NoError(t, err)
	canon, err := m.Map(ctx, batch)
	require.NoError(t, err)
	res, err := off.WriteInterval(ctx, sourcetest.View(), offline.Range{Start: sourcetest.Base, End: sourcetest.Base.AddDate(0, 0, 10)},
		offline.NewSliceStream(canon.Schema(), canon), "run-s3")
	require.NoError(t, err)
	require.Equal(t, []string{strconv.FormatInt(res.RowsWritten, 10)}, trinoRows(t, db, "SELECT count(*) FROM "+name+".s3smoke.user_stats"))
	require.Equal(t, []string{"5 <nil> 0.5"}, trinoRows(t, db, "SELECT user_id, name, spend FROM "+name+".s3smoke.user_stats WHERE user_id = 5"))

	for _, tab := range []string{"t", "user_stats"} {
		_, err = db.ExecContext(ctx, "DROP TABLE "+name+".s3smoke."+tab)
		require.NoError(t, err)
	}
	require.Empty(t, s3Keys(t, store, bucket), "DROP TABLE removes the tables' files")
}

// s3Keys lists the bucket's objects and their sizes.
func s3Keys(t *testing.T, store *S3, bucket string) map[string]int64 {
	t.Helper()
	keys := map[string]int64{}
	pages := s3.NewListObjectsV2Paginator(store.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		require.NoError(t, err)
		for _, o := range page.Contents {
			keys[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	return keys
}

// trinoRows runs query and renders each row as its values joined by spaces.
func trinoRows(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), query)
	require.NoError(t, err, query)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmtValue(v)
		}
		out = append(out, strings.Join(parts, " "))
	}
	require.NoError(t, rows.Err())
	return out
}

func fmtValue(v any) string {
	if v == nil {
		return "<nil>"
	}
	return fmt.Sprint(v)
}

// TestStartTrinoServerFailsWithReason: a server whose catalog cannot load fails the start with
// the reason from its log, here a catalog property the connector does not know.
func TestStartTrinoServerFailsWithReason(t *testing.T) {
	bad := TrinoCatalog{Name: "bad", Properties: map[string]string{"connector.name": "memory", "memory.no-such-property": "1"}}
	_, err := startTrinoServer(t.TempDir(), TrinoOptions{Catalogs: []TrinoCatalog{bad}}, false)
	require.Error(t, err)
	require.Contains(t, err.Error(), "memory.no-such-property")
	require.Contains(t, err.Error(), "trino catalog bad did not load")

	_, err = startTrinoServer(t.TempDir(), TrinoOptions{Catalogs: []TrinoCatalog{{Name: "x", Properties: map[string]string{}}}}, false)
	require.ErrorContains(t, err, "trino catalog x: no connector.name property")
	_, err = IcebergJDBCCatalog("x", "mysql://h/db", "/wh")
	require.ErrorContains(t, err, "want a postgres://user@host:port/db URL")
}

// TestInstalledNamesTheVariable: an install path set in the environment that does not exist is
// an error naming the variable.
func TestInstalledNamesTheVariable(t *testing.T) {
	t.Setenv(trinoHomeEnv, "/nonexistent/trino")
	_, err := installed(trinoHomeEnv, trinoScript)
	require.ErrorContains(t, err, trinoHomeEnv+"=/nonexistent/trino")
}
