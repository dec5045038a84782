package definitions

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/quiverfs/quiver/internal/yamlx"
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
	d := newDecoder(path, data)
	f := &File{Path: path}
	if len(data) > MaxFileSize {
		return f, ErrorList{fileTooLarge(path, int64(len(data)))}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, col, msg := yamlx.SyntaxError(err)
		d.errs.add(Pos{File: path, Line: line, Col: col}, "%s", msg)
		return f, d.errs.Err()
	}
	if doc.Kind == 0 || len(doc.Content) == 0 { // empty file
		return f, nil
	}
	if n, msg := checkAliases(&doc); n != nil {
		d.Errorf(n, "%s", msg)
		return f, d.errs.Err()
	}
	top := yamlx.Resolve(doc.Content[0])
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return f, nil
	}
	keys := make([]string, len(Kinds))
	for i, k := range Kinds {
		keys[i] = k.yamlKey()
	}
	for _, kv := range d.Mapping(top, "definitions file", keys) {
		var kind Kind
		for _, k := range Kinds {
			if k.yamlKey() == kv.Key {
				kind = k
			}
		}
		if kv.Value.Kind == yaml.ScalarNode && kv.Value.Tag == "!!null" {
			continue // "models:" with nothing under it
		}
		if kv.Value.Kind != yaml.SequenceNode {
			d.Errorf(kv.Value, "%s must be a list of %ss, got %s", kv.Key, kind.Label(), yamlx.Describe(kv.Value))
			continue
		}
		for _, item := range kv.Value.Content {
			if o := d.object(kind, yamlx.Resolve(item)); o != nil {
				f.Objects = append(f.Objects, o)
			}
		}
	}
	return f, d.errs.Err()
}

// decoder decodes one definitions file with the strict YAML walk of internal/yamlx, keeping
// every problem in errs.
type decoder struct {
	*yamlx.Decoder
	file string
	src  []byte // the file's text, to place errors inside expressions (ondemand.go)
	errs ErrorList
}

func newDecoder(file string, src []byte) *decoder {
	d := &decoder{file: file, src: src}
	d.Decoder = yamlx.NewDecoder(func(line, col int, msg string) {
		d.errs.add(Pos{File: file, Line: line, Col: col}, "%s", msg)
	})
	return d
}

type keyValue = yamlx.KeyValue

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Col: n.Column} }

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidName reports whether s can name an object, feature or join key: a letter or '_'
// followed by up to 62 letters, digits or '_'. Names end up in Redis keys, Iceberg tables and
// SQL identifiers, so they are kept to this portable set.
func ValidName(s string) bool { return nameRE.MatchString(s) }

const nameRule = "names start with a letter or '_' and contain only letters, digits and '_' (at most 63)"

func (d *decoder) name(kv keyValue, what string) string {
	s := d.Str(kv, what)
	if s != "" && !ValidName(s) {
		d.Errorf(kv.Value, "invalid %s name %q: %s", what, s, nameRule)
	}
	return s
}

func (d *decoder) object(kind Kind, n *yaml.Node) Object {
	what := kind.Label()
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, "each item of %s must be a mapping describing one %s, got %s", kind.yamlKey(), what, yamlx.Describe(n))
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
			d.Errorf(n, "%s has no name; add name: <%s name>", what, what)
		}
		return nil
	}
	return o
}

func (d *decoder) entity(n *yaml.Node) *Entity {
	e := &Entity{Pos: d.pos(n)}
	for _, kv := range d.Mapping(n, "entity", []string{"name", "join_keys", "description", "tags"}) {
		switch kv.Key {
		case "name":
			e.Name = d.name(kv, "entity")
		case "join_keys":
			e.JoinKeys = d.fields(kv, "join key")
		case "description":
			e.Description = d.Str(kv, "entity")
		case "tags":
			e.Tags = d.StrMap(kv, "entity")
		}
	}
	if e.Name != "" && e.JoinKeys == nil {
		d.Errorf(n, "entity %q has no join_keys; add join_keys: [{ name: %s_id, type: int64 }]", e.Name, e.Name)
	}
	return e
}

// fields decodes a list of { name, type, description } (join keys or features).
func (d *decoder) fields(kv keyValue, what string) []Field {
	n := kv.Value
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, "%s must be a list of { name, type } mappings, got %s", kv.Key, yamlx.Describe(n))
		return nil
	}
	out := make([]Field, 0, len(n.Content))
	for _, item := range n.Content {
		item = yamlx.Resolve(item)
		f := Field{Pos: d.pos(item)}
		var typ *yaml.Node
		for _, fkv := range d.Mapping(item, what, []string{"name", "type", "description"}) {
			switch fkv.Key {
			case "name":
				f.Name = d.name(fkv, what)
			case "type":
				typ = fkv.Value
				s := d.Str(fkv, what)
				if s == "" {
					continue
				}
				t, err := ParseType(s)
				if err != nil {
					d.Errorf(fkv.Value, "%s %q: %v%s", what, f.Name, err, Suggest(s, typeNames()))
					continue
				}
				f.Type = t
			case "description":
				f.Description = d.Str(fkv, what)
			}
		}
		if item.Kind != yaml.MappingNode {
			continue
		}
		if f.Name == "" {
			d.Errorf(item, "%s has no name", what)
			continue
		}
		if typ == nil {
			d.Errorf(item, "%s %q has no type; valid types: %s", what, f.Name, ValidTypes)
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
	for _, kv := range d.Mapping(n, "source", []string{"name", "parquet", "iceberg", "trino", "push", "kafka", "timestamp_field", "created_timestamp_field", "description", "tags"}) {
		switch kv.Key {
		case "name":
			s.Name = d.name(kv, "source")
		case "parquet":
			kinds++
			s.Parquet = &ParquetSource{}
			for _, p := range d.Mapping(kv.Value, "parquet source", []string{"path"}) {
				s.Parquet.Path = d.Str(p, "parquet source")
				s.Parquet.PathPos = d.pos(p.Value)
			}
			if s.Parquet.Path == "" && kv.Value.Kind == yaml.MappingNode {
				d.Errorf(kv.Value, "parquet source needs a path: a file, directory or glob")
			}
		case "iceberg":
			kinds++
			s.Iceberg = &IcebergSource{}
			for _, p := range d.Mapping(kv.Value, "iceberg source", []string{"table"}) {
				s.Iceberg.Table = d.Str(p, "iceberg source")
				if t := s.Iceberg.Table; t != "" && (!strings.Contains(t, ".") || strings.HasPrefix(t, ".") || strings.HasSuffix(t, ".")) {
					d.Errorf(p.Value, "iceberg table %q must be namespace.table", t)
				}
			}
			if s.Iceberg.Table == "" && kv.Value.Kind == yaml.MappingNode {
				d.Errorf(kv.Value, "iceberg source needs a table: namespace.table")
			}
		case "trino":
			kinds++
			s.Trino = &TrinoSource{}
			for _, p := range d.Mapping(kv.Value, "trino source", []string{"query", "table"}) {
				switch p.Key {
				case "query":
					s.Trino.Query = d.Str(p, "trino source")
				case "table":
					s.Trino.Table = d.Str(p, "trino source")
				}
			}
			if kv.Value.Kind == yaml.MappingNode && (s.Trino.Query == "") == (s.Trino.Table == "") {
				d.Errorf(kv.Value, "trino source needs exactly one of query or table")
			}
		case "push":
			kinds++
			s.Push = d.pushSource(kv.Value)
		case "kafka":
			kinds++
			s.Kafka = d.kafkaSource(kv.Value)
		case "timestamp_field":
			s.TimestampField = d.Str(kv, "source")
		case "created_timestamp_field":
			s.CreatedTimestampField = d.Str(kv, "source")
		case "description":
			s.Description = d.Str(kv, "source")
		case "tags":
			s.Tags = d.StrMap(kv, "source")
		}
	}
	if s.Name != "" {
		switch {
		case kinds == 0:
			d.Errorf(n, "source %q has no kind; add exactly one of parquet, iceberg, trino, push or kafka", s.Name)
		case kinds > 1:
			d.Errorf(n, "source %q has %d kinds; a source has exactly one of parquet, iceberg, trino, push or kafka", s.Name, kinds)
		}
		if s.TimestampField == "" {
			d.Errorf(n, "source %q has no timestamp_field; name the column holding each row's event time", s.Name)
		}
	}
	return s
}

func (d *decoder) featureView(n *yaml.Node) *FeatureView {
	v := &FeatureView{Pos: d.pos(n), Online: true}
	for _, kv := range d.Mapping(n, "feature view", []string{"name", "entities", "source", "ttl", "online", "features", "columns", "aggregations", "description", "tags"}) {
		switch kv.Key {
		case "name":
			v.Name = d.name(kv, "feature view")
		case "entities":
			v.Entities = d.StrList(kv, "feature view")
		case "source":
			v.Source = d.Str(kv, "feature view")
		case "ttl":
			if kv.Value.Kind == yaml.ScalarNode && kv.Value.Tag == "!!int" && kv.Value.Value == "0" {
				continue
			}
			s := d.Str(kv, "feature view")
			if s == "" {
				continue
			}
			ttl, err := ParseDuration(s)
			if err != nil {
				d.Errorf(kv.Value, "feature view ttl: %v", err)
				continue
			}
			v.TTL = ttl
		case "online":
			v.Online = d.Bool(kv, "feature view")
		case "features":
			v.Features = d.fields(kv, "feature")
		case "columns":
			v.Columns = d.fields(kv, "column")
		case "aggregations":
			v.Aggregations = d.aggregations(kv)
		case "description":
			v.Description = d.Str(kv, "feature view")
		case "tags":
			v.Tags = d.StrMap(kv, "feature view")
		}
	}
	if v.Name != "" {
		if v.Source == "" {
			d.Errorf(n, "feature view %q has no source", v.Name)
		}
		if len(v.Aggregations) > 0 || len(v.Columns) > 0 {
			d.finishAggregations(v, n)
		} else if len(v.Features) == 0 {
			d.Errorf(n, "feature view %q has no features; add features: [{ name: ..., type: ... }]", v.Name)
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
	for _, kv := range d.Mapping(n, "feature service", []string{"name", "features", "description", "tags"}) {
		switch kv.Key {
		case "name":
			s.Name = d.name(kv, "feature service")
		case "features":
			refs = kv.Value
			if kv.Value.Kind != yaml.SequenceNode {
				d.Errorf(kv.Value, "feature service features must be a list of view:feature or view:* references, got %s", yamlx.Describe(kv.Value))
				continue
			}
			s.Features = []FeatureRef{}
			for _, item := range kv.Value.Content {
				item = yamlx.Resolve(item)
				if item.Kind != yaml.ScalarNode {
					d.Errorf(item, "feature reference must be a string view:feature or view:*, got %s", yamlx.Describe(item))
					continue
				}
				ref, err := ParseFeatureRef(item.Value)
				if err != nil {
					d.Errorf(item, "%v", err)
					continue
				}
				s.Features = append(s.Features, ref)
			}
		case "description":
			s.Description = d.Str(kv, "feature service")
		case "tags":
			s.Tags = d.StrMap(kv, "feature service")
		}
	}
	if s.Name != "" && refs == nil {
		d.Errorf(n, "feature service %q has no features; add features: [view:feature, view:*]", s.Name)
	}
	return s
}

func (d *decoder) model(n *yaml.Node) *Model {
	m := &Model{Pos: d.pos(n)}
	var runtime *yaml.Node
	for _, kv := range d.Mapping(n, "model", []string{"name", "feature_service", "runtime", "path", "endpoint", "description", "tags"}) {
		switch kv.Key {
		case "name":
			m.Name = d.name(kv, "model")
		case "feature_service":
			m.FeatureService = d.Str(kv, "model")
		case "runtime":
			runtime = kv.Value
			m.Runtime = d.Str(kv, "model")
		case "path":
			m.Path = d.Str(kv, "model")
			m.PathPos = d.pos(kv.Value)
		case "endpoint":
			m.Endpoint = d.Str(kv, "model")
		case "description":
			m.Description = d.Str(kv, "model")
		case "tags":
			m.Tags = d.StrMap(kv, "model")
		}
	}
	if m.Name == "" {
		return m
	}
	if m.FeatureService == "" {
		d.Errorf(n, "model %q has no feature_service", m.Name)
	}
	switch m.Runtime {
	case RuntimeONNX:
		if m.Endpoint != "" {
			d.Errorf(n, "model %q: endpoint is only for the oip runtime", m.Name)
		}
	case RuntimeOIP:
		if m.Endpoint == "" {
			d.Errorf(n, "model %q: the oip runtime needs endpoint: host:port of an Open Inference Protocol server", m.Name)
		}
	case "":
		if runtime == nil {
			d.Errorf(n, "model %q has no runtime; valid runtimes: onnx, oip", m.Name)
		}
	default:
		d.Errorf(runtime, "unknown model runtime %q; valid runtimes: onnx, oip%s", m.Runtime, Suggest(m.Runtime, []string{RuntimeONNX, RuntimeOIP}))
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
	for _, kv := range d.Mapping(n, "training job", []string{"name", "feature_service", "entities", "command", "image", "env", "params", "resources", "retries", "register_model", "node_selector", "description", "tags"}) {
		switch kv.Key {
		case "name":
			j.Name = d.name(kv, "training job")
		case "feature_service":
			j.FeatureService = d.Str(kv, "training job")
		case "entities":
			j.Entities = &EntityInput{}
			for _, e := range d.Mapping(kv.Value, "training job entities", []string{"path", "sql"}) {
				switch e.Key {
				case "path":
					j.Entities.Path = d.Str(e, "training job entities")
					j.Entities.PathPos = d.pos(e.Value)
				case "sql":
					j.Entities.SQL = d.Str(e, "training job entities")
				}
			}
			if kv.Value.Kind == yaml.MappingNode && (j.Entities.Path == "") == (j.Entities.SQL == "") {
				d.Errorf(kv.Value, "training job entities needs exactly one of path (a Parquet or CSV file) or sql")
			}
		case "command":
			command = kv.Value
			j.Command = d.StrList(kv, "training job")
		case "image":
			j.Image = d.Str(kv, "training job")
		case "env":
			j.Env = d.StrMap(kv, "training job")
		case "params":
			j.Params = d.params(kv)
		case "resources":
			for _, r := range d.Mapping(kv.Value, "training job resources", []string{"gpu", "cpu", "memory"}) {
				switch r.Key {
				case "gpu":
					j.Resources.GPU = d.Int(r, "resources")
					if j.Resources.GPU < 0 {
						d.Errorf(r.Value, "resources gpu must be 0 or more, got %d", j.Resources.GPU)
					}
				case "cpu":
					j.Resources.CPU = d.Str(r, "resources")
					if j.Resources.CPU != "" && !cpuRE.MatchString(j.Resources.CPU) {
						d.Errorf(r.Value, "resources cpu %q is not a CPU quantity; write cores (4, 0.5) or millicores (500m)", j.Resources.CPU)
					}
				case "memory":
					j.Resources.Memory = d.Str(r, "resources")
					if j.Resources.Memory != "" && !memoryRE.MatchString(j.Resources.Memory) {
						d.Errorf(r.Value, "resources memory %q is not a memory quantity; write e.g. 16Gi, 512Mi or 2G", j.Resources.Memory)
					}
				}
			}
		case "retries":
			j.Retries = d.Int(kv, "training job")
			if j.Retries < 0 {
				d.Errorf(kv.Value, "training job retries must be 0 or more, got %d", j.Retries)
			}
		case "register_model":
			j.RegisterModel = d.Str(kv, "training job")
		case "node_selector":
			j.NodeSelector = d.StrMap(kv, "training job")
		case "description":
			j.Description = d.Str(kv, "training job")
		case "tags":
			j.Tags = d.StrMap(kv, "training job")
		}
	}
	if j.Name == "" {
		return j
	}
	if j.FeatureService == "" {
		d.Errorf(n, "training job %q has no feature_service", j.Name)
	}
	if command == nil {
		d.Errorf(n, "training job %q has no command; add command: [program, arg, ...]", j.Name)
	} else if len(j.Command) == 0 && command.Kind == yaml.SequenceNode {
		d.Errorf(command, "training job %q has an empty command", j.Name)
	}
	return j
}

func (d *decoder) params(kv keyValue) map[string]Param {
	n := kv.Value
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, "training job params must be a mapping of name: { type, default }, got %s", yamlx.Describe(n))
		return nil
	}
	out := map[string]Param{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := yamlx.Resolve(n.Content[i]), yamlx.Resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || !ValidName(k.Value) {
			d.Errorf(k, "training job param names must be plain names (%s)", nameRule)
			continue
		}
		if _, dup := out[k.Value]; dup {
			d.Errorf(k, "param %q appears twice", k.Value)
			continue
		}
		p := Param{}
		var def *yaml.Node
		for _, pkv := range d.Mapping(v, fmt.Sprintf("param %q", k.Value), []string{"type", "default"}) {
			switch pkv.Key {
			case "type":
				p.Type = d.Str(pkv, "param")
			case "default":
				def = pkv.Value
			}
		}
		if v.Kind != yaml.MappingNode {
			continue
		}
		if p.Type == "" {
			d.Errorf(v, "param %q has no type; valid types: %s", k.Value, strings.Join(ParamTypes, ", "))
			continue
		}
		if !slices.Contains(ParamTypes, p.Type) {
			d.Errorf(v, "param %q: unknown type %q; valid types: %s%s", k.Value, p.Type, strings.Join(ParamTypes, ", "), Suggest(p.Type, ParamTypes))
			continue
		}
		if def != nil {
			if def.Kind != yaml.ScalarNode || def.Tag == "!!null" {
				d.Errorf(def, "param %q default must be a single %s value, got %s", k.Value, p.Type, yamlx.Describe(def))
			} else if val, err := ParseParam(p.Type, def.Value); err != nil {
				d.Errorf(def, "param %q default: %v", k.Value, err)
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
	return nil, fmt.Errorf("unknown param type %q; valid types: %s%s", typ, strings.Join(ParamTypes, ", "), Suggest(typ, ParamTypes))
}
