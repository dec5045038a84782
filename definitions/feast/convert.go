package feast

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/quiverfs/quiver/definitions"
	core "github.com/quiverfs/quiver/definitions/feast/internal/proto/feast/core"
	ftypes "github.com/quiverfs/quiver/definitions/feast/internal/proto/feast/types"
)

// Options say what to import and for which Quiver feature repo.
type Options struct {
	// Repo is the Feast repository: the directory holding feature_store.yaml.
	Repo string
	// Registry, when not empty, is the registry file to read instead of the one
	// feature_store.yaml names (a copy of a registry kept in an object store).
	Registry string
	// Out is the Quiver feature repo the definitions are written for: Parquet paths are made
	// relative to it. Empty means the current directory.
	Out string
	// Getenv expands ${VAR} in feature_store.yaml's registry path, as Feast does; nil reads
	// no variables.
	Getenv func(string) string
}

// Action says what became of a Feast object or option that is in the report.
type Action string

// The actions of report items.
const (
	// Skipped: not converted; the object or option is absent from the Quiver definitions.
	Skipped Action = "skipped"
	// Changed: converted, with a meaning that differs as the reason says.
	Changed Action = "changed"
	// Translated: a Python transformation translated to CEL; review the expressions.
	Translated Action = "translated"
	// Manual: converted, but something must be done by hand for it to work as in Feast.
	Manual Action = "manual"
)

// Item is one entry of the report: a Feast object (or one option or feature of it) that was
// not converted, or not converted as it was.
type Item struct {
	// Kind is the Feast kind: entity, data_source, request_source, feature_view,
	// stream_feature_view, on_demand_feature_view, feature_service, label_view, ...,
	// or feature_store.yaml for a setting of that file.
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Field is the option, feature or setting concerned; empty for the whole object.
	Field      string `json:"field,omitempty"`
	Action     Action `json:"action"`
	Reason     string `json:"reason"`
	Suggestion string `json:"suggestion,omitempty"`
}

// Result is a converted Feast project.
type Result struct {
	// Project is the Feast project's name, also the Quiver project's.
	Project string
	// FeastRepo and Registry are the Feast repository and the registry file read (absolute).
	FeastRepo string
	Registry  string
	// Out is the Quiver feature repo (absolute) the definitions are for.
	Out string
	// Objects are the converted definitions in dependency order; Repo is them, validated.
	Objects []definitions.Object
	Repo    *definitions.Repo
	// AllowedPaths are the directories outside Out the Parquet sources read, relative to Out:
	// quiver.yaml's allowed_paths must hold them.
	AllowedPaths []string
	// ConfigExists is whether Out already has a quiver.yaml (Write leaves it alone).
	ConfigExists bool
	// Report is everything not converted as it was, in registry order.
	Report []Item
}

// dummyEntity is the entity Feast gives entity-less feature views.
const dummyEntity = "__dummy"

// Import reads a Feast repository's registry and converts its project. Every Feast object
// that is not converted, or not converted as it was, is in the result's report. The error is
// for input that cannot be imported at all (no feature_store.yaml, a registry that is not a
// local file or not a registry, a project with no objects); it wraps definitions.ErrInvalid.
func Import(opts Options) (*Result, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	repo, err := filepath.Abs(opts.Repo)
	if err != nil {
		return nil, fmt.Errorf("resolve feast repository %s: %w", opts.Repo, err)
	}
	out, err := filepath.Abs(opts.Out)
	if err != nil {
		return nil, fmt.Errorf("resolve output directory %s: %w", opts.Out, err)
	}
	cfg, err := readStoreConfig(repo, opts.Registry, getenv)
	if err != nil {
		return nil, err
	}
	reg, err := readRegistry(cfg.Registry)
	if err != nil {
		return nil, err
	}
	if !definitions.ValidName(cfg.Project) {
		return nil, fmt.Errorf("%w: feast project %q is not a valid Quiver project name: use letters, digits and '_'", ErrNotFeastRepo, cfg.Project)
	}
	c := &converter{
		res:      &Result{Project: cfg.Project, FeastRepo: repo, Registry: cfg.Registry, Out: out},
		reg:      reg,
		project:  cfg.Project,
		names:    map[definitions.Kind]map[string]string{},
		sources:  map[string]*definitions.Source{},
		requests: map[string]*definitions.RequestSource{},
		views:    map[string]*definitions.FeatureView{},
		odfvs:    map[string]*definitions.OnDemandFeatureView{},
		allowed:  map[string]bool{},
	}
	if err := c.checkProject(); err != nil {
		return nil, err
	}
	c.storeConfig(cfg)
	c.readQuiverConfig()
	c.entities()
	c.dataSources()
	c.featureViews()
	c.streamFeatureViews()
	c.onDemandViews()
	c.featureServices()
	c.unconverted()
	for p := range c.allowed {
		c.res.AllowedPaths = append(c.res.AllowedPaths, p)
	}
	sort.Strings(c.res.AllowedPaths)
	c.configItems()
	c.res.Objects = c.objects
	r, err := definitions.NewRepo(c.objects)
	if err != nil {
		// A conversion that does not validate is a bug of this package, not of the input.
		return nil, fmt.Errorf("the converted definitions do not validate (please report this with the registry): %w", err)
	}
	c.res.Repo = r
	return c.res, nil
}

type converter struct {
	res     *Result
	reg     *core.Registry
	project string
	objects []definitions.Object
	// names maps each kind's Feast names to the Quiver names they became.
	names    map[definitions.Kind]map[string]string
	entityOK map[string]definitions.Field // converted entity (Feast name) -> its join key
	sources  map[string]*definitions.Source
	requests map[string]*definitions.RequestSource
	views    map[string]*definitions.FeatureView         // by Feast name
	odfvs    map[string]*definitions.OnDemandFeatureView // by Feast name
	allowed  map[string]bool
	// quiverDefs is quiver.yaml's definitions setting when the file exists.
	quiverDefs    []string
	quiverAllowed []string
}

func (c *converter) report(kind, name, field string, a Action, reason, suggestion string) {
	c.res.Report = append(c.res.Report, Item{Kind: kind, Name: name, Field: field, Action: a, Reason: reason, Suggestion: suggestion})
}

// checkProject refuses a registry without objects of the project.
func (c *converter) checkProject() error {
	seen := map[string]bool{}
	mine := false
	note := func(p string) {
		seen[p] = true
		mine = mine || p == c.project
	}
	for _, p := range c.reg.GetProjects() {
		note(p.GetSpec().GetName())
	}
	for _, e := range c.reg.GetEntities() {
		note(e.GetSpec().GetProject())
	}
	for _, v := range c.reg.GetFeatureViews() {
		note(v.GetSpec().GetProject())
	}
	if mine {
		return nil
	}
	var names []string
	for p := range seen {
		names = append(names, p)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return fmt.Errorf("%w: registry %s holds no objects: run feast apply in %s first", ErrRegistry, c.res.Registry, c.res.FeastRepo)
	}
	return fmt.Errorf("%w: registry %s holds no objects of project %q (feature_store.yaml's project); it holds projects %s", ErrRegistry, c.res.Registry, c.project, strings.Join(names, ", "))
}

// name returns the Quiver name for a Feast object's name: the same when valid, else made
// valid (and unique within its kind), with a report item.
func (c *converter) name(k definitions.Kind, feastKind, name string) string {
	m := c.names[k]
	if m == nil {
		m = map[string]string{}
		c.names[k] = m
	}
	if q, ok := m[name]; ok {
		return q
	}
	q := name
	if valid := definitions.ValidName(q); !valid || taken(m, q) {
		base := sanitize(name)
		q = base
		for i := 2; taken(m, q); i++ {
			q = fmt.Sprintf("%s_%d", base[:min(len(base), 58)], i)
		}
		why := "Quiver names start with a letter or '_' and hold only letters, digits and '_' (at most 63)"
		if valid {
			why = fmt.Sprintf("another Feast %s was renamed %q", feastKind, name)
		}
		c.report(feastKind, name, "name", Changed, fmt.Sprintf("renamed to %q: %s", q, why), "")
	}
	m[name] = q
	return q
}

func taken(m map[string]string, q string) bool {
	for _, v := range m {
		if v == q {
			return true
		}
	}
	return false
}

func sanitize(s string) string {
	var b strings.Builder
	for i, r := range s {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if i == 0 && r >= '0' && r <= '9' {
			b.WriteByte('_')
			ok = true
		}
		if ok {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out == "" {
		out = "_"
	}
	if len(out) > 63 {
		out = out[:63]
	}
	return out
}

// tags merges Feast's owner into the tags, as tag owner.
func (c *converter) tags(kind, name string, tags map[string]string, owner string) map[string]string {
	if len(tags) == 0 && owner == "" {
		return nil
	}
	out := make(map[string]string, len(tags)+1)
	for k, v := range tags {
		out[k] = v
	}
	if owner != "" {
		switch prev, ok := out["owner"]; {
		case !ok:
			out["owner"] = owner
		case prev != owner:
			out["feast_owner"] = owner
			c.report(kind, name, "owner", Changed, fmt.Sprintf("the owner %q is kept as tag feast_owner: the object already has a tag owner (%q)", owner, prev), "")
		}
	}
	return out
}

func (c *converter) storeConfig(cfg *storeConfig) {
	const kind = "feature_store.yaml"
	c.report(kind, cfg.Project, "online_store", Skipped,
		fmt.Sprintf("online store %q: Quiver's online store is set in quiver.yaml, not by the definitions", cfg.OnlineStore),
		"online: sqlite://.quiver/online.db (embedded, the default) or redis://HOST:6379/0 in quiver.yaml")
	c.report(kind, cfg.Project, "offline_store", Skipped,
		fmt.Sprintf("offline store %q: Quiver reads sources only when materializing, into its own offline store (Iceberg tables), which dataset create joins; see docs/from-feast.md, history backfill", cfg.OfflineStore),
		"quiver materialize --start T --end T over the history you train on")
	if cfg.Provider != "" {
		c.report(kind, cfg.Project, "provider", Skipped, fmt.Sprintf("provider %q has no equivalent: Quiver's stores are chosen in quiver.yaml", cfg.Provider), "")
	}
	for _, k := range cfg.Other {
		why := "no equivalent in quiver.yaml"
		sug := ""
		switch k {
		case "auth":
			why = "Feast's authentication has no equivalent in the definitions"
			sug = "quiver serve's TLS, JWT and policy: quiver.yaml serving: (docs/security.md)"
		case "entity_key_serialization_version":
			why = "Feast's online key encoding; Quiver has one online format (docs/online-format.md)"
		case "feature_server":
			sug = "quiver serve (docs/serving.md)"
		}
		c.report(kind, cfg.Project, k, Skipped, k+": "+why, sug)
	}
	for _, p := range c.reg.GetProjects() {
		if p.GetSpec().GetName() == c.project && p.GetSpec().GetDescription() != "" {
			c.report("project", c.project, "description", Skipped, "a project description has no place in quiver.yaml", "")
		}
	}
}

// quiverConfigKeys are the quiver.yaml keys the import looks at when the file exists.
type quiverConfigKeys struct {
	Definitions  []string `yaml:"definitions"`
	AllowedPaths []string `yaml:"allowed_paths"`
}

func (c *converter) readQuiverConfig() {
	data, err := os.ReadFile(filepath.Join(c.res.Out, QuiverConfigFile))
	if err != nil {
		return
	}
	c.res.ConfigExists = true
	var k quiverConfigKeys
	if yamlUnmarshalLenient(data, &k) == nil {
		c.quiverDefs = k.Definitions
		c.quiverAllowed = k.AllowedPaths
	}
}

// configItems reports what an existing quiver.yaml lacks for the imported definitions.
func (c *converter) configItems() {
	if !c.res.ConfigExists {
		return
	}
	if len(c.quiverDefs) > 0 && !slices.ContainsFunc(c.quiverDefs, func(d string) bool {
		d = filepath.ToSlash(filepath.Clean(d))
		return d == "." || d == DefinitionsDir || strings.HasPrefix(DefinitionsDir+"/", d+"/")
	}) {
		c.report("quiver.yaml", c.project, "definitions", Manual,
			fmt.Sprintf("quiver.yaml's definitions (%s) do not include %s/, where the definitions are written", strings.Join(c.quiverDefs, ", "), DefinitionsDir),
			fmt.Sprintf("add %s to definitions: in quiver.yaml", DefinitionsDir))
	}
	var missing []string
	for _, p := range c.res.AllowedPaths {
		if !slices.ContainsFunc(c.quiverAllowed, func(a string) bool {
			return filepath.Clean(a) == p || within(filepath.Join(c.res.Out, a), filepath.Join(c.res.Out, p))
		}) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		c.report("quiver.yaml", c.project, "allowed_paths", Manual,
			"the Feast sources' Parquet files are outside the Quiver repo, and quiver.yaml exists (it is not rewritten)",
			fmt.Sprintf("add allowed_paths: [%s] to quiver.yaml", strings.Join(missing, ", ")))
	}
}

func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// entities converts every entity of the project but Feast's __dummy. A join key's type is the
// entity's value_type, or where Feast left it unset, the type feast apply inferred for the
// column in the feature views that use the entity.
func (c *converter) entities() {
	inferred := map[string][]ftypes.ValueType_Enum{} // join key -> types seen
	addCols := func(cols []*core.FeatureSpecV2) {
		for _, col := range cols {
			inferred[col.GetName()] = append(inferred[col.GetName()], col.GetValueType())
		}
	}
	for _, v := range c.reg.GetFeatureViews() {
		if v.GetSpec().GetProject() == c.project {
			addCols(v.GetSpec().GetEntityColumns())
		}
	}
	for _, v := range c.reg.GetStreamFeatureViews() {
		if v.GetSpec().GetProject() == c.project {
			addCols(v.GetSpec().GetEntityColumns())
		}
	}
	c.entityOK = map[string]definitions.Field{}
	for _, e := range c.reg.GetEntities() {
		s := e.GetSpec()
		if s.GetProject() != c.project || s.GetName() == dummyEntity {
			continue
		}
		const kind = "entity"
		key := s.GetJoinKey()
		if key == "" {
			key = s.GetName()
		}
		if !definitions.ValidName(key) || slices.Contains(definitions.ReservedColumns, key) {
			c.report(kind, s.GetName(), "join_key", Skipped, fmt.Sprintf("join key %q is not a valid Quiver column name (letters, digits and '_', not %s)", key, strings.Join(definitions.ReservedColumns, ", ")), "rename the column in the data and the entity")
			continue
		}
		vt := s.GetValueType()
		if vt == ftypes.ValueType_INVALID || vt == ftypes.ValueType_NULL {
			seen := slices.Compact(slices.Sorted(slices.Values(inferred[key])))
			switch len(seen) {
			case 0:
				c.report(kind, s.GetName(), "value_type", Skipped,
					fmt.Sprintf("the entity has no value_type and no feature view uses it, so the type of join key %q is unknown", key),
					"declare value_type on the Feast entity, or write the entity by hand: join_keys: [{ name: "+key+", type: int64 }]")
				continue
			case 1:
				vt = seen[0]
			default:
				c.report(kind, s.GetName(), "value_type", Skipped,
					fmt.Sprintf("the entity has no value_type and feature views give join key %q different types (%v)", key, seen),
					"declare value_type on the Feast entity")
				continue
			}
		}
		t, changed, ok, why := valueType(vt)
		if !ok || t.Array || t.Elem == definitions.Float32 || t.Elem == definitions.Float64 {
			if ok {
				why = fmt.Sprintf("a join key of type %s; Quiver join keys are int32, int64, string, bytes, bool or timestamp", t)
			}
			c.report(kind, s.GetName(), "value_type", Skipped, why, "")
			continue
		}
		if changed != "" {
			c.report(kind, s.GetName(), "value_type", Changed, changed, "")
		}
		name := c.name(definitions.KindEntity, kind, s.GetName())
		field := definitions.Field{Name: key, Type: t}
		c.entityOK[s.GetName()] = field
		c.objects = append(c.objects, &definitions.Entity{
			Name: name, JoinKeys: []definitions.Field{field}, Description: s.GetDescription(),
			Tags: c.tags(kind, s.GetName(), s.GetTags(), s.GetOwner()),
		})
	}
}

// dataSources converts every named data source of the project: file, push and Kafka sources
// to sources, request sources to request sources; sources embedded in feature views are
// converted when the views are.
func (c *converter) dataSources() {
	for _, ds := range c.reg.GetDataSources() {
		if ds.GetProject() != c.project {
			continue
		}
		if ds.GetType() == core.DataSource_REQUEST_SOURCE {
			c.requestSource(ds)
			continue
		}
		c.source(ds)
	}
}

// source converts one data source, once per name; nil when it cannot be (reported once).
func (c *converter) source(ds *core.DataSource) *definitions.Source {
	key := ds.GetName()
	if s, ok := c.sources[key]; ok {
		return s
	}
	s := c.convertSource(ds)
	c.sources[key] = s
	if s != nil {
		c.objects = append(c.objects, s)
	}
	return s
}

func sourceLabel(ds *core.DataSource) string {
	if ds.GetName() != "" {
		return ds.GetName()
	}
	return "(unnamed)"
}

// warehouse names the warehouse sources with no Quiver equivalent, for the report.
var warehouse = map[core.DataSource_SourceType]string{
	core.DataSource_BATCH_BIGQUERY:  "BigQuery",
	core.DataSource_BATCH_SNOWFLAKE: "Snowflake",
	core.DataSource_BATCH_REDSHIFT:  "Redshift",
	core.DataSource_BATCH_SPARK:     "Spark",
	core.DataSource_BATCH_ATHENA:    "Athena",
	core.DataSource_BATCH_TRINO:     "Trino",
	core.DataSource_BATCH_ICEBERG:   "Iceberg",
	core.DataSource_STREAM_KINESIS:  "Kinesis",
	core.DataSource_CUSTOM_SOURCE:   "custom",
}

func (c *converter) convertSource(ds *core.DataSource) *definitions.Source {
	const kind = "data_source"
	label := sourceLabel(ds)
	if ds.GetName() == "" {
		c.report(kind, label, "", Skipped, "the data source has no name", "name it in Feast and run feast apply again")
		return nil
	}
	s := &definitions.Source{
		Name:                  c.name(definitions.KindSource, kind, ds.GetName()),
		TimestampField:        ds.GetTimestampField(),
		CreatedTimestampField: ds.GetCreatedTimestampColumn(),
		Description:           ds.GetDescription(),
		Tags:                  c.tags(kind, ds.GetName(), ds.GetTags(), ds.GetOwner()),
	}
	if b := ds.GetBatchSource(); b != nil && ds.GetType() == core.DataSource_PUSH_SOURCE {
		// Pushed rows carry the batch source's columns (Feast writes them there).
		if s.TimestampField == "" {
			s.TimestampField = b.GetTimestampField()
		}
		if s.CreatedTimestampField == "" {
			s.CreatedTimestampField = b.GetCreatedTimestampColumn()
		}
	}
	switch ds.GetType() {
	case core.DataSource_BATCH_FILE:
		fo := ds.GetFileOptions()
		if fo.GetFileFormat().GetDeltaFormat() != nil { //nolint:staticcheck // registries written by Feast before TableFormat hold it here
			c.report(kind, label, "file_format", Skipped, "a Delta Lake table: Quiver reads Parquet files, Iceberg tables and Trino queries", "read it through Trino (trino: { table: ... }) or export it to Parquet")
			return nil
		}
		uri := fo.GetUri()
		if scheme, rest, ok := strings.Cut(uri, "://"); ok {
			if scheme != "file" {
				c.report(kind, label, "path", Skipped, fmt.Sprintf("%s is not a local path: a Quiver Parquet source reads local files", uri), "copy the files into (or next to) the repository, or read them through Trino")
				return nil
			}
			uri = rest
		}
		if fo.GetS3EndpointOverride() != "" {
			c.report(kind, label, "s3_endpoint_override", Skipped, "no equivalent for a local Parquet source", "")
		}
		path := uri
		if !filepath.IsAbs(path) {
			path = filepath.Join(c.res.FeastRepo, path)
		}
		rel, err := filepath.Rel(c.res.Out, path)
		if err != nil {
			rel = path
		}
		if !within(c.res.Out, path) {
			dir := rel
			if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
				dir = filepath.Dir(rel)
			}
			c.allowed[filepath.ToSlash(dir)] = true
		}
		s.Parquet = &definitions.ParquetSource{Path: filepath.ToSlash(rel)}
	case core.DataSource_PUSH_SOURCE:
		s.Push = &definitions.PushSource{}
		if b := ds.GetBatchSource(); b != nil {
			c.report(kind, label, "batch_source", Manual,
				fmt.Sprintf("Feast writes pushed rows to batch source %q and materializes and joins history from it; a Quiver push source receives pushed rows only", sourceLabel(b)),
				"backfill the history with quiver push VIEW FILE (FILE holding the view's join keys, its features and "+s.TimestampField+"); see docs/from-feast.md, history backfill")
		}
	case core.DataSource_STREAM_KAFKA:
		k := c.kafka(ds, label)
		if k == nil {
			return nil
		}
		s.Kafka = k
	case core.DataSource_REQUEST_SOURCE:
		return nil // converted by requestSource
	default:
		what := warehouse[ds.GetType()]
		if what == "" {
			what = ds.GetType().String()
		}
		c.report(kind, label, "", Skipped, fmt.Sprintf("a %s source: Quiver reads Parquet files, Iceberg tables, Trino queries, pushed rows and Kafka topics", what), warehouseSuggestion(ds))
		return nil
	}
	if s.TimestampField == "" {
		c.report(kind, label, "timestamp_field", Skipped, "the source has no timestamp_field; Quiver needs the column holding each row's event time", "set timestamp_field in Feast")
		return nil
	}
	if fm := ds.GetFieldMapping(); len(fm) > 0 && s.Kafka == nil {
		c.report(kind, label, "field_mapping", Manual,
			fmt.Sprintf("columns are renamed (%s); a Quiver %s source reads the columns by their feature names", mappingText(fm), s.SourceType()),
			"rename the columns in the data (or select them AS the feature names in a Trino query)")
	}
	if ds.GetDatePartitionColumn() != "" {
		c.report(kind, label, "date_partition_column", Skipped, "a partition pruning hint; Quiver prunes Parquet row groups by the timestamp column's statistics", "")
	}
	return s
}

func mappingText(m map[string]string) string {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " → " + m[k]
	}
	return strings.Join(parts, ", ")
}

func warehouseSuggestion(ds *core.DataSource) string {
	table, query := "", ""
	switch {
	case ds.GetBigqueryOptions() != nil:
		table, query = ds.GetBigqueryOptions().GetTable(), ds.GetBigqueryOptions().GetQuery()
	case ds.GetSnowflakeOptions() != nil:
		o := ds.GetSnowflakeOptions()
		table, query = strings.Trim(strings.Join([]string{o.GetDatabase(), o.GetSchema(), o.GetTable()}, "."), "."), o.GetQuery()
	case ds.GetRedshiftOptions() != nil:
		o := ds.GetRedshiftOptions()
		table, query = strings.Trim(strings.Join([]string{o.GetDatabase(), o.GetSchema(), o.GetTable()}, "."), "."), o.GetQuery()
	case ds.GetTrinoOptions() != nil:
		table, query = ds.GetTrinoOptions().GetTable(), ds.GetTrinoOptions().GetQuery()
	case ds.GetAthenaOptions() != nil:
		table, query = ds.GetAthenaOptions().GetTable(), ds.GetAthenaOptions().GetQuery()
	case ds.GetSparkOptions() != nil:
		table, query = ds.GetSparkOptions().GetTable(), ds.GetSparkOptions().GetQuery()
	}
	switch {
	case query != "":
		return fmt.Sprintf("expose the data to Trino and declare trino: { query: %q } (in Trino's SQL dialect), or export it to Parquet", query)
	case table != "":
		return fmt.Sprintf("expose table %s to Trino and declare trino: { table: ... }, or export it to Parquet", table)
	}
	return "declare a parquet, iceberg or trino source with the same columns"
}

func (c *converter) kafka(ds *core.DataSource, label string) *definitions.KafkaSource {
	const kind = "data_source"
	o := ds.GetKafkaOptions()
	k := &definitions.KafkaSource{Topic: o.GetTopic()}
	for _, b := range strings.Split(o.GetKafkaBootstrapServers(), ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if _, port, ok := strings.Cut(b, ":"); !ok || port == "" {
			c.report(kind, label, "kafka_bootstrap_servers", Changed, fmt.Sprintf("broker %q has no port; written as %s:9092", b, b), "")
			b += ":9092"
		}
		k.Brokers = append(k.Brokers, b)
	}
	if len(k.Brokers) == 0 || k.Topic == "" {
		c.report(kind, label, "kafka_options", Skipped, "the Kafka source has no bootstrap servers or no topic", "")
		return nil
	}
	f := o.GetMessageFormat()
	switch {
	case f.GetAvroFormat() != nil:
		k.Format = definitions.KafkaAvro
		k.Schema = f.GetAvroFormat().GetSchemaJson()
		if k.Schema == "" {
			c.report(kind, label, "message_format", Skipped, "an Avro source without a schema", "")
			return nil
		}
	case f.GetProtoFormat() != nil:
		c.report(kind, label, "message_format", Skipped, fmt.Sprintf("protobuf messages (%s): Quiver reads JSON and Avro messages", f.GetProtoFormat().GetClassPath()), "")
		return nil
	case f.GetJsonFormat() != nil && f.GetJsonFormat().GetSchemaJson() != "":
		c.report(kind, label, "message_format.schema_json", Changed, "Quiver reads JSON messages by field name and checks each field's type against the view; the Spark schema is not needed", "")
	}
	if fm := ds.GetFieldMapping(); len(fm) > 0 {
		k.Fields = map[string]string{}
		for src, feature := range fm {
			k.Fields[feature] = src
		}
	}
	if d := o.GetWatermarkDelayThreshold(); d != nil && d.AsDuration() > 0 {
		c.report(kind, label, "watermark_delay_threshold", Skipped, "Quiver writes every message (the stale-write guard keeps the newest value online); it has no late-data cut-off", "")
	}
	if b := ds.GetBatchSource(); b != nil {
		c.report(kind, label, "batch_source", Manual,
			fmt.Sprintf("Feast materializes and joins this stream's history from batch source %q; Quiver's view receives the stream only", sourceLabel(b)),
			"backfill the history with quiver push VIEW FILE; see docs/from-feast.md, history backfill")
	}
	return k
}

func (c *converter) requestSource(ds *core.DataSource) *definitions.RequestSource {
	key := ds.GetName()
	if r, ok := c.requests[key]; ok {
		return r
	}
	const kind = "request_source"
	r := &definitions.RequestSource{
		Name:        c.name(definitions.KindRequestSource, kind, ds.GetName()),
		Description: ds.GetDescription(),
		Tags:        c.tags(kind, ds.GetName(), ds.GetTags(), ds.GetOwner()),
	}
	schema := ds.GetRequestDataOptions().GetSchema()
	if len(schema) == 0 {
		for name, t := range ds.GetRequestDataOptions().GetDeprecatedSchema() {
			schema = append(schema, &core.FeatureSpecV2{Name: name, ValueType: t})
		}
		sort.Slice(schema, func(i, j int) bool { return schema[i].GetName() < schema[j].GetName() })
	}
	for _, f := range schema {
		t, changed, ok, why := valueType(f.GetValueType())
		switch {
		case !definitions.ValidName(f.GetName()):
			c.report(kind, ds.GetName(), f.GetName(), Skipped, "not a valid Quiver field name (letters, digits and '_')", "")
			continue
		case !ok:
			c.report(kind, ds.GetName(), f.GetName(), Skipped, why, "")
			continue
		case t.Array:
			c.report(kind, ds.GetName(), f.GetName(), Skipped, fmt.Sprintf("request fields are scalars; this one is %s", t), "")
			continue
		case changed != "":
			c.report(kind, ds.GetName(), f.GetName(), Changed, changed, "")
		}
		r.Fields = append(r.Fields, definitions.Field{Name: f.GetName(), Type: t, Description: f.GetDescription()})
	}
	if len(r.Fields) == 0 {
		c.report(kind, ds.GetName(), "", Skipped, "no field of the request source could be converted", "")
		r = nil
	}
	c.requests[key] = r
	if r != nil {
		c.objects = append(c.objects, r)
	}
	return r
}

// viewSpec is what feature views, stream feature views and label views share.
type viewSpec struct {
	kind        string
	name        string
	entities    []string
	features    []*core.FeatureSpecV2
	tags        map[string]string
	owner       string
	description string
	ttl         time.Duration
	online      bool
	source      *core.DataSource
	meta        *core.FeatureViewMeta
}

func (c *converter) featureViews() {
	for _, v := range c.reg.GetFeatureViews() {
		s := v.GetSpec()
		if s.GetProject() != c.project {
			continue
		}
		const kind = "feature_view"
		switch {
		case s.GetFeatureTransformation().GetTransformation() != nil:
			c.report(kind, s.GetName(), "feature_transformation", Skipped, "a feature view with a transformation applied when it is materialized; Quiver materializes source columns as they are", "compute the columns in the source (a Trino query), or move the transformation to an on-demand view in CEL")
			continue
		case len(s.GetSourceViews()) > 0:
			c.report(kind, s.GetName(), "source_views", Skipped, "a feature view derived from other feature views has no Quiver equivalent", "")
			continue
		case s.GetDisabled():
			c.report(kind, s.GetName(), "disabled", Skipped, "the feature view is disabled in Feast", "")
			continue
		}
		src := s.GetBatchSource()
		if st := s.GetStreamSource(); st != nil && (st.GetType() == core.DataSource_PUSH_SOURCE || st.GetType() == core.DataSource_STREAM_KAFKA) {
			src = st
		}
		if s.GetEnableValidation() {
			c.report(kind, s.GetName(), "enable_validation", Skipped, "Feast's schema validation on materialization; Quiver checks every materialized and pushed column against the view's types always", "")
		}
		if ver := s.GetVersion(); ver != "" && ver != "latest" {
			c.report(kind, s.GetName(), "version", Skipped, fmt.Sprintf("Feast version %q: Quiver numbers the versions of every applied definition itself (quiver describe view NAME)", ver), "")
		}
		if s.GetOrg() != "" {
			c.report(kind, s.GetName(), "org", Skipped, "no equivalent", "a tag")
		}
		c.view(viewSpec{
			kind: kind, name: s.GetName(), entities: s.GetEntities(), features: s.GetFeatures(), tags: s.GetTags(), owner: s.GetOwner(),
			description: s.GetDescription(), ttl: s.GetTtl().AsDuration(), online: s.GetOnline(), source: src, meta: v.GetMeta(),
		})
	}
}

func (c *converter) streamFeatureViews() {
	for _, v := range c.reg.GetStreamFeatureViews() {
		s := v.GetSpec()
		if s.GetProject() != c.project {
			continue
		}
		const kind = "stream_feature_view"
		if len(s.GetAggregations()) > 0 {
			c.report(kind, s.GetName(), "aggregations", Skipped, "stream aggregations are not converted (Feast's windows and Quiver's tiles differ); Quiver maintains windowed aggregations from a kafka: or push: source", "declare an aggregation view over the stream's kafka: source (docs/aggregations.md)")
			continue
		}
		if s.GetFeatureTransformation().GetTransformation() != nil || s.GetUserDefinedFunction() != nil { //nolint:staticcheck // older registries hold the UDF here
			c.report(kind, s.GetName(), "udf", Skipped, "a Python transformation of the stream; Quiver writes the stream's fields as they are", "")
			continue
		}
		c.view(viewSpec{
			kind: kind, name: s.GetName(), entities: s.GetEntities(), features: s.GetFeatures(), tags: s.GetTags(), owner: s.GetOwner(),
			description: s.GetDescription(), ttl: s.GetTtl().AsDuration(), online: s.GetOnline(), source: s.GetStreamSource(), meta: v.GetMeta(),
		})
	}
}

// view converts a feature view or a stream feature view.
func (c *converter) view(s viewSpec) {
	if s.source == nil {
		c.report(s.kind, s.name, "source", Skipped, "the view has no source", "")
		return
	}
	src := c.source(s.source)
	if src == nil {
		c.report(s.kind, s.name, "source", Skipped, fmt.Sprintf("its source %q was not converted (see data_source %s)", sourceLabel(s.source), sourceLabel(s.source)), "")
		return
	}
	v := &definitions.FeatureView{
		Name:        c.name(definitions.KindFeatureView, s.kind, s.name),
		Source:      src.Name,
		Online:      s.online,
		Description: s.description,
		Tags:        c.tags(s.kind, s.name, s.tags, s.owner),
		Entities:    []string{},
	}
	keys := map[string]bool{}
	for _, e := range s.entities {
		if e == dummyEntity {
			continue
		}
		key, ok := c.entityOK[e]
		if !ok {
			c.report(s.kind, s.name, "entities", Skipped, fmt.Sprintf("its entity %q was not converted (see entity %s)", e, e), "")
			return
		}
		keys[key.Name] = true
		v.Entities = append(v.Entities, c.names[definitions.KindEntity][e])
	}
	if s.ttl > 0 {
		ttl := s.ttl.Truncate(time.Second)
		if ttl != s.ttl {
			c.report(s.kind, s.name, "ttl", Changed, fmt.Sprintf("ttl %s is cut to whole seconds: %s", s.ttl, ttl), "")
		}
		if d, err := definitions.ParseDuration(fmt.Sprintf("%ds", int64(ttl/time.Second))); err == nil {
			v.TTL = d
		} else {
			c.report(s.kind, s.name, "ttl", Changed, fmt.Sprintf("ttl %s: %v; written with no expiry", s.ttl, err), "")
		}
	}
	for _, f := range s.features {
		if ff, ok := c.feature(s.kind, s.name, f, keys); ok {
			v.Features = append(v.Features, ff)
		}
	}
	if len(v.Features) == 0 {
		c.report(s.kind, s.name, "features", Skipped, "no feature of the view could be converted", "")
		return
	}
	c.views[s.name] = v
	c.objects = append(c.objects, v)
	if src.IsPush() {
		return
	}
	var first, last time.Time
	for _, iv := range s.meta.GetMaterializationIntervals() {
		st, en := iv.GetStartTime().AsTime(), iv.GetEndTime().AsTime()
		if first.IsZero() || st.Before(first) {
			first = st
		}
		if en.After(last) {
			last = en
		}
	}
	if !first.IsZero() {
		c.report(s.kind, s.name, "materialization_intervals", Manual,
			fmt.Sprintf("Feast materialized %s to %s; Quiver's stores hold what quiver materialize loads (offline store included)", first.UTC().Format(time.RFC3339), last.UTC().Format(time.RFC3339)),
			fmt.Sprintf("quiver materialize --start %s --end %s %s (from the earliest time you train on, for dataset create)", first.UTC().Format(time.RFC3339), last.UTC().Add(time.Second).Format(time.RFC3339), v.Name))
	}
}

// feature converts one feature of a view; keys are the view's join keys.
func (c *converter) feature(kind, view string, f *core.FeatureSpecV2, keys map[string]bool) (definitions.Field, bool) {
	name := f.GetName()
	where := "features." + name
	switch {
	case !definitions.ValidName(name):
		c.report(kind, view, where, Skipped, "not a valid Quiver feature name (letters, digits and '_', at most 63): the source column must be named as the feature", "rename the column and the feature")
		return definitions.Field{}, false
	case slices.Contains(definitions.ReservedColumns, name):
		c.report(kind, view, where, Skipped, fmt.Sprintf("the name is reserved in Quiver (%s)", strings.Join(definitions.ReservedColumns, ", ")), "rename the column and the feature")
		return definitions.Field{}, false
	case keys[name]:
		c.report(kind, view, where, Skipped, "the feature has the name of one of the view's join keys", "")
		return definitions.Field{}, false
	}
	t, changed, ok, why := valueType(f.GetValueType())
	if !ok {
		c.report(kind, view, where, Skipped, why, "")
		return definitions.Field{}, false
	}
	if changed != "" {
		c.report(kind, view, where, Changed, changed, "")
	}
	var tagKeys []string
	for k := range f.GetTags() {
		if k != "feast:struct_schema" {
			tagKeys = append(tagKeys, k)
		}
	}
	if len(tagKeys) > 0 {
		sort.Strings(tagKeys)
		c.report(kind, view, where+".tags", Skipped, fmt.Sprintf("Quiver features have no tags (%s)", strings.Join(tagKeys, ", ")), "put them in the view's tags or the feature's description")
	}
	if f.GetVectorIndex() || f.GetVectorLength() > 0 {
		c.report(kind, view, where+".vector_index", Skipped, "vector search has no Quiver equivalent; the feature is an array", "")
	}
	return definitions.Field{Name: name, Type: t, Description: f.GetDescription()}, true
}
