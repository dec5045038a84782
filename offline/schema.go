package offline

import (
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/quiverfs/quiver/definitions"
)

// Canonical column names of the timestamps in every batch a source yields and every offline
// table.
const (
	// EventTS is the event timestamp column, read from the source's timestamp field.
	EventTS = "event_ts"
	// CreatedTS is the created timestamp column, read from the source's created timestamp
	// field. It is null in every row when the source declares none.
	CreatedTS = "created_ts"
)

// Column is one canonical column of a view: its name in batches and tables, and its type.
type Column struct {
	Name string
	Type definitions.Type
}

// ViewSchema is the canonical shape of a feature view's rows: the join keys of its entities
// in order, then EventTS and CreatedTS, then its features.
type ViewSchema struct {
	View string
	// Generation is the view's definition generation (0 or 1: the first). Each generation
	// has its own table, so rows written for another generation are never read.
	Generation int
	JoinKeys   []Column
	Features   []Column
}

// NewViewSchema resolves a view's entities and returns its canonical schema. entities maps
// entity names to entities; every entity the view names must be present. Duplicate column
// names, and features named like a join key or a canonical timestamp, are errors.
func NewViewSchema(view *definitions.FeatureView, entities map[string]*definitions.Entity) (ViewSchema, error) {
	if view == nil {
		return ViewSchema{}, fmt.Errorf("view schema: nil feature view")
	}
	vs := ViewSchema{View: view.Name}
	for _, name := range view.Entities {
		e, ok := entities[name]
		if !ok || e == nil {
			return ViewSchema{}, fmt.Errorf("view %q: entity %q not given", view.Name, name)
		}
		for _, k := range e.JoinKeys {
			vs.JoinKeys = append(vs.JoinKeys, Column{Name: k.Name, Type: k.Type})
		}
	}
	for _, f := range view.Features {
		vs.Features = append(vs.Features, Column{Name: f.Name, Type: f.Type})
	}
	if view.IsAggregation() { // the table holds the raw events: docs/aggregations.md
		vs.Features = vs.Features[:0]
		for _, c := range view.Columns {
			vs.Features = append(vs.Features, Column{Name: c.Name, Type: c.Type})
		}
	}
	if err := vs.Validate(); err != nil {
		return ViewSchema{}, err
	}
	return vs, nil
}

// Validate checks that the schema has at least one join key, valid types and unique names.
func (v ViewSchema) Validate() error {
	if len(v.JoinKeys) == 0 {
		return fmt.Errorf("view %q: no join keys", v.View)
	}
	seen := map[string]string{EventTS: "timestamp column", CreatedTS: "timestamp column"}
	for _, c := range append(slices.Clone(v.JoinKeys), v.Features...) {
		if c.Name == "" {
			return fmt.Errorf("view %q: a column has no name", v.View)
		}
		if !c.Type.Valid() {
			return fmt.Errorf("view %q: column %q has invalid type %s", v.View, c.Name, c.Type)
		}
		if what, dup := seen[c.Name]; dup {
			return fmt.Errorf("view %q: column %q is both a %s and a feature or join key", v.View, c.Name, what)
		}
		seen[c.Name] = "join key or feature"
	}
	return nil
}

// Columns lists every canonical column in order: join keys, EventTS, CreatedTS, features.
func (v ViewSchema) Columns() []Column {
	cols := make([]Column, 0, len(v.JoinKeys)+2+len(v.Features))
	cols = append(cols, v.JoinKeys...)
	ts := definitions.Type{Elem: definitions.Timestamp}
	cols = append(cols, Column{Name: EventTS, Type: ts}, Column{Name: CreatedTS, Type: ts})
	return append(cols, v.Features...)
}

// Column returns the canonical column with the given name.
func (v ViewSchema) Column(name string) (Column, bool) {
	for _, c := range v.Columns() {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// KeyNames lists the join key names.
func (v ViewSchema) KeyNames() []string {
	names := make([]string, len(v.JoinKeys))
	for i, k := range v.JoinKeys {
		names[i] = k.Name
	}
	return names
}

// Arrow is the canonical Arrow schema. Every field is nullable.
func (v ViewSchema) Arrow() *arrow.Schema {
	cols := v.Columns()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		dt, err := ArrowType(c.Type)
		if err != nil {
			// Validate rejects invalid types; an unvalidated schema gets a null column.
			dt = arrow.Null
		}
		fields[i] = arrow.Field{Name: c.Name, Type: dt, Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// Project returns the schema restricted to the named columns, in the order given. An empty
// list means all columns.
func (v ViewSchema) Project(names []string) (*arrow.Schema, error) {
	full := v.Arrow()
	if len(names) == 0 {
		return full, nil
	}
	fields := make([]arrow.Field, 0, len(names))
	for _, n := range names {
		idx := full.FieldIndices(n)
		if len(idx) == 0 {
			return nil, fmt.Errorf("view %q: %w: %q", v.View, ErrColumnNotFound, n)
		}
		fields = append(fields, full.Field(idx[0]))
	}
	return arrow.NewSchema(fields, nil), nil
}

// Range is a half-open interval [Start, End) of event time.
type Range struct {
	Start, End time.Time
}

// Validate checks that End is after Start and both are set.
func (r Range) Validate() error {
	if r.Start.IsZero() || r.End.IsZero() || !r.End.After(r.Start) {
		return fmt.Errorf("%w: [%s, %s)", ErrInvalidRange, r.Start.UTC().Format(time.RFC3339Nano), r.End.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// Micros returns the bounds as microseconds since the Unix epoch; a bound between two
// microseconds is rounded up, so the range covers exactly the same microsecond timestamps.
func (r Range) Micros() (start, end int64) {
	return ceilMicros(r.Start), ceilMicros(r.End)
}

func ceilMicros(t time.Time) int64 {
	us := t.UnixMicro()
	if time.UnixMicro(us).Before(t) {
		us++
	}
	return us
}

func (r Range) String() string {
	return "[" + r.Start.UTC().Format(time.RFC3339Nano) + ", " + r.End.UTC().Format(time.RFC3339Nano) + ")"
}
