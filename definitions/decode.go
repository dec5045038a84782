package definitions

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is the objects declared in one YAML file, in the order they appear.
type File struct {
	Path    string
	Objects []Object
}

// Parse decodes one definitions file. path is used in error positions only. Every problem in
// the file is reported, as an ErrorList; the objects that decoded cleanly are returned too.
// Cross-file checks (references, duplicates) happen in NewRepo.
func Parse(path string, data []byte) (*File, error) {
	d := &decoder{file: path, src: data}
	f := &File{Path: path}
	if len(data) > MaxFileSize {
		return f, ErrorList{fileTooLarge(path, int64(len(data)))}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		d.errs.add(yamlErrorPos(path, err), "%s", yamlErrorMessage(err))
		return f, d.errs.Err()
	}
	if doc.Kind == 0 || len(doc.Content) == 0 { // empty file
		return f, nil
	}
	if n, msg := checkAliases(&doc); n != nil {
		d.errorf(n, "%s", msg)
		return f, d.errs.Err()
	}
	top := resolve(doc.Content[0])
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return f, nil
	}
	keys := make([]string, len(Kinds))
	for i, k := range Kinds {
		keys[i] = k.yamlKey()
	}
	for _, kv := range d.mapping(top, "definitions file", keys) {
		var kind Kind
		for _, k := range Kinds {
			if k.yamlKey() == kv.key {
				kind = k
			}
		}
		if kv.value.Kind == yaml.ScalarNode && kv.value.Tag == "!!null" {
			continue // "models:" with nothing under it
		}
		if kv.value.Kind != yaml.SequenceNode {
			d.errorf(kv.value, "%s must be a list of %ss, got %s", kv.key, kind.Label(), describe(kv.value))
			continue
		}
		for _, item := range kv.value.Content {
			if o := d.object(kind, resolve(item)); o != nil {
				f.Objects = append(f.Objects, o)
			}
		}
	}
	return f, d.errs.Err()
}

type decoder struct {
	file string
	src  []byte // the file's text, to place errors inside expressions (ondemand.go)
	errs ErrorList
}

type keyValue struct {
	key   string
	keyN  *yaml.Node
	value *yaml.Node
}

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Col: n.Column} }

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs.add(d.pos(n), format, args...)
}

// resolve follows aliases, so anchors and merges behave as written.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// DescribeNode says what a YAML node is, for errors ("a list", "the number 3", ...): one
// wording for every decoder of Quiver's YAML (definitions, the serving section).
func DescribeNode(n *yaml.Node) string { return describe(n) }

// ResolveAlias follows a YAML alias to the node it names (at most 100 hops).
func ResolveAlias(n *yaml.Node) *yaml.Node { return resolve(n) }

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing (null)"
		case "!!int":
			return "the number " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return strconv.Quote(n.Value)
	}
	return "an unsupported YAML node"
}

// mapping checks that n is a mapping whose keys are all in allowed, reporting unknown and
// repeated keys, and returns its entries in order.
func (d *decoder) mapping(n *yaml.Node, what string, allowed []string) []keyValue {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping of %s, got %s", what, strings.Join(allowed, ", "), describe(n))
		return nil
	}
	seen := map[string]bool{}
	var out []keyValue
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%s keys must be plain names, got %s", what, describe(k))
			continue
		}
		if k.Tag == "!!merge" {
			d.errorf(k, "YAML merge keys (<<) are not supported in %s; write the keys out", what)
			continue
		}
		known := false
		for _, a := range allowed {
			if a == k.Value {
				known = true
				break
			}
		}
		if !known {
			d.errorf(k, "unknown key %q in %s (valid keys: %s)%s", k.Value, what, strings.Join(allowed, ", "), suggest(k.Value, allowed))
			continue
		}
		if seen[k.Value] {
			d.errorf(k, "key %q appears twice in %s", k.Value, what)
			continue
		}
		seen[k.Value] = true
		out = append(out, keyValue{key: k.Value, keyN: k, value: v})
	}
	return out
}

func (d *decoder) str(kv keyValue, what string) string {
	n := kv.value
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, "%s %s must be a string, got %s", what, kv.key, describe(n))
		return ""
	}
	return n.Value
}

func (d *decoder) integer(kv keyValue, what string) int {
	n := kv.value
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.errorf(n, "%s %s must be a whole number, got %s", what, kv.key, describe(n))
		return 0
	}
	v, err := strconv.ParseInt(n.Value, 0, 32)
	if err != nil {
		d.errorf(n, "%s %s must be a whole number that fits in 32 bits, got %s", what, kv.key, n.Value)
		return 0
	}
	return int(v)
}

func (d *decoder) boolean(kv keyValue, what string) bool {
	n := kv.value
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.errorf(n, "%s %s must be true or false, got %s", what, kv.key, describe(n))
		return false
	}
	return n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
}

func (d *decoder) strList(kv keyValue, what string) []string {
	n := kv.value
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s %s must be a list of strings, got %s", what, kv.key, describe(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		item = resolve(item)
		if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
			d.errorf(item, "%s %s must be a list of strings, got %s in it", what, kv.key, describe(item))
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

func (d *decoder) strMap(kv keyValue, what string) map[string]string {
	n := kv.value
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s %s must be a mapping of strings, got %s", what, kv.key, describe(n))
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			d.errorf(k, "%s %s must map names to plain values", what, kv.key)
			continue
		}
		if _, dup := out[k.Value]; dup {
			d.errorf(k, "key %q appears twice in %s %s", k.Value, what, kv.key)
			continue
		}
		out[k.Value] = v.Value
	}
	return out
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidName reports whether s can name an object, feature or join key: a letter or '_'
// followed by up to 62 letters, digits or '_'. Names end up in Redis keys, Iceberg tables and
// SQL identifiers, so they are kept to this portable set.
func ValidName(s string) bool { return nameRE.MatchString(s) }

const nameRule = "names start with a letter or '_' and contain only letters, digits and '_' (at most 63)"

func (d *decoder) name(kv keyValue, what string) string {
	s := d.str(kv, what)
	if s != "" && !ValidName(s) {
		d.errorf(kv.value, "invalid %s name %q: %s", what, s, nameRule)
	}
	return s
}

func (d *decoder) object(kind Kind, n *yaml.Node) Object {
	what := kind.Label()
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "each item of %s must be a mapping describing one %s, got %s", kind.yamlKey(), what, describe(n))
		return nil
	}
	before := len(d.errs)
	var o Object
	switch kind {
	case KindEntity:
		o = d.entity(n)
	case KindSource:
		o = d.source(n)
	case KindFeatureView:
		o = d.featureView(n)
	case KindFeatureService:
		o = d.featureService(n)
	case KindModel:
		o = d.model(n)
	case KindTrainingJob:
		o = d.trainingJob(n)
	case KindRequestSource:
		o = d.requestSource(n)
	case KindOnDemandView:
		o = d.onDemandView(n)
	}
	if o.ObjectName() == "" {
		if len(d.errs) == before {
			d.errorf(n, "%s has no name; add name: <%s name>", what, what)
		}
		return nil
	}
	return o
}

func (d *decoder) entity(n *yaml.Node) *Entity {
	e := &Entity{Pos: d.pos(n)}
	for _, kv := range d.mapping(n, "entity", []string{"name", "join_keys", "description", "tags"}) {
		switch kv.key {
		case "name":
			e.Name = d.name(kv, "entity")
		case "join_keys":
			e.JoinKeys = d.fields(kv, "join key")
		case "description":
			e.Description = d.str(kv, "entity")
		case "tags":
			e.Tags = d.strMap(kv, "entity")
		}
	}
	if e.Name != "" && e.JoinKeys == nil {
		d.errorf(n, "entity %q has no join_keys; add join_keys: [{ name: %s_id, type: int64 }]", e.Name, e.Name)
	}
	return e
}

// fields decodes a list of { name, type, description } (join keys or features).
func (d *decoder) fields(kv keyValue, what string) []Field {
	n := kv.value
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s must be a list of { name, type } mappings, got %s", kv.key, describe(n))
		return nil
	}
	out := make([]Field, 0, len(n.Content))
	for _, item := range n.Content {
		item = resolve(item)
		f := Field{Pos: d.pos(item)}
		var typ *yaml.Node
		for _, fkv := range d.mapping(item, what, []string{"name", "type", "description"}) {
			switch fkv.key {
			case "name":
				f.Name = d.name(fkv, what)
			case "type":
				typ = fkv.value
				s := d.str(fkv, what)
				if s == "" {
					continue
				}
				t, err := ParseType(s)
				if err != nil {
					d.errorf(fkv.value, "%s %q: %v%s", what, f.Name, err, suggest(s, typeNames()))
					continue
				}
				f.Type = t
			case "description":
				f.Description = d.str(fkv, what)
			}
		}
		if item.Kind != yaml.MappingNode {
			continue
		}
		if f.Name == "" {
			d.errorf(item, "%s has no name", what)
			continue
		}
		if typ == nil {
			d.errorf(item, "%s %q has no type; valid types: %s", what, f.Name, ValidTypes)
		}
		out = append(out, f)
	}
	return out
}

func typeNames() []string {
	var out []string
	for s := Int32; s <= Timestamp; s++ {
		out = append(out, s.String(), "array<"+s.String()+">")
	}
	return out
}

func (d *decoder) source(n *yaml.Node) *Source {
	s := &Source{Pos: d.pos(n)}
	kinds := 0
	for _, kv := range d.mapping(n, "source", []string{"name", "parquet", "iceberg", "trino", "push", "kafka", "timestamp_field", "created_timestamp_field", "description", "tags"}) {
		switch kv.key {
		case "name":
			s.Name = d.name(kv, "source")
		case "parquet":
			kinds++
			s.Parquet = &ParquetSource{}
			for _, p := range d.mapping(kv.value, "parquet source", []string{"path"}) {
				s.Parquet.Path = d.str(p, "parquet source")
				s.Parquet.PathPos = d.pos(p.value)
			}
			if s.Parquet.Path == "" && kv.value.Kind == yaml.MappingNode {
				d.errorf(kv.value, "parquet source needs a path: a file, directory or glob")
			}
		case "iceberg":
			kinds++
			s.Iceberg = &IcebergSource{}
			for _, p := range d.mapping(kv.value, "iceberg source", []string{"table"}) {
				s.Iceberg.Table = d.str(p, "iceberg source")
				if t := s.Iceberg.Table; t != "" && (!strings.Contains(t, ".") || strings.HasPrefix(t, ".") || strings.HasSuffix(t, ".")) {
					d.errorf(p.value, "iceberg table %q must be namespace.table", t)
				}
			}
			if s.Iceberg.Table == "" && kv.value.Kind == yaml.MappingNode {
				d.errorf(kv.value, "iceberg source needs a table: namespace.table")
			}
		case "trino":
			kinds++
			s.Trino = &TrinoSource{}
			for _, p := range d.mapping(kv.value, "trino source", []string{"query", "table"}) {
				switch p.key {
				case "query":
					s.Trino.Query = d.str(p, "trino source")
				case "table":
					s.Trino.Table = d.str(p, "trino source")
				}
			}
			if kv.value.Kind == yaml.MappingNode && (s.Trino.Query == "") == (s.Trino.Table == "") {
				d.errorf(kv.value, "trino source needs exactly one of query or table")
			}
		case "push":
			kinds++
			s.Push = d.pushSource(kv.value)
		case "kafka":
			kinds++
			s.Kafka = d.kafkaSource(kv.value)
		case "timestamp_field":
			s.TimestampField = d.str(kv, "source")
		case "created_timestamp_field":
			s.CreatedTimestampField = d.str(kv, "source")
		case "description":
			s.Description = d.str(kv, "source")
		case "tags":
			s.Tags = d.strMap(kv, "source")
		}
	}
	if s.Name != "" {
		switch {
		case kinds == 0:
			d.errorf(n, "source %q has no kind; add exactly one of parquet, iceberg, trino, push or kafka", s.Name)
		case kinds > 1:
			d.errorf(n, "source %q has %d kinds; a source has exactly one of parquet, iceberg, trino, push or kafka", s.Name, kinds)
		}
		if s.TimestampField == "" {
			d.errorf(n, "source %q has no timestamp_field; name the column holding each row's event time", s.Name)
		}
	}
	return s
}

func (d *decoder) featureView(n *yaml.Node) *FeatureView {
	v := &FeatureView{Pos: d.pos(n), Online: true}
	for _, kv := range d.mapping(n, "feature view", []string{"name", "entities", "source", "ttl", "online", "features", "columns", "aggregations", "description", "tags"}) {
		switch kv.key {
		case "name":
			v.Name = d.name(kv, "feature view")
		case "entities":
			v.Entities = d.strList(kv, "feature view")
		case "source":
			v.Source = d.str(kv, "feature view")
		case "ttl":
			if kv.value.Kind == yaml.ScalarNode && kv.value.Tag == "!!int" && kv.value.Value == "0" {
				continue
			}
			s := d.str(kv, "feature view")
			if s == "" {
				continue
			}
			ttl, err := ParseDuration(s)
			if err != nil {
				d.errorf(kv.value, "feature view ttl: %v", err)
				continue
			}
			v.TTL = ttl
		case "online":
			v.Online = d.boolean(kv, "feature view")
		case "features":
			v.Features = d.fields(kv, "feature")
		case "columns":
			v.Columns = d.fields(kv, "column")
		case "aggregations":
			v.Aggregations = d.aggregations(kv)
		case "description":
			v.Description = d.str(kv, "feature view")
		case "tags":
			v.Tags = d.strMap(kv, "feature view")
		}
	}
	if v.Name != "" {
		if v.Source == "" {
			d.errorf(n, "feature view %q has no source", v.Name)
		}
		if len(v.Aggregations) > 0 || len(v.Columns) > 0 {
			d.finishAggregations(v, n)
		} else if len(v.Features) == 0 {
			d.errorf(n, "feature view %q has no features; add features: [{ name: ..., type: ... }]", v.Name)
		}
		if v.Entities == nil {
			v.Entities = []string{}
		}
	}
	return v
}

func (d *decoder) featureService(n *yaml.Node) *FeatureService {
	s := &FeatureService{Pos: d.pos(n)}
	var refs *yaml.Node
	for _, kv := range d.mapping(n, "feature service", []string{"name", "features", "description", "tags"}) {
		switch kv.key {
		case "name":
			s.Name = d.name(kv, "feature service")
		case "features":
			refs = kv.value
			if kv.value.Kind != yaml.SequenceNode {
				d.errorf(kv.value, "feature service features must be a list of view:feature or view:* references, got %s", describe(kv.value))
				continue
			}
			s.Features = []FeatureRef{}
			for _, item := range kv.value.Content {
				item = resolve(item)
				if item.Kind != yaml.ScalarNode {
					d.errorf(item, "feature reference must be a string view:feature or view:*, got %s", describe(item))
					continue
				}
				ref, err := ParseFeatureRef(item.Value)
				if err != nil {
					d.errorf(item, "%v", err)
					continue
				}
				s.Features = append(s.Features, ref)
			}
		case "description":
			s.Description = d.str(kv, "feature service")
		case "tags":
			s.Tags = d.strMap(kv, "feature service")
		}
	}
	if s.Name != "" && refs == nil {
		d.errorf(n, "feature service %q has no features; add features: [view:feature, view:*]", s.Name)
	}
	return s
}

func (d *decoder) model(n *yaml.Node) *Model {
	m := &Model{Pos: d.pos(n)}
	var runtime *yaml.Node
	for _, kv := range d.mapping(n, "model", []string{"name", "feature_service", "runtime", "path", "endpoint", "description", "tags"}) {
		switch kv.key {
		case "name":
			m.Name = d.name(kv, "model")
		case "feature_service":
			m.FeatureService = d.str(kv, "model")
		case "runtime":
			runtime = kv.value
			m.Runtime = d.str(kv, "model")
		case "path":
			m.Path = d.str(kv, "model")
			m.PathPos = d.pos(kv.value)
		case "endpoint":
			m.Endpoint = d.str(kv, "model")
		case "description":
			m.Description = d.str(kv, "model")
		case "tags":
			m.Tags = d.strMap(kv, "model")
		}
	}
	if m.Name == "" {
		return m
	}
	if m.FeatureService == "" {
		d.errorf(n, "model %q has no feature_service", m.Name)
	}
	switch m.Runtime {
	case RuntimeONNX:
		if m.Endpoint != "" {
			d.errorf(n, "model %q: endpoint is only for the oip runtime", m.Name)
		}
	case RuntimeOIP:
		if m.Endpoint == "" {
			d.errorf(n, "model %q: the oip runtime needs endpoint: host:port of an Open Inference Protocol server", m.Name)
		}
	case "":
		if runtime == nil {
			d.errorf(n, "model %q has no runtime; valid runtimes: onnx, oip", m.Name)
		}
	default:
		d.errorf(runtime, "unknown model runtime %q; valid runtimes: onnx, oip%s", m.Runtime, suggest(m.Runtime, []string{RuntimeONNX, RuntimeOIP}))
	}
	return m
}

var (
	cpuRE    = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?|[0-9]+m)$`)
	memoryRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$`)
)

// ParamTypes are the types a training parameter may have.
var ParamTypes = []string{"int", "float", "string", "bool"}

func (d *decoder) trainingJob(n *yaml.Node) *TrainingJob {
	j := &TrainingJob{Pos: d.pos(n)}
	var command *yaml.Node
	for _, kv := range d.mapping(n, "training job", []string{"name", "feature_service", "entities", "command", "image", "env", "params", "resources", "retries", "register_model", "node_selector", "description", "tags"}) {
		switch kv.key {
		case "name":
			j.Name = d.name(kv, "training job")
		case "feature_service":
			j.FeatureService = d.str(kv, "training job")
		case "entities":
			j.Entities = &EntityInput{}
			for _, e := range d.mapping(kv.value, "training job entities", []string{"path", "sql"}) {
				switch e.key {
				case "path":
					j.Entities.Path = d.str(e, "training job entities")
					j.Entities.PathPos = d.pos(e.value)
				case "sql":
					j.Entities.SQL = d.str(e, "training job entities")
				}
			}
			if kv.value.Kind == yaml.MappingNode && (j.Entities.Path == "") == (j.Entities.SQL == "") {
				d.errorf(kv.value, "training job entities needs exactly one of path (a Parquet or CSV file) or sql")
			}
		case "command":
			command = kv.value
			j.Command = d.strList(kv, "training job")
		case "image":
			j.Image = d.str(kv, "training job")
		case "env":
			j.Env = d.strMap(kv, "training job")
		case "params":
			j.Params = d.params(kv)
		case "resources":
			for _, r := range d.mapping(kv.value, "training job resources", []string{"gpu", "cpu", "memory"}) {
				switch r.key {
				case "gpu":
					j.Resources.GPU = d.integer(r, "resources")
					if j.Resources.GPU < 0 {
						d.errorf(r.value, "resources gpu must be 0 or more, got %d", j.Resources.GPU)
					}
				case "cpu":
					j.Resources.CPU = d.str(r, "resources")
					if j.Resources.CPU != "" && !cpuRE.MatchString(j.Resources.CPU) {
						d.errorf(r.value, "resources cpu %q is not a CPU quantity; write cores (4, 0.5) or millicores (500m)", j.Resources.CPU)
					}
				case "memory":
					j.Resources.Memory = d.str(r, "resources")
					if j.Resources.Memory != "" && !memoryRE.MatchString(j.Resources.Memory) {
						d.errorf(r.value, "resources memory %q is not a memory quantity; write e.g. 16Gi, 512Mi or 2G", j.Resources.Memory)
					}
				}
			}
		case "retries":
			j.Retries = d.integer(kv, "training job")
			if j.Retries < 0 {
				d.errorf(kv.value, "training job retries must be 0 or more, got %d", j.Retries)
			}
		case "register_model":
			j.RegisterModel = d.str(kv, "training job")
		case "node_selector":
			j.NodeSelector = d.strMap(kv, "training job")
		case "description":
			j.Description = d.str(kv, "training job")
		case "tags":
			j.Tags = d.strMap(kv, "training job")
		}
	}
	if j.Name == "" {
		return j
	}
	if j.FeatureService == "" {
		d.errorf(n, "training job %q has no feature_service", j.Name)
	}
	if command == nil {
		d.errorf(n, "training job %q has no command; add command: [program, arg, ...]", j.Name)
	} else if len(j.Command) == 0 && command.Kind == yaml.SequenceNode {
		d.errorf(command, "training job %q has an empty command", j.Name)
	}
	return j
}

func (d *decoder) params(kv keyValue) map[string]Param {
	n := kv.value
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "training job params must be a mapping of name: { type, default }, got %s", describe(n))
		return nil
	}
	out := map[string]Param{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || !ValidName(k.Value) {
			d.errorf(k, "training job param names must be plain names (%s)", nameRule)
			continue
		}
		if _, dup := out[k.Value]; dup {
			d.errorf(k, "param %q appears twice", k.Value)
			continue
		}
		p := Param{}
		var def *yaml.Node
		for _, pkv := range d.mapping(v, fmt.Sprintf("param %q", k.Value), []string{"type", "default"}) {
			switch pkv.key {
			case "type":
				p.Type = d.str(pkv, "param")
			case "default":
				def = pkv.value
			}
		}
		if v.Kind != yaml.MappingNode {
			continue
		}
		if p.Type == "" {
			d.errorf(v, "param %q has no type; valid types: %s", k.Value, strings.Join(ParamTypes, ", "))
			continue
		}
		if !slices.Contains(ParamTypes, p.Type) {
			d.errorf(v, "param %q: unknown type %q; valid types: %s%s", k.Value, p.Type, strings.Join(ParamTypes, ", "), suggest(p.Type, ParamTypes))
			continue
		}
		if def != nil {
			if def.Kind != yaml.ScalarNode || def.Tag == "!!null" {
				d.errorf(def, "param %q default must be a single %s value, got %s", k.Value, p.Type, describe(def))
			} else if val, err := ParseParam(p.Type, def.Value); err != nil {
				d.errorf(def, "param %q default: %v", k.Value, err)
			} else {
				p.Default = val
			}
		}
		out[k.Value] = p
	}
	return out
}

// ParseParam converts a parameter's text (from YAML or --param k=v) to its declared type:
// int64, float64, string or bool.
func ParseParam(typ, s string) (any, error) {
	switch typ {
	case "int":
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("param value %q is not an int", s)
		}
		return v, nil
	case "float":
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("param value %q is not a float", s)
		}
		return v, nil
	case "string":
		return s, nil
	case "bool":
		v, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("param value %q is not a bool (true or false)", s)
		}
		return v, nil
	}
	return nil, fmt.Errorf("unknown param type %q; valid types: %s%s", typ, strings.Join(ParamTypes, ", "), suggest(typ, ParamTypes))
}

var yamlLineRE = regexp.MustCompile(`line (\d+)(?:, column (\d+))?`)

// yamlErrorPos extracts the line (and column) from a YAML syntax error.
func yamlErrorPos(path string, err error) Pos {
	p := Pos{File: path, Line: 1, Col: 1}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			p.Col, _ = strconv.Atoi(m[2])
		}
	}
	return p
}

func yamlErrorMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = yamlLineRE.ReplaceAllString(msg, "")
	msg = strings.Trim(strings.TrimSpace(msg), ":")
	return "invalid YAML: " + strings.TrimSpace(msg)
}
