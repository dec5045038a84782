package definitions

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/quiverfs/quiver/internal/yamlx"
)

// RequestSource declares the values a caller passes with a request (the request context):
// GetOnlineFeatures' and Predict's request_context, or the entity file's columns of the same
// names in `dataset create`. On-demand feature views read them.
type RequestSource struct {
	Name        string            `json:"name"`
	Fields      []Field           `json:"fields"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Pos         Pos               `json:"-"`
}

// OnDemandFeatureView computes features at request time from request sources and stored
// feature views with CEL expressions. It holds no data: serving computes its features after
// the store read, `dataset create` after the point-in-time join, with the same compiled
// programs.
type OnDemandFeatureView struct {
	Name string `json:"name"`
	// Inputs names the request sources and feature views the expressions read; each is a
	// variable of the expressions (`txn_request.amount`, `user_stats.spend_30d`).
	Inputs      []string          `json:"inputs"`
	Features    []OnDemandFeature `json:"features"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Pos         Pos               `json:"-"`
	InputsPos   Pos               `json:"-"`
}

// OnDemandFeature is one computed feature: its declared type and the CEL expression that
// computes it.
type OnDemandFeature struct {
	Name        string `json:"name"`
	Type        Type   `json:"type"`
	Expr        string `json:"expr"`
	Description string `json:"description,omitempty"`
	Pos         Pos    `json:"-"`
	// ExprLoc places positions inside Expr in the YAML file.
	ExprLoc ExprLocation `json:"-"`
}

// Field returns the view's feature with the given name as a Field.
func (v *OnDemandFeatureView) Field(name string) (Field, bool) {
	for _, f := range v.Features {
		if f.Name == name {
			return Field{Name: f.Name, Type: f.Type, Description: f.Description, Pos: f.Pos}, true
		}
	}
	return Field{}, false
}

// Field returns the request source's field with the given name.
func (s *RequestSource) Field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

func (o *RequestSource) ObjectKind() Kind         { return KindRequestSource }
func (o *OnDemandFeatureView) ObjectKind() Kind   { return KindOnDemandView }
func (o *RequestSource) ObjectName() string       { return o.Name }
func (o *OnDemandFeatureView) ObjectName() string { return o.Name }
func (o *RequestSource) Position() Pos            { return o.Pos }
func (o *OnDemandFeatureView) Position() Pos      { return o.Pos }

// ExprLocation maps an offset inside an expression to its place in the YAML file. The zero
// value maps everything to the position of the feature.
type ExprLocation struct {
	Pos Pos
	// Quote is 1 for a quoted scalar (the text starts one column after the quote).
	Quote int
	// Lines holds, for a block scalar (| or >), the file position of each of its lines, and
	// LastLen the length of the last one in characters (a position past the text, as at the
	// end of input, is placed at the end of the last line).
	Lines   []Pos
	LastLen int
}

// At returns the file position of expression line line (1-based) and column col (0-based).
func (l ExprLocation) At(line, col int) Pos {
	if line >= 1 && line <= len(l.Lines) {
		p := l.Lines[line-1]
		p.Col += col
		return p
	}
	if n := len(l.Lines); n > 0 && line > n {
		p := l.Lines[n-1]
		p.Col += l.LastLen
		return p
	}
	p := l.Pos
	if p.File == "" {
		return p
	}
	if line <= 1 {
		p.Col += l.Quote + col
		return p
	}
	// A multi-line flow scalar: the continuation lines' indentation is not kept, so point at
	// the line only.
	p.Line += line - 1
	p.Col = 1 + col
	return p
}

func (d *decoder) exprLocation(n *yaml.Node) ExprLocation {
	loc := ExprLocation{Pos: d.pos(n)}
	switch n.Style {
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		loc.Quote = 1
	case yaml.LiteralStyle, yaml.FoldedStyle:
		lines := strings.Split(string(d.src), "\n")
		text := strings.Split(strings.TrimRight(n.Value, "\n"), "\n")
		count := len(text)
		loc.LastLen = utf8.RuneCountInString(text[count-1])
		indent := -1
		for i := 0; i < count; i++ {
			ln := n.Line + 1 + i // block content starts on the line after the indicator
			if ln-1 >= len(lines) {
				break
			}
			text := lines[ln-1]
			if indent < 0 {
				indent = len(text) - len(strings.TrimLeft(text, " "))
			}
			loc.Lines = append(loc.Lines, Pos{File: d.file, Line: ln, Col: indent + 1})
		}
	}
	return loc
}

func (d *decoder) requestSource(n *yaml.Node) *RequestSource {
	s := &RequestSource{Pos: d.pos(n)}
	var fields *yaml.Node
	for _, kv := range d.Mapping(n, "request source", []string{"name", "fields", "description", "tags"}) {
		switch kv.Key {
		case "name":
			s.Name = d.name(kv, "request source")
		case "fields":
			fields = kv.Value
			s.Fields = d.fields(kv, "request field")
		case "description":
			s.Description = d.Str(kv, "request source")
		case "tags":
			s.Tags = d.StrMap(kv, "request source")
		}
	}
	if s.Name != "" && fields == nil {
		d.Errorf(n, "request source %q has no fields; add fields: [{ name: amount, type: float64 }]", s.Name)
	}
	return s
}

func (d *decoder) onDemandView(n *yaml.Node) *OnDemandFeatureView {
	v := &OnDemandFeatureView{Pos: d.pos(n)}
	var features *yaml.Node
	for _, kv := range d.Mapping(n, "on-demand feature view", []string{"name", "inputs", "features", "description", "tags"}) {
		switch kv.Key {
		case "name":
			v.Name = d.name(kv, "on-demand feature view")
		case "inputs":
			v.Inputs = d.StrList(kv, "on-demand feature view")
			v.InputsPos = d.pos(kv.Value)
		case "features":
			features = kv.Value
			v.Features = d.onDemandFeatures(kv)
		case "description":
			v.Description = d.Str(kv, "on-demand feature view")
		case "tags":
			v.Tags = d.StrMap(kv, "on-demand feature view")
		}
	}
	if v.Name != "" {
		if len(v.Inputs) == 0 {
			d.Errorf(n, "on-demand feature view %q has no inputs; add inputs: [a request source or feature view, ...]", v.Name)
		}
		if features == nil {
			d.Errorf(n, "on-demand feature view %q has no features; add features: [{ name: ..., type: ..., expr: ... }]", v.Name)
		}
	}
	return v
}

func (d *decoder) onDemandFeatures(kv keyValue) []OnDemandFeature {
	n := kv.Value
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, "features must be a list of { name, type, expr } mappings, got %s", yamlx.Describe(n))
		return nil
	}
	out := make([]OnDemandFeature, 0, len(n.Content))
	for _, item := range n.Content {
		item = yamlx.Resolve(item)
		f := OnDemandFeature{Pos: d.pos(item)}
		var typ, expr *yaml.Node
		for _, fkv := range d.Mapping(item, "on-demand feature", []string{"name", "type", "expr", "description"}) {
			switch fkv.Key {
			case "name":
				f.Name = d.name(fkv, "on-demand feature")
			case "type":
				typ = fkv.Value
				s := d.Str(fkv, "on-demand feature")
				if s == "" {
					continue
				}
				t, err := ParseType(s)
				if err != nil {
					d.Errorf(fkv.Value, "on-demand feature %q: %v%s", f.Name, err, Suggest(s, typeNames()))
					continue
				}
				if t.Array {
					d.Errorf(fkv.Value, "on-demand feature %q has type %s; on-demand features are scalars: int32, int64, float32, float64, bool, string, bytes or timestamp", f.Name, t)
					continue
				}
				f.Type = t
			case "expr":
				expr = fkv.Value
				f.Expr = d.Str(fkv, "on-demand feature")
				f.ExprLoc = d.exprLocation(fkv.Value)
			case "description":
				f.Description = d.Str(fkv, "on-demand feature")
			}
		}
		if item.Kind != yaml.MappingNode {
			continue
		}
		if f.Name == "" {
			d.Errorf(item, "on-demand feature has no name")
			continue
		}
		if typ == nil {
			d.Errorf(item, "on-demand feature %q has no type; valid types: int32, int64, float32, float64, bool, string, bytes, timestamp", f.Name)
		}
		if expr == nil {
			d.Errorf(item, "on-demand feature %q has no expr; add expr: a CEL expression over its view's inputs", f.Name)
		}
		out = append(out, f)
	}
	return out
}

func (r *Repo) checkRequestSource(s *RequestSource, errs *ErrorList) {
	seen := map[string]bool{}
	for _, f := range s.Fields {
		if seen[f.Name] {
			errs.add(f.Pos, "request source %q has field %q twice", s.Name, f.Name)
		}
		seen[f.Name] = true
		if f.Type.Array {
			errs.add(f.Pos, "request field %q of request source %q has type %s; request fields are scalars", f.Name, s.Name, f.Type)
		}
		if slices.Contains(ReservedColumns, f.Name) {
			errs.add(f.Pos, "request field %q of request source %q uses a reserved column name (%s)", f.Name, s.Name, strings.Join(ReservedColumns, ", "))
		}
	}
}

// checkOnDemand checks an on-demand view's inputs and compiles its expressions, reporting
// every problem with its position in the YAML file.
func (r *Repo) checkOnDemand(v *OnDemandFeatureView, errs *ErrorList) {
	from := "on-demand feature view " + strconvQuote(v.Name)
	if fv := r.FeatureView(v.Name); fv != nil {
		errs.add(v.Pos, "%s has the name of feature view %q declared at %s; feature services refer to both by name, so names must differ", from, v.Name, fv.Pos)
	}
	ok := true
	seen := map[string]bool{}
	pos := v.InputsPos
	if pos.File == "" {
		pos = v.Pos
	}
	for _, in := range v.Inputs {
		if seen[in] {
			errs.add(pos, "%s lists input %q twice", from, in)
			ok = false
			continue
		}
		seen[in] = true
		if r.RequestSource(in) == nil && r.FeatureView(in) == nil {
			names := append(r.Names(KindRequestSource), r.Names(KindFeatureView)...)
			errs.add(pos, "%s refers to unknown input %q (request sources and feature views: %s)%s", from, in, quoteList(names), Suggest(in, names))
			ok = false
		}
	}
	names := map[string]bool{}
	for _, f := range v.Features {
		if names[f.Name] {
			errs.add(f.Pos, "%s has feature %q twice", from, f.Name)
		}
		names[f.Name] = true
	}
	if !ok {
		return
	}
	c, list := compileOnDemand(r, v)
	errs.addAll(list)
	if c != nil {
		r.compiled[v.Name] = c
	}
}

// RequestSource returns the request source named name, or nil.
func (r *Repo) RequestSource(name string) *RequestSource {
	s, _ := r.byName[KindRequestSource][name].(*RequestSource)
	return s
}

// OnDemandView returns the on-demand feature view named name, or nil.
func (r *Repo) OnDemandView(name string) *OnDemandFeatureView {
	v, _ := r.byName[KindOnDemandView][name].(*OnDemandFeatureView)
	return v
}

// Compiled returns the checked expressions of an on-demand view (built when the repo was),
// or nil when there is no such view.
func (r *Repo) Compiled(name string) *CompiledView { return r.compiled[name] }

// onDemandRef resolves "odview:feature" or "odview:*" for a feature service.
func (r *Repo) onDemandRef(ref FeatureRef) ([]ResolvedFeature, error) {
	v := r.OnDemandView(ref.View)
	var out []ResolvedFeature
	for _, f := range v.Features {
		if ref.Feature == "*" || ref.Feature == f.Name {
			fd, _ := v.Field(f.Name)
			out = append(out, ResolvedFeature{OnDemand: v, Feature: fd})
		}
	}
	if len(out) == 0 {
		valid := make([]string, len(v.Features))
		for i, f := range v.Features {
			valid[i] = f.Name
		}
		return nil, fmt.Errorf("unknown feature %q of on-demand view %q (its features: %s)%s", ref.Feature, v.Name, quoteList(valid), Suggest(ref.Feature, valid))
	}
	return out, nil
}

// ViewName is the name of the view the feature comes from, stored or on-demand.
func (f ResolvedFeature) ViewName() string {
	if f.OnDemand != nil {
		return f.OnDemand.Name
	}
	return f.View.Name
}
