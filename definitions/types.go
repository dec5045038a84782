// Package definitions owns Quiver's declarative model: the YAML schema of entities, sources,
// feature views, feature services, models and training jobs; strict decoding with
// file:line:col errors; reference resolution; canonical content hashing; and plan diffs.
//
// It imports no other Quiver package.
package definitions

import (
	"fmt"
	"strings"
)

// Kind names one kind of definition object.
type Kind string

// The kinds of objects a feature repo declares, in dependency order.
const (
	KindEntity         Kind = "entity"
	KindSource         Kind = "source"
	KindRequestSource  Kind = "request_source"
	KindFeatureView    Kind = "feature_view"
	KindOnDemandView   Kind = "on_demand_feature_view"
	KindFeatureService Kind = "feature_service"
	KindModel          Kind = "model"
	KindTrainingJob    Kind = "training_job"
)

// Kinds lists every kind in dependency order: an object only refers to kinds before it.
var Kinds = []Kind{KindEntity, KindSource, KindRequestSource, KindFeatureView, KindOnDemandView, KindFeatureService, KindModel, KindTrainingJob}

// yamlKey is the top-level YAML key that holds a list of objects of this kind.
func (k Kind) yamlKey() string {
	switch k {
	case KindEntity:
		return "entities"
	case KindSource:
		return "sources"
	case KindFeatureView:
		return "feature_views"
	case KindFeatureService:
		return "feature_services"
	case KindModel:
		return "models"
	case KindTrainingJob:
		return "training_jobs"
	case KindRequestSource:
		return "request_sources"
	case KindOnDemandView:
		return "on_demand_feature_views"
	}
	return string(k)
}

// Label is the kind as a person reads it ("feature view").
func (k Kind) Label() string { return strings.ReplaceAll(string(k), "_", " ") }

// ParseKind accepts the names people type on a command line: plural or singular, short
// ("view", "service", "job") or long ("feature_views"), with '-' or '_'.
func ParseKind(s string) (Kind, error) {
	switch strings.ReplaceAll(strings.ToLower(s), "-", "_") {
	case "entity", "entities":
		return KindEntity, nil
	case "source", "sources":
		return KindSource, nil
	case "view", "views", "feature_view", "feature_views", "featureview", "featureviews":
		return KindFeatureView, nil
	case "service", "services", "feature_service", "feature_services":
		return KindFeatureService, nil
	case "model", "models":
		return KindModel, nil
	case "job", "jobs", "training_job", "training_jobs":
		return KindTrainingJob, nil
	case "request_source", "request_sources":
		return KindRequestSource, nil
	case "on_demand_view", "on_demand_views", "on_demand_feature_view", "on_demand_feature_views":
		return KindOnDemandView, nil
	}
	return "", fmt.Errorf("unknown kind %q; valid kinds: entities, sources, request_sources, views, on_demand_views, services, models, jobs", s)
}

// Pos is where an object or value was declared. It is not part of an object's content.
type Pos struct {
	File string `json:"-"`
	Line int    `json:"-"`
	Col  int    `json:"-"`
}

func (p Pos) String() string {
	if p.File == "" {
		return "-"
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Object is implemented by every definition kind.
type Object interface {
	ObjectKind() Kind
	ObjectName() string
	// Position is where the object's declaration starts.
	Position() Pos
}

// Entity is a thing features describe, identified by one or more typed join keys.
type Entity struct {
	Name        string            `json:"name"`
	JoinKeys    []Field           `json:"join_keys"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Pos         Pos               `json:"-"`
}

// Field is a named, typed column: a join key or a feature.
type Field struct {
	Name        string `json:"name"`
	Type        Type   `json:"type"`
	Description string `json:"description,omitempty"`
	Pos         Pos    `json:"-"`
}

// Source is where a feature view's rows come from. Exactly one of Parquet, Iceberg and Trino is set.
type Source struct {
	Name                  string            `json:"name"`
	Parquet               *ParquetSource    `json:"parquet,omitempty"`
	Iceberg               *IcebergSource    `json:"iceberg,omitempty"`
	Trino                 *TrinoSource      `json:"trino,omitempty"`
	Push                  *PushSource       `json:"push,omitempty"`
	Kafka                 *KafkaSource      `json:"kafka,omitempty"`
	TimestampField        string            `json:"timestamp_field"`
	CreatedTimestampField string            `json:"created_timestamp_field,omitempty"`
	Description           string            `json:"description,omitempty"`
	Tags                  map[string]string `json:"tags,omitempty"`
	Pos                   Pos               `json:"-"`
}

// SourceType names which kind of source a Source is.
func (s *Source) SourceType() string {
	switch {
	case s.Parquet != nil:
		return "parquet"
	case s.Iceberg != nil:
		return "iceberg"
	case s.Trino != nil:
		return "trino"
	case s.Push != nil:
		return "push"
	case s.Kafka != nil:
		return "kafka"
	}
	return ""
}

// ParquetSource reads Parquet files. Path is a file, a directory or a glob, relative to the
// feature repo unless absolute.
type ParquetSource struct {
	Path    string `json:"path"`
	PathPos Pos    `json:"-"`
}

// IcebergSource reads an Iceberg table, named "namespace.table", through the configured catalog.
type IcebergSource struct {
	Table string `json:"table"`
}

// TrinoSource reads the result of a query, or a whole table, through Trino. Exactly one is set.
type TrinoSource struct {
	Query string `json:"query,omitempty"`
	Table string `json:"table,omitempty"`
}

// FeatureView is a set of features computed from one source and keyed by one or more entities.
type FeatureView struct {
	Name     string   `json:"name"`
	Entities []string `json:"entities"`
	Source   string   `json:"source"`
	// TTL bounds how old a value may be and still be served or joined; zero means no expiry.
	TTL         Duration          `json:"ttl,omitempty"`
	Online      bool              `json:"online"`
	Features    []Field           `json:"features"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Pos         Pos               `json:"-"`
	// Columns and Aggregations make an aggregation view (definitions/aggregations.go).
	Columns      []Field       `json:"columns,omitempty"`
	Aggregations []Aggregation `json:"aggregations,omitempty"`
}

// Feature returns the view's feature with the given name.
func (v *FeatureView) Feature(name string) (Field, bool) {
	for _, f := range v.Features {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// FeatureRef names a feature of a view ("user_stats:clicks_7d"), or all of them ("user_stats:*").
type FeatureRef struct {
	View    string `json:"view"`
	Feature string `json:"feature"` // "*" for every feature of the view
}

func (r FeatureRef) String() string { return r.View + ":" + r.Feature }

// ParseFeatureRef parses "view:feature" or "view:*".
func ParseFeatureRef(s string) (FeatureRef, error) {
	view, feature, ok := strings.Cut(s, ":")
	if !ok || view == "" || feature == "" || strings.Contains(feature, ":") {
		return FeatureRef{}, fmt.Errorf("feature reference %q is not of the form view:feature or view:*", s)
	}
	return FeatureRef{View: view, Feature: feature}, nil
}

// MarshalText writes the reference in its "view:feature" form.
func (r FeatureRef) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses the "view:feature" form.
func (r *FeatureRef) UnmarshalText(b []byte) error {
	ref, err := ParseFeatureRef(string(b))
	if err != nil {
		return err
	}
	*r = ref
	return nil
}

// FeatureService is a named, ordered selection of features, the unit a model is trained and
// served with.
type FeatureService struct {
	Name        string            `json:"name"`
	Features    []FeatureRef      `json:"features"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Pos         Pos               `json:"-"`
}

// Model runtimes.
const (
	RuntimeONNX = "onnx"
	RuntimeOIP  = "oip"
)

// Model is a model served from a feature service's features.
type Model struct {
	Name           string `json:"name"`
	FeatureService string `json:"feature_service"`
	Runtime        string `json:"runtime"`
	// Path is an ONNX model file used until a version is registered (onnx runtime only).
	Path    string `json:"path,omitempty"`
	PathPos Pos    `json:"-"`
	// Endpoint is the host:port of an Open Inference Protocol server (oip runtime only).
	Endpoint    string            `json:"endpoint,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Pos         Pos               `json:"-"`
}

// TrainingJob is a command that trains a model on a dataset snapshot of a feature service.
type TrainingJob struct {
	Name           string            `json:"name"`
	FeatureService string            `json:"feature_service"`
	Entities       *EntityInput      `json:"entities,omitempty"`
	Command        []string          `json:"command"`
	Image          string            `json:"image,omitempty"`
	Env            map[string]string `json:"env,omitempty"`
	Params         map[string]Param  `json:"params,omitempty"`
	Resources      Resources         `json:"resources"`
	Retries        int               `json:"retries,omitempty"`
	RegisterModel  string            `json:"register_model,omitempty"`
	NodeSelector   map[string]string `json:"node_selector,omitempty"`
	Description    string            `json:"description,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	Pos            Pos               `json:"-"`
}

// EntityInput is the entity rows (join keys, event_timestamp, labels) a dataset is built for:
// a Parquet or CSV file, or a SQL query run through Trino. Exactly one is set.
type EntityInput struct {
	Path    string `json:"path,omitempty"`
	SQL     string `json:"sql,omitempty"`
	PathPos Pos    `json:"-"`
}

// Param is a typed training parameter with a default.
type Param struct {
	Type    string `json:"type"` // int, float, string or bool
	Default any    `json:"default,omitempty"`
}

// Resources a training job asks for.
type Resources struct {
	GPU    int    `json:"gpu,omitempty"`
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
}

func (o *Entity) ObjectKind() Kind         { return KindEntity }
func (o *Source) ObjectKind() Kind         { return KindSource }
func (o *FeatureView) ObjectKind() Kind    { return KindFeatureView }
func (o *FeatureService) ObjectKind() Kind { return KindFeatureService }
func (o *Model) ObjectKind() Kind          { return KindModel }
func (o *TrainingJob) ObjectKind() Kind    { return KindTrainingJob }

func (o *Entity) ObjectName() string         { return o.Name }
func (o *Source) ObjectName() string         { return o.Name }
func (o *FeatureView) ObjectName() string    { return o.Name }
func (o *FeatureService) ObjectName() string { return o.Name }
func (o *Model) ObjectName() string          { return o.Name }
func (o *TrainingJob) ObjectName() string    { return o.Name }

func (o *Entity) Position() Pos         { return o.Pos }
func (o *Source) Position() Pos         { return o.Pos }
func (o *FeatureView) Position() Pos    { return o.Pos }
func (o *FeatureService) Position() Pos { return o.Pos }
func (o *Model) Position() Pos          { return o.Pos }
func (o *TrainingJob) Position() Pos    { return o.Pos }
