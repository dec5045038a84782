package materialize_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/benchdata"
	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/offline/parquet"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/embedded"
	"github.com/quiverfs/quiver/online/redis"
	"github.com/quiverfs/quiver/registry/sqlite"
)

// BenchmarkMaterialize materializes a generated source (internal/cmd/gendata) into the
// Iceberg offline store and an online store. Set QUIVER_BENCH_SOURCE to the Parquet file
// (default: a small one generated on the fly) and QUIVER_BENCH_ONLINE=redis to write a
// throwaway redis-server instead of the embedded store. It reports rows/s end to end and per
// sink.
func BenchmarkMaterialize(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	src := os.Getenv("QUIVER_BENCH_SOURCE")
	if src == "" {
		src = filepath.Join(dir, "src.parquet")
		spec := benchdata.Spec{Rows: 200_000, Entities: 50_000, Features: 10, Days: 30, End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Seed: 1}
		require.NoError(b, benchdata.Write(src, spec))
	}
	entity := definitions.Entity{Name: "entity", JoinKeys: []definitions.Field{{Name: "entity_id", Type: definitions.MustType("int64")}}}
	view := &definitions.FeatureView{Name: "bench", Entities: []string{"entity"}, Source: "src", Online: true}
	for i := 0; i < 10; i++ {
		t := "float64"
		if i%2 == 1 {
			t = "int64"
		}
		view.Features = append(view.Features, definitions.Field{Name: "f" + strconv.Itoa(i), Type: definitions.MustType(t)})
	}
	reg, err := sqlite.Open(ctx, filepath.Join(dir, "registry.db"))
	require.NoError(b, err)
	defer reg.Close()
	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: "sqlite://" + filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "wh")})
	require.NoError(b, err)
	defer cat.Close()
	off, err := iceberg.NewStore(ctx, cat, iceberg.StoreOptions{SpillDir: dir})
	require.NoError(b, err)
	var on online.Store
	if os.Getenv("QUIVER_BENCH_ONLINE") == "redis" {
		r := testenv.StartRedis(b)
		on, err = redis.Open(ctx, "redis://"+r.Addr, redis.Options{})
	} else {
		on, err = embedded.Open(ctx, filepath.Join(dir, "online.db"), embedded.Options{})
	}
	require.NoError(b, err)
	defer on.Close()
	source, err := parquet.New(&definitions.Source{Name: "src", Parquet: &definitions.ParquetSource{Path: src}, TimestampField: "event_ts", CreatedTimestampField: "created_ts"}, parquet.Options{})
	require.NoError(b, err)
	vs, err := offline.NewViewSchema(view, map[string]*definitions.Entity{"entity": &entity})
	require.NoError(b, err)
	ov, err := online.NewView("bench", view, []definitions.Entity{entity})
	require.NoError(b, err)
	job := materialize.Job{Project: "bench", Schema: vs, Source: source, Offline: off, Online: on, OnlineView: ov}
	start, end := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var res materialize.Result
	for b.Loop() {
		res, err = materialize.Run(ctx, reg, job, start, end, materialize.Options{})
		require.NoError(b, err)
	}
	rows := float64(res.RowsRead)
	b.ReportMetric(rows/res.Duration.Seconds(), "rows/s")
	b.ReportMetric(rows/res.OfflineTime.Seconds(), "offline-rows/s")
	b.ReportMetric(float64(res.OnlineRows)/res.OnlineTime.Seconds(), "online-entity-rows/s")
}
