package training_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/trino"
	"github.com/quiverfs/quiver/training"
)

// TestCreateDatasetWithTrinoEngine builds the same dataset with the in-process engine and with
// the join pushed down to Trino (the Trino-protocol test server over PostgreSQL, holding a copy
// of the offline table as Trino's Iceberg catalog would expose it), and requires the same rows.
func TestCreateDatasetWithTrinoEngine(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	wh := filepath.Join(fx.dir, "warehouse")
	ents := filepath.Join(fx.dir, "entities.parquet")
	writeEntities(t, ents)

	pg := testenv.StartPostgres(t)
	db := pg.NewDatabase(t)
	conn, err := pgx.Connect(ctx, db)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `CREATE SCHEMA quiver;
		CREATE TABLE quiver.user_stats (user_id bigint, event_ts timestamptz, created_ts timestamptz, clicks bigint, score double precision);
		CREATE TABLE ents (label boolean, user_id bigint, event_timestamp timestamptz)`)
	require.NoError(t, err)
	// Mirror the offline table's rows, read back through iceberg-go.
	scan, err := fx.off.Scan(ctx, "user_stats", offline.ScanRequest{})
	require.NoError(t, err)
	for {
		rec, err := scan.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		for r := 0; r < int(rec.NumRows()); r++ {
			ts := func(c int) time.Time {
				return rec.Column(c).(*array.Timestamp).Value(r).ToTime(arrow.Microsecond).UTC()
			}
			_, err := conn.Exec(ctx, `INSERT INTO quiver.user_stats VALUES ($1, $2, $3, $4, $5)`,
				rec.Column(0).(*array.Int64).Value(r), ts(1), ts(2), rec.Column(3).(*array.Int64).Value(r), rec.Column(4).(*array.Float64).Value(r))
			require.NoError(t, err)
		}
		rec.Release()
	}
	scan.Close()
	for _, e := range []struct {
		label bool
		user  int64
		h     int
	}{{true, 1, 7}, {false, 1, 10}, {true, 2, 16}, {false, 2, 15}, {true, 4, 20}, {false, 3, 0}, {true, 3, 1}} {
		_, err := conn.Exec(ctx, `INSERT INTO ents VALUES ($1, $2, $3)`, e.label, e.user, at(e.h))
		require.NoError(t, err)
	}
	srv := testenv.StartTrino(t, db)
	client, err := trino.Open(srv.DSN("quiver", "iceberg", "public"))
	require.NoError(t, err)
	defer client.Close()

	local, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, training.DatasetRequest{Project: project, Name: "local", Service: "churn", Entities: ents, Warehouse: wh})
	require.NoError(t, err)
	pushed, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, training.DatasetRequest{Project: project, Name: "pushed", Service: "churn", Warehouse: wh,
		Engine: training.EngineTrino, EntitiesSQL: "SELECT label, user_id, event_timestamp FROM ents", Trino: client, TrinoNamespace: "quiver"})
	require.NoError(t, err)
	require.EqualValues(t, 7, pushed.Dataset.Rows)

	m, _, err := training.ReadManifest(pushed.Dir)
	require.NoError(t, err)
	require.Equal(t, training.EngineTrino, m.Lineage.Engine)
	require.Equal(t, "sql", m.Lineage.Entities.Kind)
	require.EqualValues(t, 7, m.Lineage.Entities.Rows)
	require.Contains(t, srv.Statements()[len(srv.Statements())-1], "FOR VERSION AS OF", "the offline snapshot is pinned")

	rows := func(dir string) []string {
		mm, _, err := training.ReadManifest(dir)
		require.NoError(t, err)
		rr, err := training.OpenFiles(ctx, dir, mm)
		require.NoError(t, err)
		defer rr.Release()
		var out []string
		for rr.Next() {
			rec := rr.RecordBatch()
			for r := 0; r < int(rec.NumRows()); r++ {
				s := ""
				for c := 0; c < int(rec.NumCols()); c++ {
					col := rec.Column(c)
					if col.IsNull(r) {
						s += "NULL|"
					} else if ts, ok := col.(*array.Timestamp); ok {
						s += ts.Value(r).ToTime(ts.DataType().(*arrow.TimestampType).Unit).UTC().Format(time.RFC3339) + "|"
					} else {
						s += col.ValueStr(r) + "|"
					}
				}
				out = append(out, s)
			}
		}
		require.NoError(t, rr.Err())
		sort.Strings(out)
		return out
	}
	require.Equal(t, rows(local.Dir), rows(pushed.Dir))
}
