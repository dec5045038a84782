package feast

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/quiverfs/quiver/definitions"
	core "github.com/quiverfs/quiver/definitions/feast/internal/proto/feast/core"
	ftypes "github.com/quiverfs/quiver/definitions/feast/internal/proto/feast/types"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test -update")
	require.Equal(t, string(want), got)
}

// feastRepo writes a Feast repository: feature_store.yaml (the given text, or the default
// local one) and, when reg is not nil, its registry file.
func feastRepo(t *testing.T, storeYAML string, reg *core.Registry) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "feature_repo")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o755))
	if storeYAML == "" {
		storeYAML = "project: shop\nregistry: data/registry.db\nprovider: local\nonline_store:\n  type: sqlite\n  path: data/online_store.db\nentity_key_serialization_version: 3\n"
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, StoreConfigFile), []byte(storeYAML), 0o644))
	if reg != nil {
		b, err := proto.Marshal(reg)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "data", "registry.db"), b, 0o644))
	}
	return dir
}

func feat(name string, t ftypes.ValueType_Enum) *core.FeatureSpecV2 {
	return &core.FeatureSpecV2{Name: name, ValueType: t}
}

func fileSource(name, uri string) *core.DataSource {
	return &core.DataSource{Name: name, Project: "shop", Type: core.DataSource_BATCH_FILE, TimestampField: "event_timestamp", CreatedTimestampColumn: "created",
		Options: &core.DataSource_FileOptions_{FileOptions: &core.DataSource_FileOptions{Uri: uri}}}
}

// kitchenSink is a registry with one of nearly everything Feast 0.67 can hold, and objects
// of another project that must be left alone.
func kitchenSink() *core.Registry {
	const p = "shop"
	users := fileSource("users_src", "data/users.parquet")
	users.Description = "users, hourly"
	users.Owner = "data@shop"
	users.DatePartitionColumn = "day"
	outside := fileSource("shared_src", "../../lake/shared.parquet")
	mapped := fileSource("mapped_src", "data/mapped.parquet")
	mapped.FieldMapping = map[string]string{"n_clicks": "clicks"}
	delta := fileSource("delta_src", "data/delta")
	delta.GetFileOptions().FileFormat = &core.FileFormat{Format: &core.FileFormat_DeltaFormat{DeltaFormat: &core.TableFormat_DeltaFormat{}}} //nolint:staticcheck // as older registries hold it
	s3 := fileSource("s3_src", "s3://bucket/users.parquet")
	bq := &core.DataSource{Name: "bq_src", Project: p, Type: core.DataSource_BATCH_BIGQUERY, TimestampField: "ts",
		Options: &core.DataSource_BigqueryOptions{BigqueryOptions: &core.DataSource_BigQueryOptions{Query: "SELECT * FROM shop.orders"}}}
	snow := &core.DataSource{Name: "snow_src", Project: p, Type: core.DataSource_BATCH_SNOWFLAKE, TimestampField: "ts",
		Options: &core.DataSource_SnowflakeOptions_{SnowflakeOptions: &core.DataSource_SnowflakeOptions{Database: "DB", Schema: "PUBLIC", Table: "ORDERS"}}}
	redshift := &core.DataSource{Name: "rs_src", Project: p, Type: core.DataSource_BATCH_REDSHIFT, TimestampField: "ts",
		Options: &core.DataSource_RedshiftOptions_{RedshiftOptions: &core.DataSource_RedshiftOptions{Table: "orders", Schema: "public", Database: "dev"}}}
	push := &core.DataSource{Name: "txn_push", Project: p, Type: core.DataSource_PUSH_SOURCE, BatchSource: fileSource("txn_batch", "data/txn.parquet"),
		Options: &core.DataSource_PushOptions_{PushOptions: &core.DataSource_PushOptions{}}}
	kafka := &core.DataSource{Name: "clicks_stream", Project: p, Type: core.DataSource_STREAM_KAFKA, TimestampField: "ts",
		FieldMapping: map[string]string{"uid": "user_id"}, BatchSource: fileSource("clicks_batch", "data/clicks.parquet"),
		Options: &core.DataSource_KafkaOptions_{KafkaOptions: &core.DataSource_KafkaOptions{KafkaBootstrapServers: "k1:9092, k2",
			Topic: "clicks", MessageFormat: &core.StreamFormat{Format: &core.StreamFormat_JsonFormat_{JsonFormat: &core.StreamFormat_JsonFormat{SchemaJson: "user_id bigint, clicks bigint, ts timestamp"}}},
			WatermarkDelayThreshold: durationpb.New(5 * time.Minute)}}}
	protoStream := &core.DataSource{Name: "proto_stream", Project: p, Type: core.DataSource_STREAM_KAFKA, TimestampField: "ts",
		Options: &core.DataSource_KafkaOptions_{KafkaOptions: &core.DataSource_KafkaOptions{KafkaBootstrapServers: "k1:9092", Topic: "p",
			MessageFormat: &core.StreamFormat{Format: &core.StreamFormat_ProtoFormat_{ProtoFormat: &core.StreamFormat_ProtoFormat{ClassPath: "com.shop.Click"}}}}}}
	request := &core.DataSource{Name: "txn_request", Project: p, Type: core.DataSource_REQUEST_SOURCE,
		Options: &core.DataSource_RequestDataOptions_{RequestDataOptions: &core.DataSource_RequestDataOptions{Schema: []*core.FeatureSpecV2{
			feat("amount", ftypes.ValueType_DOUBLE), feat("items", ftypes.ValueType_INT64_LIST)}}}}

	view := func(name string, src *core.DataSource, ents []string, fs ...*core.FeatureSpecV2) *core.FeatureView {
		return &core.FeatureView{Spec: &core.FeatureViewSpec{Name: name, Project: p, Entities: ents, Features: fs, BatchSource: src, Online: true,
			EntityColumns: []*core.FeatureSpecV2{feat("user_id", ftypes.ValueType_INT64)}}}
	}
	userStats := view("user_stats", users, []string{"user"},
		&core.FeatureSpecV2{Name: "clicks", ValueType: ftypes.ValueType_INT64, Description: "clicks in the hour", Tags: map[string]string{"pii": "no"}},
		feat("spend", ftypes.ValueType_DOUBLE), feat("score", ftypes.ValueType_FLOAT), feat("profile", ftypes.ValueType_JSON),
		feat("attrs", ftypes.ValueType_MAP), feat("seen", ftypes.ValueType_STRING_SET), feat("user_id", ftypes.ValueType_INT64),
		feat("event_ts", ftypes.ValueType_INT64), feat("bad-name", ftypes.ValueType_INT64))
	userStats.Spec.Ttl = durationpb.New(36*time.Hour + 1500*time.Millisecond)
	userStats.Spec.Tags = map[string]string{"team": "growth", "owner": "someone"}
	userStats.Spec.Owner = "growth@shop"
	userStats.Spec.Description = "Hourly user stats."
	userStats.Spec.EnableValidation = true
	userStats.Spec.Version = "v3"
	userStats.Meta = &core.FeatureViewMeta{MaterializationIntervals: []*core.MaterializationInterval{
		{StartTime: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), EndTime: timestamppb.New(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))},
		{StartTime: timestamppb.New(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)), EndTime: timestamppb.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))},
	}}
	merchant := view("merchant_stats", outside, []string{"merchant"}, feat("score", ftypes.ValueType_FLOAT), feat("orders", ftypes.ValueType_INT32))
	merchant.Spec.EntityColumns = []*core.FeatureSpecV2{feat("merchant_id", ftypes.ValueType_STRING)}
	txn := view("user_txn", push.GetBatchSource(), []string{"user"}, feat("amount", ftypes.ValueType_DOUBLE))
	txn.Spec.StreamSource = push
	txn.Spec.Ttl = durationpb.New(24 * time.Hour)
	transformed := view("transformed_fv", users, []string{"user"}, feat("x", ftypes.ValueType_INT64))
	transformed.Spec.FeatureTransformation = &core.FeatureTransformationV2{Transformation: &core.FeatureTransformationV2_UserDefinedFunction{UserDefinedFunction: &core.UserDefinedFunctionV2{Name: "t", BodyText: "def t(df): return df"}}}
	entityless := view("global_stats", mapped, []string{dummyEntity}, feat("total", ftypes.ValueType_INT64))
	entityless.Spec.EntityColumns = nil

	projection := func(view string, fs ...*core.FeatureSpecV2) *core.FeatureViewProjection {
		return &core.FeatureViewProjection{FeatureViewName: view, FeatureColumns: fs}
	}
	odfv := func(name, mode, body string, fs ...*core.FeatureSpecV2) *core.OnDemandFeatureView {
		return &core.OnDemandFeatureView{Spec: &core.OnDemandFeatureViewSpec{Name: name, Project: p, Features: fs, Mode: mode,
			Sources: map[string]*core.OnDemandSource{
				"user_stats":  {Source: &core.OnDemandSource_FeatureViewProjection{FeatureViewProjection: projection("user_stats", feat("clicks", ftypes.ValueType_INT64), feat("spend", ftypes.ValueType_DOUBLE))}},
				"txn_request": {Source: &core.OnDemandSource_RequestDataSource{RequestDataSource: request}},
			},
			FeatureTransformation: &core.FeatureTransformationV2{Transformation: &core.FeatureTransformationV2_UserDefinedFunction{UserDefinedFunction: &core.UserDefinedFunctionV2{Name: name, BodyText: body, Mode: mode}}},
			Entities:              []string{dummyEntity}}}
	}
	ratio := odfv("spend_ratio", "pandas", "@on_demand_feature_view(sources=[user_stats, txn_request], schema=[Field(name=\"ratio\", dtype=Float64)])\n"+
		"def spend_ratio(inputs: pd.DataFrame) -> pd.DataFrame:\n    df = pd.DataFrame()\n    df[\"ratio\"] = inputs[\"amount\"] / (inputs[\"spend\"] + 1)\n    return df\n",
		feat("ratio", ftypes.ValueType_DOUBLE))
	ratio.Spec.WriteToOnlineStore = true
	pythonMode := odfv("clicks_python", "python", "def clicks_python(inputs: dict) -> dict:\n    return {\"double_clicks\": [c * 2 for c in inputs[\"clicks\"]]}\n",
		feat("double_clicks", ftypes.ValueType_INT64))
	numpy := odfv("log_spend", "pandas", "def log_spend(inputs):\n    df = pd.DataFrame()\n    df[\"log_spend\"] = np.log1p(inputs[\"spend\"])\n    return df\n",
		feat("log_spend", ftypes.ValueType_DOUBLE))

	service := &core.FeatureService{Spec: &core.FeatureServiceSpec{Name: "fraud_v1", Project: p, Owner: "risk@shop", Description: "Fraud model features.",
		Features: []*core.FeatureViewProjection{
			projection("user_stats", feat("clicks", ftypes.ValueType_INT64), feat("score", ftypes.ValueType_FLOAT), feat("attrs", ftypes.ValueType_MAP)),
			projection("merchant_stats", feat("score", ftypes.ValueType_FLOAT), feat("orders", ftypes.ValueType_INT32)),
			{FeatureViewName: "user_txn", FeatureViewNameAlias: "txn", FeatureColumns: []*core.FeatureSpecV2{feat("amount", ftypes.ValueType_DOUBLE)}},
			{FeatureViewName: "user_stats", JoinKeyMap: map[string]string{"user_id": "payer_id"}, FeatureColumns: []*core.FeatureSpecV2{feat("spend", ftypes.ValueType_DOUBLE)}},
			projection("spend_ratio", feat("ratio", ftypes.ValueType_DOUBLE)),
			projection("clicks_python", feat("double_clicks", ftypes.ValueType_INT64)),
			projection("bq_view", feat("orders_7d", ftypes.ValueType_INT64)),
		},
		LoggingConfig: &core.LoggingConfig{SampleRate: 1}}}
	onlyBQ := &core.FeatureService{Spec: &core.FeatureServiceSpec{Name: "warehouse_only", Project: p,
		Features: []*core.FeatureViewProjection{projection("bq_view", feat("orders_7d", ftypes.ValueType_INT64))}}}

	return &core.Registry{
		RegistrySchemaVersion: "1",
		Projects:              []*core.Project{{Spec: &core.ProjectSpec{Name: p, Description: "The shop."}}, {Spec: &core.ProjectSpec{Name: "other"}}},
		Entities: []*core.Entity{
			{Spec: &core.EntitySpecV2{Name: "user", Project: p, JoinKey: "user_id", Description: "A customer.", Owner: "growth@shop", Tags: map[string]string{"tier": "1"}}},
			{Spec: &core.EntitySpecV2{Name: "merchant", Project: p, JoinKey: "merchant_id"}},
			{Spec: &core.EntitySpecV2{Name: "location", Project: p, JoinKey: "lat", ValueType: ftypes.ValueType_DOUBLE}},
			{Spec: &core.EntitySpecV2{Name: "orphan", Project: p, JoinKey: "orphan_id"}},
			{Spec: &core.EntitySpecV2{Name: "driver-v2", Project: p, JoinKey: "driver_id", ValueType: ftypes.ValueType_STRING}},
			{Spec: &core.EntitySpecV2{Name: "driver_v2", Project: p, JoinKey: "driver_id", ValueType: ftypes.ValueType_STRING}},
			{Spec: &core.EntitySpecV2{Name: dummyEntity, Project: p, JoinKey: "__dummy_id"}},
			{Spec: &core.EntitySpecV2{Name: "user", Project: "other", JoinKey: "user_id", ValueType: ftypes.ValueType_STRING}},
		},
		DataSources: []*core.DataSource{users, outside, mapped, delta, s3, bq, snow, redshift, push, kafka, protoStream, request,
			{Name: "users_src", Project: "other", Type: core.DataSource_BATCH_FILE, TimestampField: "ts", Options: &core.DataSource_FileOptions_{FileOptions: &core.DataSource_FileOptions{Uri: "x.parquet"}}}},
		FeatureViews: []*core.FeatureView{userStats, merchant, txn, transformed, entityless, view("bq_view", bq, []string{"user"}, feat("orders_7d", ftypes.ValueType_INT64))},
		StreamFeatureViews: []*core.StreamFeatureView{
			{Spec: &core.StreamFeatureViewSpec{Name: "clicks_live", Project: p, Entities: []string{"user"}, Features: []*core.FeatureSpecV2{feat("clicks", ftypes.ValueType_INT64)},
				StreamSource: kafka, BatchSource: kafka.GetBatchSource(), Online: true, Ttl: durationpb.New(time.Hour)}},
			{Spec: &core.StreamFeatureViewSpec{Name: "clicks_1h", Project: p, Entities: []string{"user"}, Features: []*core.FeatureSpecV2{feat("clicks_sum", ftypes.ValueType_INT64)},
				StreamSource: kafka, Aggregations: []*core.Aggregation{{Column: "clicks", Function: "sum", TimeWindow: durationpb.New(time.Hour)}}}},
		},
		OnDemandFeatureViews: []*core.OnDemandFeatureView{ratio, pythonMode, numpy},
		FeatureServices:      []*core.FeatureService{service, onlyBQ},
		LabelViews:           []*core.LabelView{{Spec: &core.LabelViewSpec{Name: "chargebacks", Project: p}}},
		SavedDatasets:        []*core.SavedDataset{{Spec: &core.SavedDatasetSpec{Name: "training_2026", Project: p}}},
		Permissions:          []*core.Permission{{Spec: &core.PermissionSpec{Name: "readers", Project: p}}},
	}
}

// reportLines renders the report one item a line, for golden files.
func reportLines(items []Item) string {
	var b strings.Builder
	for _, it := range items {
		fmt.Fprintf(&b, "%s %s %s [%s]: %s\n", it.Action, it.Kind, it.Name, it.Field, it.Reason)
		if it.Suggestion != "" {
			for _, l := range strings.Split(it.Suggestion, "\n") {
				fmt.Fprintf(&b, "    → %s\n", l)
			}
		}
	}
	return b.String()
}

// TestImportKitchenSink converts a registry holding one of nearly everything and checks the
// definitions and the report against golden files, that nothing of the project is dropped
// without a report item, and that the written YAML reads back to the same definitions.
func TestImportKitchenSink(t *testing.T) {
	repo := feastRepo(t, "", kitchenSink())
	out := filepath.Join(filepath.Dir(repo), "quiver_repo")
	res, err := Import(Options{Repo: repo, Out: out})
	require.NoError(t, err)
	require.Equal(t, "shop", res.Project)
	require.Equal(t, []string{"../../lake", "../feature_repo/data"}, res.AllowedPaths)

	files, err := res.Files()
	require.NoError(t, err)
	golden(t, "kitchen_sink.yaml", string(files[res.DefinitionsFile()]))
	golden(t, "kitchen_sink_quiver.yaml", string(files[QuiverConfigFile]))
	golden(t, "kitchen_sink_report.txt", reportLines(res.Report))

	// Every object of the project is either converted or in the report; the other project's
	// are neither.
	converted := map[string]bool{}
	for _, o := range res.Objects {
		converted[o.ObjectName()] = true
	}
	reported := map[string]bool{}
	for _, it := range res.Report {
		reported[it.Name] = true
		require.NotEqual(t, "other", it.Name)
	}
	reg := kitchenSink()
	var names []string
	for _, e := range reg.GetEntities() {
		if e.GetSpec().GetProject() == "shop" && e.GetSpec().GetName() != dummyEntity {
			names = append(names, e.GetSpec().GetName())
		}
	}
	for _, d := range reg.GetDataSources() {
		if d.GetProject() == "shop" {
			names = append(names, d.GetName())
		}
	}
	for _, v := range reg.GetFeatureViews() {
		names = append(names, v.GetSpec().GetName())
	}
	for _, v := range reg.GetStreamFeatureViews() {
		names = append(names, v.GetSpec().GetName())
	}
	for _, v := range reg.GetOnDemandFeatureViews() {
		names = append(names, v.GetSpec().GetName())
	}
	for _, s := range reg.GetFeatureServices() {
		names = append(names, s.GetSpec().GetName())
	}
	for _, n := range names {
		require.True(t, converted[n] || reported[n] || converted[sanitize(n)], "Feast object %q is neither converted nor reported", n)
	}

	// Round trip: the written file parses and validates to exactly the converted objects.
	parsed, err := definitions.Parse(res.DefinitionsFile(), files[res.DefinitionsFile()])
	require.NoError(t, err)
	require.Len(t, parsed.Objects, len(res.Objects))
	want := map[string]string{}
	for _, o := range res.Objects {
		spec, err := definitions.Spec(o)
		require.NoError(t, err)
		want[string(o.ObjectKind())+"/"+o.ObjectName()] = string(spec)
	}
	for _, o := range parsed.Objects {
		spec, err := definitions.Spec(o)
		require.NoError(t, err)
		require.Equal(t, want[string(o.ObjectKind())+"/"+o.ObjectName()], string(spec))
	}
	_, err = definitions.NewRepo(parsed.Objects)
	require.NoError(t, err)
}

// TestImportErrors: input that cannot be imported is refused with an error that names the
// file or object and what would be valid, and is an invalid-input error (exit code 1).
func TestImportErrors(t *testing.T) {
	withProject := &core.Registry{RegistrySchemaVersion: "1", Projects: []*core.Project{{Spec: &core.ProjectSpec{Name: "other"}}},
		Entities: []*core.Entity{{Spec: &core.EntitySpecV2{Name: "user", Project: "other", JoinKey: "user_id"}}}}
	cases := []struct {
		name  string
		setup func(t *testing.T) Options
		is    error
		msg   []string
	}{
		{"not a feast repo", func(t *testing.T) Options { return Options{Repo: t.TempDir()} }, ErrNotFeastRepo,
			[]string{"feature_store.yaml", "feast init"}},
		{"no project", func(t *testing.T) Options {
			return Options{Repo: feastRepo(t, "registry: data/registry.db\n", kitchenSink())}
		}, ErrNotFeastRepo, []string{"no project"}},
		{"object store registry", func(t *testing.T) Options {
			return Options{Repo: feastRepo(t, "project: shop\nregistry: s3://bucket/registry.pb\n", nil)}
		}, ErrRegistry, []string{"s3://bucket/registry.pb", "not a local file", "--registry FILE"}},
		{"sql registry", func(t *testing.T) Options {
			return Options{Repo: feastRepo(t, "project: shop\nregistry:\n  registry_type: sql\n  path: postgresql://u@db/feast\n", nil)}
		}, ErrRegistry, []string{`registry_type "sql"`, "registry_type: file", "--registry FILE"}},
		{"registry env var", func(t *testing.T) Options {
			repo := feastRepo(t, "project: shop\nregistry: ${REG_DIR}/registry.db\n", nil)
			return Options{Repo: repo, Getenv: func(k string) string { return map[string]string{"REG_DIR": "/nowhere"}[k] }}
		}, ErrRegistry, []string{"/nowhere/registry.db does not exist", "feast apply"}},
		{"not applied", func(t *testing.T) Options { return Options{Repo: feastRepo(t, "", nil)} }, ErrRegistry,
			[]string{"registry.db does not exist", "run feast apply"}},
		{"not a registry", func(t *testing.T) Options {
			repo := feastRepo(t, "", nil)
			require.NoError(t, os.WriteFile(filepath.Join(repo, "data", "registry.db"), []byte("project: shop\n"), 0o644))
			return Options{Repo: repo}
		}, ErrRegistry, []string{"is not a Feast registry file"}},
		{"other project only", func(t *testing.T) Options { return Options{Repo: feastRepo(t, "", withProject)} }, ErrRegistry,
			[]string{`no objects of project "shop"`, "it holds projects other"}},
		{"empty registry", func(t *testing.T) Options {
			repo := feastRepo(t, "", nil)
			require.NoError(t, os.WriteFile(filepath.Join(repo, "data", "registry.db"), nil, 0o644))
			return Options{Repo: repo}
		}, ErrRegistry, []string{"holds no objects", "feast apply"}},
		{"registry flag wins", func(t *testing.T) Options {
			return Options{Repo: feastRepo(t, "project: shop\nregistry: s3://b/r.pb\n", nil), Registry: filepath.Join(t.TempDir(), "copy.db")}
		}, ErrRegistry, []string{"copy.db does not exist"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.setup(t)
			opts.Out = t.TempDir()
			_, err := Import(opts)
			require.Error(t, err)
			require.ErrorIs(t, err, tc.is)
			require.ErrorIs(t, err, definitions.ErrInvalid)
			for _, m := range tc.msg {
				require.Contains(t, err.Error(), m)
			}
		})
	}
}

// TestWrite: the definitions file is written atomically and never overwritten without force;
// the same content again is a no-op; quiver.yaml is created once and never rewritten, and
// an existing one is reported when it lacks what the sources need.
func TestWrite(t *testing.T) {
	repo := feastRepo(t, "", kitchenSink())
	out := filepath.Join(filepath.Dir(repo), "quiver_repo")
	res, err := Import(Options{Repo: repo, Out: out})
	require.NoError(t, err)
	paths, err := res.Write(false)
	require.NoError(t, err)
	require.Equal(t, []string{"features/feast_shop.yaml", "quiver.yaml"}, paths)
	entries, err := os.ReadDir(filepath.Join(out, "features"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left")

	// The same import again: nothing changes.
	res2, err := Import(Options{Repo: repo, Out: out})
	require.NoError(t, err)
	require.True(t, res2.ConfigExists)
	_, err = res2.Write(false)
	require.NoError(t, err)

	// An edited definitions file is not overwritten without --force.
	defs := filepath.Join(out, "features", "feast_shop.yaml")
	require.NoError(t, os.WriteFile(defs, []byte("# mine\n"), 0o644))
	_, err = res2.Write(false)
	require.ErrorIs(t, err, ErrExists)
	require.Contains(t, err.Error(), "--force")
	b, err := os.ReadFile(defs)
	require.NoError(t, err)
	require.Equal(t, "# mine\n", string(b))
	_, err = res2.Write(true)
	require.NoError(t, err)
	b, err = os.ReadFile(defs)
	require.NoError(t, err)
	require.Contains(t, string(b), "name: user_stats")

	// An existing quiver.yaml without the allowed paths or the features directory: reported,
	// never rewritten.
	cfg := filepath.Join(out, QuiverConfigFile)
	require.NoError(t, os.WriteFile(cfg, []byte("project: shop\ndefinitions: [defs]\n"), 0o644))
	res3, err := Import(Options{Repo: repo, Out: out})
	require.NoError(t, err)
	var manual []string
	for _, it := range res3.Report {
		if it.Kind == "quiver.yaml" {
			manual = append(manual, it.Field+": "+it.Suggestion)
		}
	}
	require.Equal(t, []string{"definitions: add features to definitions: in quiver.yaml", "allowed_paths: add allowed_paths: [../../lake, ../feature_repo/data] to quiver.yaml"}, manual)
	_, err = res3.Write(true)
	require.NoError(t, err)
	b, err = os.ReadFile(cfg)
	require.NoError(t, err)
	require.Equal(t, "project: shop\ndefinitions: [defs]\n", string(b))
}

// The kitchen-sink registry as Feast writes it (registry.db), for tests of other packages that
// need a Feast repository without Feast (cmd/quiver's dry-run test). Rewritten with -update.
func TestKitchenSinkRegistryFile(t *testing.T) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(kitchenSink())
	require.NoError(t, err)
	golden(t, "kitchen_sink_registry.db", string(b))
}
