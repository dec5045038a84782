package training_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	pq "github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/offline/parquet"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/sqlite"
	"github.com/quiverfs/quiver/training"
)

const project = "shop"

var t0 = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

func at(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }

const defs = `
entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: activity
    parquet: { path: activity.parquet }
    timestamp_field: ts
    created_timestamp_field: created
feature_views:
  - name: user_stats
    entities: [user]
    source: activity
    ttl: 12h
    features:
      - { name: clicks, type: int64 }
      - { name: score, type: float64 }
  - name: user_visits
    entities: [user]
    source: activity
    features:
      - { name: visits, type: int64 }
feature_services:
  - name: churn
    features: [user_stats:*]
  - name: interleaved
    features: [user_stats:clicks, user_visits:visits, user_stats:score]
`

type fixture struct {
	dir  string
	reg  registry.Store
	off  *iceberg.Store
	repo *definitions.Repo
	snap *catalog.Snapshot // the definitions as applied
}

// writeActivity writes the source rows: user u has clicks = 10*hour+u at each listed hour.
func writeActivity(t *testing.T, path string, hours map[int64][]int) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "ts", Type: offline.TimestampType},
		{Name: "created", Type: offline.TimestampType},
		{Name: "clicks", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "visits", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for u, hs := range hours {
		for _, h := range hs {
			b.Field(0).(*array.Int64Builder).Append(u)
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(at(h).UnixMicro()))
			b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(at(h).UnixMicro()))
			b.Field(3).(*array.Int64Builder).Append(int64(10*h) + u)
			b.Field(4).(*array.Float64Builder).Append(float64(h) / 2)
			b.Field(5).(*array.Int64Builder).Append(int64(1000*h) + u)
		}
	}
	writeRecord(t, path, b.NewRecordBatch())
}

func writeRecord(t *testing.T, path string, rec arrow.RecordBatch) {
	t.Helper()
	defer rec.Release()
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, nil, pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())
}

func newFixture(t *testing.T) *fixture {
	return newFixtureWith(t, nil)
}

// newFixtureWith builds the fixture over reg (nil: a SQLite registry in the fixture's folder).
func newFixtureWith(t *testing.T, reg registry.Store) *fixture {
	ctx := context.Background()
	fx := &fixture{dir: t.TempDir(), reg: reg}
	writeActivity(t, filepath.Join(fx.dir, "activity.parquet"), map[int64][]int{1: {0, 5, 10}, 2: {3}, 3: {1, 30}})
	f, err := definitions.Parse("defs.yaml", []byte(defs))
	require.NoError(t, err)
	fx.repo, err = definitions.NewRepo(f.Objects)
	require.NoError(t, err)

	if fx.reg == nil {
		fx.reg, err = sqlite.Open(ctx, filepath.Join(fx.dir, "registry.db"))
		require.NoError(t, err)
		t.Cleanup(func() { fx.reg.Close() })
	}
	changes, err := definitions.Plan(fx.repo, nil)
	require.NoError(t, err)
	req := registry.ApplyRequest{Project: project, Author: "test"}
	for _, c := range changes {
		req.Changes = append(req.Changes, registry.Change{Kind: c.Kind, Name: c.Name, Hash: c.Hash, Spec: c.Spec})
	}
	_, err = fx.reg.Apply(ctx, req)
	require.NoError(t, err)
	fx.snap, err = catalog.Load(ctx, fx.reg, project)
	require.NoError(t, err)

	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: "sqlite://" + filepath.Join(fx.dir, "catalog.db"), Warehouse: filepath.Join(fx.dir, "warehouse")})
	require.NoError(t, err)
	t.Cleanup(func() { cat.Close() })
	fx.off, err = iceberg.NewStore(ctx, cat, iceberg.StoreOptions{SpillDir: fx.dir})
	require.NoError(t, err)

	src, err := parquet.New(fx.repo.Source("activity"), parquet.Options{BaseDir: fx.dir})
	require.NoError(t, err)
	for _, view := range fx.repo.FeatureViews {
		vs, err := offline.NewViewSchema(view, map[string]*definitions.Entity{"user": fx.repo.Entity("user")})
		require.NoError(t, err)
		_, err = materialize.Run(ctx, fx.reg, materialize.Job{Project: project, Schema: vs, Source: src, Offline: fx.off}, t0, at(48), materialize.Options{})
		require.NoError(t, err)
	}
	return fx
}

// entities writes entity rows (user, event time, label) in a deliberately unsorted order.
func writeEntities(t *testing.T, path string) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "label", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_timestamp", Type: offline.TimestampType},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	rows := []struct {
		label bool
		user  int64
		h     int
	}{
		{true, 1, 7},   // latest at or before 7h: hour 5
		{false, 1, 10}, // exactly at 10h: hour 10
		{true, 2, 16},  // hour 3 is 13h old, TTL 12h: null
		{false, 2, 15}, // exactly T - ttl = 3h: hour 3
		{true, 4, 20},  // no history: null
		{false, 3, 0},  // before the first row at 1h: null
		{true, 3, 1},   // exactly at 1h
	}
	for _, r := range rows {
		b.Field(0).(*array.BooleanBuilder).Append(r.label)
		b.Field(1).(*array.Int64Builder).Append(r.user)
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(at(r.h).UnixMicro()))
	}
	writeRecord(t, path, b.NewRecordBatch())
}

func TestCreateDatasetIsPointInTimeCorrectAndReproducible(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	ents := filepath.Join(fx.dir, "entities.parquet")
	writeEntities(t, ents)
	wh := filepath.Join(fx.dir, "warehouse")
	req := training.DatasetRequest{Project: project, Name: "churn_train", Service: "churn", Entities: ents, Warehouse: wh, QuiverVersion: "test"}

	res, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, req)
	require.NoError(t, err)
	require.Equal(t, 1, res.Dataset.Version)
	require.Equal(t, training.ContentDir(wh, project, res.Dataset.ContentID), res.Dir)
	require.EqualValues(t, 7, res.Dataset.Rows)

	// Read it back with a different Parquet implementation than the writer's (parquet-go).
	type row struct {
		Label  bool     `parquet:"label"`
		UserID int64    `parquet:"user_id"`
		Clicks *int64   `parquet:"clicks,optional"`
		Score  *float64 `parquet:"score,optional"`
	}
	rows, err := pq.ReadFile[row](filepath.Join(res.Dir, "part-00000.parquet"))
	require.NoError(t, err)
	clicks := func(v int64) *int64 { return &v }
	want := []struct {
		label  bool
		user   int64
		clicks *int64
	}{
		{true, 1, clicks(51)}, {false, 1, clicks(101)}, {true, 2, nil}, {false, 2, clicks(32)}, {true, 4, nil}, {false, 3, nil}, {true, 3, clicks(13)},
	}
	require.Len(t, rows, len(want))
	for i, w := range want {
		require.Equal(t, w.label, rows[i].Label, "row %d label", i)
		require.Equal(t, w.user, rows[i].UserID, "row %d user", i)
		require.Equal(t, w.clicks, rows[i].Clicks, "row %d clicks", i)
	}

	// Lineage names the service and view versions and the offline snapshot read.
	m, id, err := training.ReadManifest(res.Dir)
	require.NoError(t, err)
	require.Equal(t, res.Dataset.ContentID, id)
	require.Equal(t, "churn", m.Lineage.FeatureService.Name)
	require.Equal(t, 1, m.Lineage.FeatureService.Version)
	require.Len(t, m.Lineage.FeatureViews, 1)
	require.NotZero(t, m.Lineage.FeatureViews[0].OfflineSnapshotID)
	require.Equal(t, "file", m.Lineage.Entities.Kind)
	require.EqualValues(t, 7, m.Lineage.Entities.Rows)

	// The same request again reuses the dataset; a forced rebuild makes v2, byte-identical.
	again, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, req)
	require.NoError(t, err)
	require.True(t, again.Reused)
	require.Equal(t, 1, again.Dataset.Version)
	req.Rebuild = true
	v2, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, req)
	require.NoError(t, err)
	require.Equal(t, 2, v2.Dataset.Version)
	require.Equal(t, res.Dataset.ContentID, v2.Dataset.ContentID)
	require.Equal(t, res.Dir, v2.Dir, "identical content is stored once")
	a, err := os.ReadFile(filepath.Join(res.Dir, "part-00000.parquet"))
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(v2.Dir, "part-00000.parquet"))
	require.NoError(t, err)
	require.Equal(t, a, b, "rebuilding the same inputs must give byte-identical files")

	// Stats and export.
	stats, err := training.Stats(ctx, res.Dir, m)
	require.NoError(t, err)
	require.Equal(t, "clicks", stats[3].Name)
	require.EqualValues(t, 3, stats[3].Nulls)
	require.EqualValues(t, 4, stats[3].Distinct)
	require.Equal(t, 13.0, stats[3].Min)
	require.Equal(t, 101.0, stats[3].Max)
	files, err := training.Export(ctx, res.Dir, m, filepath.Join(fx.dir, "export"), training.FormatCSV)
	require.NoError(t, err)
	csv, err := os.ReadFile(files[0])
	require.NoError(t, err)
	require.Contains(t, string(csv), "label,user_id,event_timestamp,clicks,score\n")
	require.Contains(t, string(csv), "true,4,")

	// Verify passes, then fails naming the file after one byte flips.
	_, err = training.Verify(v2.Dir, v2.Dataset.ContentID)
	require.NoError(t, err)
	path := filepath.Join(v2.Dir, "part-00000.parquet")
	require.NoError(t, os.Chmod(path, 0o644))
	b[len(b)/2] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o644))
	bad, err := training.Verify(v2.Dir, v2.Dataset.ContentID)
	require.ErrorIs(t, err, training.ErrCorrupt)
	require.Len(t, bad, 1)
	require.Equal(t, "part-00000.parquet", bad[0].Path)
	require.Contains(t, err.Error(), "part-00000.parquet")

	// A rebuild of the same content replaces the damaged stored copy: every version pointing
	// at it verifies again.
	v3, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, req)
	require.NoError(t, err)
	require.Equal(t, 3, v3.Dataset.Version)
	for _, d := range []registry.Dataset{res.Dataset, v2.Dataset, v3.Dataset} {
		_, err = training.Verify(training.DatasetDir(wh, d), d.ContentID)
		require.NoError(t, err, "v%d", d.Version)
	}
}

func TestCreateDatasetCreatedCutoff(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	ents := filepath.Join(fx.dir, "entities.csv")
	require.NoError(t, os.WriteFile(ents, []byte("user_id,event_timestamp,y\n1,"+at(7).Format(time.RFC3339)+",0.5\n"), 0o644))
	res, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, training.DatasetRequest{
		Project: project, Name: "csv_input", Service: "churn", Entities: ents, Warehouse: filepath.Join(fx.dir, "warehouse"), CreatedCutoff: true,
	})
	require.NoError(t, err)
	require.EqualValues(t, 1, res.Dataset.Rows)
	m, _, err := training.ReadManifest(res.Dir)
	require.NoError(t, err)
	require.True(t, m.Lineage.CreatedCutoff)
	require.Equal(t, []string{"user_id", "event_timestamp", "y", "clicks", "score"}, columnNames(m))
}

// TestCreateDatasetKeepsServiceColumnOrder: a service that interleaves views (a:x, b:y, a:z)
// gets its columns in the declared order — the order serving feeds a model — each column
// holding its own feature's values.
func TestCreateDatasetKeepsServiceColumnOrder(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	ents := filepath.Join(fx.dir, "entities.csv")
	require.NoError(t, os.WriteFile(ents, []byte("user_id,event_timestamp\n1,"+at(7).Format(time.RFC3339)+"\n"), 0o644))
	res, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, training.DatasetRequest{
		Project: project, Name: "interleaved", Service: "interleaved", Entities: ents, Warehouse: filepath.Join(fx.dir, "warehouse"),
	})
	require.NoError(t, err)
	m, _, err := training.ReadManifest(res.Dir)
	require.NoError(t, err)
	require.Equal(t, []string{"user_id", "event_timestamp", "clicks", "visits", "score"}, columnNames(m))
	require.Equal(t, []string{"", "", "user_stats:clicks", "user_visits:visits", "user_stats:score"},
		[]string{m.Schema[0].Feature, m.Schema[1].Feature, m.Schema[2].Feature, m.Schema[3].Feature, m.Schema[4].Feature})
	type row struct {
		Clicks int64   `parquet:"clicks"`
		Visits int64   `parquet:"visits"`
		Score  float64 `parquet:"score"`
	}
	rows, err := pq.ReadFile[row](filepath.Join(res.Dir, "part-00000.parquet"))
	require.NoError(t, err)
	require.Equal(t, []row{{Clicks: 51, Visits: 5001, Score: 2.5}}, rows, "user 1 as of hour 7: its hour-5 row")
}

func columnNames(m *training.Manifest) []string {
	var out []string
	for _, c := range m.Schema {
		out = append(out, c.Name)
	}
	return out
}

func TestCreateDatasetBadInput(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	wh := filepath.Join(fx.dir, "warehouse")
	write := func(name, content string) string {
		p := filepath.Join(fx.dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	cases := []struct {
		name, service, entities, want string
	}{
		{"unknown service", "churn_v9", write("ok.csv", "user_id,event_timestamp\n1,2026-10-01T00:00:00Z\n"), `unknown feature service "churn_v9"`},
		{"missing key", "churn", write("nokey.csv", "uid,event_timestamp\n1,2026-10-01T00:00:00Z\n"), `join key column "user_id" is missing`},
		{"missing timestamp", "churn", write("nots.csv", "user_id,when\n1,2026-10-01T00:00:00Z\n"), `timestamp column "event_timestamp" is missing`},
		{"wrong key type", "churn", write("badtype.csv", "user_id,event_timestamp\nabc,2026-10-01T00:00:00Z\n"), `entity file`},
		{"unknown format", "churn", write("e.json", "{}"), "unknown format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, training.DatasetRequest{Project: project, Name: "bad", Service: tc.service, Entities: tc.entities, Warehouse: wh})
			require.ErrorIs(t, err, training.ErrInvalidInput)
			require.ErrorContains(t, err, tc.want)
			_, gerr := fx.reg.GetDataset(ctx, project, "bad", 0)
			require.True(t, errors.Is(gerr, registry.ErrNotFound), "nothing registered")
			entries, _ := os.ReadDir(training.DatasetsDir(wh, project))
			for _, e := range entries {
				require.Equal(t, ".staging", e.Name(), "nothing left on disk")
			}
			staging, _ := os.ReadDir(training.StagingRoot(wh, project))
			require.Empty(t, staging, fmt.Sprintf("nothing left on disk: %v", staging))
			builds, err := fx.reg.ListDatasetBuilds(ctx, project)
			require.NoError(t, err)
			require.Empty(t, builds)
		})
	}
}

// TestCreateDatasetReusesItsOwnNameAfterAnotherName: issue 22 item 13. Once another name was
// built from the same inputs, a request for the first name again reused nothing (the lookup
// found the other name's version, newer, and then required the same name) and built a second
// version of the same content. Identical inputs reuse the name's own version.
func TestCreateDatasetReusesItsOwnNameAfterAnotherName(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	ents := filepath.Join(fx.dir, "entities.parquet")
	writeEntities(t, ents)
	wh := filepath.Join(fx.dir, "warehouse")
	req := training.DatasetRequest{Project: project, Name: "churn_train", Service: "churn", Entities: ents, Warehouse: wh, QuiverVersion: "test"}
	first, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, req)
	require.NoError(t, err)

	other := req
	other.Name = "train"
	o, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, other)
	require.NoError(t, err, "another name builds its own version")
	require.Equal(t, 1, o.Dataset.Version)

	again, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, req)
	require.NoError(t, err)
	require.True(t, again.Reused)
	require.Equal(t, first.Dataset, again.Dataset)
	again, err = training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, other)
	require.NoError(t, err)
	require.True(t, again.Reused)
	require.Equal(t, o.Dataset, again.Dataset)
	for _, name := range []string{"churn_train", "train"} {
		list, err := fx.reg.ListDatasets(ctx, project, name)
		require.NoError(t, err)
		require.Len(t, list, 1, "%s: no second version of the same content", name)
	}
}
