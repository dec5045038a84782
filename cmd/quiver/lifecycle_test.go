package main

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/quiverfs/quiver/internal/scaffold"
	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// Lifecycle tests: deletion that deletes, definition generations and breaking changes (issue
// 10), through the CLI as a user runs it, against real registries and online stores.

func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), old, "edit %s", path)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644))
}

// getOnline reads user_stats:* for users 1..4 and returns the response.
func getOnline(t *testing.T, env map[string]string, dir string) *pb.GetOnlineFeaturesResponse {
	t.Helper()
	r := quiver(t, env, "-C", dir, "-o", "json", "get-online", "--feature", "user_stats:*",
		"--entity", "user_id=1", "--entity", "user_id=2", "--entity", "user_id=3", "--entity", "user_id=4")
	require.Equal(t, exitOK, r.code, r.stderr)
	var resp pb.GetOnlineFeaturesResponse
	require.NoError(t, protojson.Unmarshal([]byte(r.stdout), &resp))
	require.GreaterOrEqual(t, len(resp.Features), 3)
	return &resp
}

func requireAllNotFound(t *testing.T, resp *pb.GetOnlineFeaturesResponse) {
	t.Helper()
	for _, f := range resp.Features {
		for i, s := range f.Statuses {
			require.Equal(t, pb.FieldStatus_NOT_FOUND, s, "feature %s row %d", f.Name, i)
		}
	}
}

// redisFields returns every hash field of the project's keys on every master, counted.
func redisFields(t *testing.T, addrs []string, cluster bool, project string) map[string]int {
	t.Helper()
	ctx := context.Background()
	out := map[string]int{}
	scan := func(ctx context.Context, c *goredis.Client) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, "q:"+project+":{*", 1000).Result()
			if err != nil {
				return err
			}
			for _, k := range keys {
				fields, err := c.HKeys(ctx, k).Result()
				if err != nil {
					return err
				}
				for _, f := range fields {
					out[f]++
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if cluster {
		c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
		defer c.Close()
		require.NoError(t, c.ForEachMaster(ctx, scan))
	} else {
		c := goredis.NewClient(&goredis.Options{Addr: addrs[0]})
		defer c.Close()
		require.NoError(t, scan(ctx, c))
	}
	return out
}

type onlineCase struct {
	name string
	// url is the online store; down is one that cannot be reached.
	url, down string
	// downCode is the exit code when the down store cannot be opened.
	downCode int
	// fields lists the hash fields stored for the project (nil for the embedded store).
	fields func(t *testing.T) map[string]int
}

func onlineCases(t *testing.T) []func(t *testing.T) onlineCase {
	downPort := func(t *testing.T) string {
		p, err := testenv.FreePort()
		require.NoError(t, err)
		return strconv.Itoa(p)
	}
	return []func(t *testing.T) onlineCase{
		func(t *testing.T) onlineCase {
			r := testenv.StartRedis(t)
			return onlineCase{name: "redis", url: "redis://" + r.Addr + "/0", down: "redis://127.0.0.1:" + downPort(t) + "/0", downCode: exitUnavailable,
				fields: func(t *testing.T) map[string]int { return redisFields(t, []string{r.Addr}, false, "shop") }}
		},
		func(t *testing.T) onlineCase {
			c := testenv.StartRedisCluster(t)
			return onlineCase{name: "redis-cluster", url: "redis-cluster://" + strings.Join(c.Addrs(), ","),
				down: "redis-cluster://127.0.0.1:" + downPort(t), downCode: exitUnavailable,
				fields: func(t *testing.T) map[string]int { return redisFields(t, c.Addrs(), true, "shop") }}
		},
		func(t *testing.T) onlineCase {
			dir := t.TempDir()
			notDir := filepath.Join(dir, "file")
			require.NoError(t, os.WriteFile(notDir, nil, 0o644))
			return onlineCase{name: "embedded", url: "sqlite://" + filepath.Join(dir, "online.db"), down: "sqlite://" + filepath.Join(notDir, "online.db"), downCode: exitFailed}
		},
	}
}

// TestPruneThenRedeclareChangedType is issue 10's "what was seen" item 3 and its acceptance:
// apply --prune drops the view's online rows and Iceberg table; a drop interrupted by an
// unreachable store is finished by the next apply; a view declared again under the same name
// (with a changed type) is NOT_FOUND until materialized, never serving the old rows even while
// they are still stored; then it serves the new values, and the store holds no field of the
// dropped generation.
func TestPruneThenRedeclareChangedType(t *testing.T) {
	for _, mk := range onlineCases(t) {
		oc := mk(t)
		t.Run(oc.name, func(t *testing.T) {
			env := map[string]string{"QUIVER_ONLINE": oc.url}
			down := map[string]string{"QUIVER_ONLINE": oc.down}
			dir := filepath.Join(t.TempDir(), "shop")
			require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
			now := time.Now().UTC().Truncate(time.Second)
			writeActivity(t, filepath.Join(dir, "data", "user_activity.parquet"), now)
			start, end := now.Add(-30*24*time.Hour).Format(time.RFC3339), now.Add(time.Minute).Format(time.RFC3339)
			r := quiver(t, env, "-C", dir, "apply")
			require.Equal(t, exitOK, r.code, r.stderr)
			r = quiver(t, env, "-C", dir, "materialize", "--start", start, "--end", end)
			require.Equal(t, exitOK, r.code, r.stderr)
			resp := getOnline(t, env, dir)
			require.Equal(t, pb.FieldStatus_PRESENT, resp.Features[0].Statuses[0])
			require.EqualValues(t, 42, resp.Features[0].GetValues().GetInt64Values().GetVal()[0])
			if oc.fields != nil {
				require.Equal(t, map[string]int{"user_stats": 3}, oc.fields(t))
			}

			// Remove the view (and the service, model and job that use it).
			features := filepath.Join(dir, "features")
			churn, err := os.ReadFile(filepath.Join(features, "churn.yaml"))
			require.NoError(t, err)
			activity, err := os.ReadFile(filepath.Join(features, "user_activity.yaml"))
			require.NoError(t, err)
			require.NoError(t, os.Remove(filepath.Join(features, "churn.yaml")))
			i := strings.Index(string(activity), "feature_views:")
			require.Positive(t, i)
			writeFile(t, filepath.Join(features, "user_activity.yaml"), string(activity[:i]))

			// plan names what would be dropped, in text and JSON.
			r = quiver(t, env, "-C", dir, "plan")
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Contains(t, r.stdout, "  - feature_view user_stats (v1) (only with apply --prune)\n")
			require.Contains(t, r.stdout, "drops generation 1: 3 online rows and offline table quiver_shop.user_stats (4 rows)")
			r = quiver(t, env, "-C", dir, "-o", "json", "plan")
			require.Equal(t, exitOK, r.code, r.stderr)
			var plan struct {
				Changes []changeJSON `json:"changes"`
			}
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &plan))
			var drop *dropJSON
			for _, c := range plan.Changes {
				if c.Kind == "feature_view" && c.Name == "user_stats" {
					require.Len(t, c.Drops, 1)
					drop = &c.Drops[0]
				}
			}
			require.NotNil(t, drop)
			require.Equal(t, dropJSON{View: "user_stats", Generation: 1, OnlineRows: 3, OfflineTable: "quiver_shop.user_stats", OfflineExists: true, OfflineRows: 4}, *drop)

			// Prune while the online store is down: the registry commits, the drop stays pending.
			r = quiver(t, down, "-C", dir, "apply", "--prune")
			require.Equal(t, oc.downCode, r.code, r.stdout+r.stderr)
			require.Contains(t, r.stderr, "run quiver apply again to finish")
			require.Contains(t, r.stdout, "(removed)")

			// Declared again with a changed type, still with the store down.
			writeFile(t, filepath.Join(features, "churn.yaml"), string(churn))
			writeFile(t, filepath.Join(features, "user_activity.yaml"),
				strings.Replace(string(activity), "{ name: sessions_7d, type: int32 }", "{ name: sessions_7d, type: int64 }", 1))
			r = quiver(t, down, "-C", dir, "apply")
			require.Equal(t, oc.downCode, r.code, r.stdout+r.stderr)
			require.Regexp(t, `feature_view\s+user_stats\s+v3\n`, r.stdout)

			// The old rows are still stored, and never served: NOT_FOUND until materialized.
			if oc.fields != nil {
				require.Equal(t, map[string]int{"user_stats": 3}, oc.fields(t))
			}
			requireAllNotFound(t, getOnline(t, env, dir))

			// The next apply finishes the drop.
			r = quiver(t, env, "-C", dir, "apply")
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Contains(t, r.stdout, "Dropped feature view user_stats generation 1: online rows and offline table.")
			if oc.fields != nil {
				require.Empty(t, oc.fields(t), "no field of the dropped generation is left")
			}
			requireNoTable(t, dir, "user_stats", 1)
			requireAllNotFound(t, getOnline(t, env, dir))
			r = quiver(t, env, "-C", dir, "apply")
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Contains(t, r.stdout, "No changes")

			// Materialized: the new values, of the new type, stored for generation 2 only.
			r = quiver(t, env, "-C", dir, "materialize", "--start", start, "--end", end)
			require.Equal(t, exitOK, r.code, r.stderr)
			resp = getOnline(t, env, dir)
			require.Equal(t, pb.FieldStatus_PRESENT, resp.Features[0].Statuses[0])
			require.EqualValues(t, 42, resp.Features[0].GetValues().GetInt64Values().GetVal()[0])
			require.Equal(t, pb.FieldStatus_PRESENT, resp.Features[2].Statuses[0])
			require.EqualValues(t, 7, resp.Features[2].GetValues().GetInt64Values().GetVal()[0], "sessions_7d is an int64 now")
			require.Equal(t, pb.FieldStatus_NOT_FOUND, resp.Features[0].Statuses[3])
			if oc.fields != nil {
				require.Equal(t, map[string]int{"user_stats@2": 3}, oc.fields(t))
			}

			// The dataset joins generation 2's table: the new type.
			r = quiver(t, env, "-C", dir, "dataset", "create", "train", "--service", "churn_v1", "--entities", filepath.Join(dir, "data", "labels.parquet"))
			require.Equal(t, exitOK, r.code, r.stderr)
			requireDatasetColumnType(t, datasetLocation(t, env, dir, "train@v1"), "sessions_7d", arrow.PrimitiveTypes.Int64)
		})
	}
}

// requireNoTable checks that the offline table of a view's generation is gone from the
// repo's Iceberg catalog (kept in its SQLite registry) and that no file of it is left.
func requireNoTable(t *testing.T, dir, view string, gen int) {
	t.Helper()
	ctx := context.Background()
	warehouse := filepath.Join(dir, ".quiver", "warehouse")
	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: "sqlite://" + filepath.Join(dir, ".quiver", "registry.db"), Warehouse: warehouse})
	require.NoError(t, err)
	defer cat.Close()
	st, err := iceberg.NewStore(ctx, cat, iceberg.StoreOptions{})
	require.NoError(t, err)
	_, err = st.Snapshots(ctx, view, gen)
	require.ErrorIs(t, err, offline.ErrTableNotFound)
	var left []string
	_ = filepath.WalkDir(warehouse, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, string(filepath.Separator)+iceberg.TableName(view, gen)+string(filepath.Separator)) {
			left = append(left, p)
		}
		return nil
	})
	require.Empty(t, left, "files of the dropped table")
}

// datasetLocation is where a registered dataset version's files are (dataset show).
func datasetLocation(t *testing.T, env map[string]string, dir, ref string) string {
	t.Helper()
	r := quiver(t, env, "-C", dir, "-o", "json", "dataset", "show", ref)
	require.Equal(t, exitOK, r.code, r.stderr)
	var ds struct {
		Location string `json:"location"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ds), r.stdout)
	require.NotEmpty(t, ds.Location, r.stdout)
	if !filepath.IsAbs(ds.Location) { // relative to the warehouse
		return filepath.Join(dir, ".quiver", "warehouse", ds.Location)
	}
	return ds.Location
}

// requireDatasetColumnType checks a column's type in a dataset version's Parquet files.
func requireDatasetColumnType(t *testing.T, dir, column string, want arrow.DataType) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "dataset files in %s", dir)
	rdr, err := file.OpenParquetFile(files[0], false)
	require.NoError(t, err)
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, nil)
	require.NoError(t, err)
	sc, err := fr.Schema()
	require.NoError(t, err)
	idx := sc.FieldIndices(column)
	require.Len(t, idx, 1, "column %q in %s", column, sc)
	require.True(t, arrow.TypeEqual(want, sc.Field(idx[0]).Type), "column %q is %s, want %s", column, sc.Field(idx[0]).Type, want)
}

// TestBreakingTypeChange is issue 10's "what was seen" item 4 and its acceptance, on a
// Postgres registry (and Iceberg catalog) and Redis: a narrowing type change is refused with
// exit 1 naming the field; with --allow-breaking the view starts a new generation, the old
// online values stop being served at once, and materialize and dataset create work with no
// manual step, the dataset holding the new type.
func TestBreakingTypeChange(t *testing.T) {
	pg := testenv.StartPostgres(t)
	redis := testenv.StartRedis(t)
	env := map[string]string{"QUIVER_REGISTRY": pg.NewDatabase(t), "QUIVER_ONLINE": "redis://" + redis.Addr + "/0"}
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	now := time.Now().UTC().Truncate(time.Second)
	writeActivity(t, filepath.Join(dir, "data", "user_activity.parquet"), now)
	start, end := now.Add(-30*24*time.Hour).Format(time.RFC3339), now.Add(time.Minute).Format(time.RFC3339)
	r := quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, env, "-C", dir, "materialize", "--start", start, "--end", end)
	require.Equal(t, exitOK, r.code, r.stderr)
	labels := filepath.Join(dir, "data", "labels.parquet")
	r = quiver(t, env, "-C", dir, "dataset", "create", "train", "--service", "churn_v1", "--entities", labels)
	require.Equal(t, exitOK, r.code, r.stderr)
	requireDatasetColumnType(t, datasetLocation(t, env, dir, "train@v1"), "clicks_7d", arrow.PrimitiveTypes.Int64)

	// clicks_7d int64 -> int32 narrows (the source's column changed type too); a new
	// description is compatible.
	fields := slices.Clone(scaffold.UserActivitySchema.Fields())
	fields[3].Type = arrow.PrimitiveTypes.Int32
	writeActivityAs(t, filepath.Join(dir, "data", "user_activity.parquet"), now, arrow.NewSchema(fields, nil))
	views := filepath.Join(dir, "features", "user_activity.yaml")
	editFile(t, views, "{ name: clicks_7d, type: int64,", "{ name: clicks_7d, type: int32,")
	editFile(t, views, "description: Rolling activity counters per user.", "description: Rolling counters per user.")
	r = quiver(t, env, "-C", dir, "validate")
	require.Equal(t, exitOK, r.code, r.stderr)

	r = quiver(t, env, "-C", dir, "plan")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "  ~ feature_view user_stats (v1 -> v2) BREAKING: starts user_stats generation 2\n")
	require.Contains(t, r.stdout, `~ features[clicks_7d].type: "int64" -> "int32"  [BREAKING: incompatible type change`)
	require.Contains(t, r.stdout, `~ description: "Rolling activity counters per user." -> "Rolling counters per user."  [compatible: metadata only]`)
	require.Contains(t, r.stdout, "drops generation 1: 3 online rows and offline table quiver_shop.user_stats (4 rows)")
	require.Contains(t, r.stdout, "(1 breaking: apply needs --allow-breaking)")
	r = quiver(t, env, "-C", dir, "-o", "json", "plan")
	require.Equal(t, exitOK, r.code, r.stderr)
	var plan struct {
		Breaking bool         `json:"breaking"`
		Changes  []changeJSON `json:"changes"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &plan))
	require.True(t, plan.Breaking)
	require.Len(t, plan.Changes, 1)
	require.True(t, plan.Changes[0].Breaking)
	require.Equal(t, map[string]int{"user_stats": 2}, plan.Changes[0].NewGenerations)
	classes := map[string]bool{}
	for _, f := range plan.Changes[0].Fields {
		classes[f.Path] = f.Breaking
	}
	require.Equal(t, map[string]bool{"features[clicks_7d].type": true, "description": false}, classes)

	// Refused without --allow-breaking: exit 1, the field named, nothing applied.
	r = quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitInvalid, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stderr, `feature_view user_stats: features[clicks_7d].type "int64" -> "int32"`)
	require.Contains(t, r.stderr, "--allow-breaking")
	resp := getOnline(t, env, dir)
	require.Equal(t, pb.FieldStatus_PRESENT, resp.Features[0].Statuses[0], "nothing changed")

	// Allowed: a new generation; old values stop being served at once.
	r = quiver(t, env, "-C", dir, "apply", "--allow-breaking")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Feature view user_stats starts generation 2")
	require.Contains(t, r.stdout, "Dropped feature view user_stats generation 1: online rows and offline table.")
	requireAllNotFound(t, getOnline(t, env, dir))
	require.Empty(t, redisFields(t, []string{redis.Addr}, false, "shop"))
	r = quiver(t, env, "-C", dir, "describe", "view", "user_stats")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Regexp(t, `Generation:\s+2 \(online rows user_stats@2, offline table user_stats-g2\)`, r.stdout)

	// materialize-incremental starts over for the new generation: no manual step.
	r = quiver(t, env, "-C", dir, "materialize-incremental", "--end", end)
	require.Equal(t, exitOK, r.code, r.stderr)
	resp = getOnline(t, env, dir)
	require.Equal(t, pb.FieldStatus_PRESENT, resp.Features[0].Statuses[0])
	require.EqualValues(t, 42, resp.Features[0].GetValues().GetInt32Values().GetVal()[0], "clicks_7d is an int32 now")
	require.Equal(t, map[string]int{"user_stats@2": 2}, redisFields(t, []string{redis.Addr}, false, "shop"),
		"materialize-incremental from end minus ttl: users 1 and 3")

	r = quiver(t, env, "-C", dir, "dataset", "create", "train", "--service", "churn_v1", "--entities", labels)
	require.Equal(t, exitOK, r.code, r.stderr)
	requireDatasetColumnType(t, datasetLocation(t, env, dir, "train@v2"), "clicks_7d", arrow.PrimitiveTypes.Int32)
	r = quiver(t, env, "-C", dir, "dataset", "verify", "train@v1")
	require.Equal(t, exitOK, r.code, r.stderr)

	// A compatible widening (int32 -> int64) applies without the flag and keeps the table.
	editFile(t, views, "{ name: clicks_7d, type: int32,", "{ name: clicks_7d, type: int64,")
	writeActivity(t, filepath.Join(dir, "data", "user_activity.parquet"), now)
	r = quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NotContains(t, r.stdout, "starts generation")
	resp = getOnline(t, env, dir)
	require.Equal(t, pb.FieldStatus_PRESENT, resp.Features[0].Statuses[0], "an int32 row reads as int64")
	require.EqualValues(t, 42, resp.Features[0].GetValues().GetInt64Values().GetVal()[0])
	r = quiver(t, env, "-C", dir, "materialize", "--start", start, "--end", end)
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, env, "-C", dir, "dataset", "create", "train", "--service", "churn_v1", "--entities", labels)
	require.Equal(t, exitOK, r.code, r.stderr)
	requireDatasetColumnType(t, datasetLocation(t, env, dir, "train@v3"), "clicks_7d", arrow.PrimitiveTypes.Int64)
}
