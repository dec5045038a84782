// Package transform evaluates on-demand features: the CEL expressions of on-demand feature
// views (definitions.OnDemandFeatureView), compiled once per definitions snapshot and run
// column by column over a batch of rows. Serving runs them after the online store read and
// `dataset create` after the point-in-time join, with the same programs, so a feature has the
// same value, bit for bit, in training and in serving.
//
// Nulls: an input value that is null (a stored null, a feature not found or past its TTL, a
// null request value) is absent from its input object. An expression that reads an absent
// field evaluates to null; has(input.field) tests presence and never makes the expression
// null, so `has(user_stats.spend_30d) ? user_stats.spend_30d : 0.0` always has a value. Any
// other evaluation error (integer overflow, division by zero, a result out of the declared
// type's range, the cost limit) also gives null: a request never fails because of a value.
package transform

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/value"
)

// Set holds the compiled programs of every on-demand view of one definitions snapshot. It is
// immutable and safe for concurrent use.
type Set struct {
	views map[string]*View
}

// Compile builds the programs of every on-demand view of repo (checked when repo was built).
func Compile(repo *definitions.Repo) (*Set, error) {
	s := &Set{views: make(map[string]*View, len(repo.OnDemandViews))}
	for _, v := range repo.OnDemandViews {
		c := repo.Compiled(v.Name)
		if c == nil {
			return nil, fmt.Errorf("on-demand feature view %q was not compiled", v.Name)
		}
		cv, err := compileView(c)
		if err != nil {
			return nil, err
		}
		s.views[v.Name] = cv
	}
	return s, nil
}

// View returns the compiled on-demand view named name, or nil.
func (s *Set) View(name string) *View {
	if s == nil {
		return nil
	}
	return s.views[name]
}

// View is one on-demand view's compiled programs.
type View struct {
	Def   *definitions.OnDemandFeatureView
	c     *definitions.CompiledView
	progs []cel.Program // parallel to Def.Features
	needs []Need
	// slots maps each need to (input index, field index) of the input objects.
	slots []slot
	// acts recycles activations (the input objects) between evaluations.
	acts sync.Pool
}

type slot struct{ input, field int }

// Need is one column an evaluation reads: a field of a request source or a feature of a
// feature view that some expression of the view reads.
type Need struct {
	Input   string // request source or feature view name
	Request bool   // Input is a request source
	Field   definitions.Field
}

func compileView(c *definitions.CompiledView) (*View, error) {
	v := &View{Def: c.View, c: c}
	for i, ast := range c.Asts {
		p, err := c.Env.Program(ast,
			cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			return nil, fmt.Errorf("on-demand feature %s:%s: build program: %w", c.View.Name, c.View.Features[i].Name, err)
		}
		v.progs = append(v.progs, p)
	}
	for ii, in := range c.Inputs {
		for fi, f := range in.Fields {
			if in.Used[fi] {
				v.needs = append(v.needs, Need{Input: in.Name, Request: in.Request, Field: f})
				v.slots = append(v.slots, slot{ii, fi})
			}
		}
	}
	return v, nil
}

// Needs lists the columns Eval reads, in the order it takes them.
func (v *View) Needs() []Need { return v.needs }

// activation resolves the view's input variables to their objects for one batch.
type activation struct {
	names []string
	objs  []*definitions.ExprObject
}

func (a *activation) ResolveName(name string) (any, bool) {
	for i, n := range a.names {
		if n == name {
			return a.objs[i], true
		}
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// Eval computes features (indexes into Def.Features) for rows rows. cols are the needed
// columns, parallel to Needs(), each with rows values of the field's declared type or null.
// out[k] receives the column of features[k]; it is allocated when nil or too short.
func (v *View) Eval(rows int, cols [][]value.Value, features []int, out [][]value.Value) error {
	if len(cols) != len(v.needs) {
		return fmt.Errorf("on-demand view %q: %d input columns for %d needed", v.Def.Name, len(cols), len(v.needs))
	}
	for i, c := range cols {
		if len(c) < rows {
			return fmt.Errorf("on-demand view %q: input %s.%s has %d values for %d rows", v.Def.Name, v.needs[i].Input, v.needs[i].Field.Name, len(c), rows)
		}
	}
	act, _ := v.acts.Get().(*activation)
	if act == nil {
		act = &activation{names: make([]string, len(v.c.Inputs)), objs: make([]*definitions.ExprObject, len(v.c.Inputs))}
		for i := range v.c.Inputs {
			act.names[i] = v.c.Inputs[i].Name
			act.objs[i] = v.c.Inputs[i].NewObject()
		}
	}
	defer v.acts.Put(act)
	for k := range features {
		if len(out[k]) < rows {
			out[k] = make([]value.Value, rows)
		}
	}
	for r := range rows {
		for i, s := range v.slots {
			act.objs[s.input].Vals[s.field] = toCEL(cols[i][r], v.needs[i].Field.Type)
		}
		for k, fi := range features {
			out[k][r] = v.evalOne(fi, act)
		}
	}
	return nil
}

func (v *View) evalOne(fi int, act *activation) value.Value {
	val, _, err := v.progs[fi].Eval(act)
	if err != nil || val == nil || types.IsError(val) || types.IsUnknown(val) {
		return value.Null()
	}
	return fromCEL(val, v.Def.Features[fi].Type)
}

// toCEL is a value of declared type t as CEL sees it; nil for null (or a value of another
// type, which callers never pass).
func toCEL(x value.Value, t definitions.Type) ref.Val {
	if x.IsNull() || x.Type() != t {
		return nil
	}
	switch t.Elem {
	case definitions.Int32:
		return types.Int(x.Int32())
	case definitions.Int64:
		return types.Int(x.Int64())
	case definitions.Float32:
		return types.Double(float64(x.Float32()))
	case definitions.Float64:
		return types.Double(x.Float64())
	case definitions.Bool:
		return types.Bool(x.Bool())
	case definitions.String:
		return types.String(x.Str())
	case definitions.Bytes:
		return types.Bytes(x.BytesValue())
	case definitions.Timestamp:
		return types.Timestamp{Time: x.Time()}
	}
	return nil
}

// Every NaN result is the one canonical quiet NaN: the payload of a NaN depends on the
// operation and operands that made it, and Parquet's dictionary encoding keeps only one NaN per
// column chunk, so payloads could not survive a dataset file.
var (
	canonicalNaN   = math.Float64frombits(0x7ff8000000000000)
	canonicalNaN32 = math.Float32frombits(0x7fc00000)
)

// fromCEL converts a result to the feature's declared type by the one rule (value.Coerce);
// null when it does not convert (an int32 or float32 result out of range). Every NaN is the
// canonical one.
func fromCEL(val ref.Val, t definitions.Type) value.Value {
	var v value.Value
	switch x := val.(type) {
	case types.Int:
		v = value.NewInt64(int64(x))
	case types.Double:
		f := float64(x)
		if math.IsNaN(f) {
			f = canonicalNaN
		}
		v = value.NewFloat64(f)
	case types.Bool:
		v = value.NewBool(bool(x))
	case types.String:
		v = value.NewString(string(x))
	case types.Bytes:
		v = value.NewBytes([]byte(x))
	case types.Timestamp:
		v = value.NewTimestamp(x.Time)
	default:
		return value.Null()
	}
	out, err := value.Coerce(v, t)
	if err != nil {
		return value.Null()
	}
	if t.Elem == definitions.Float32 && math.IsNaN(float64(out.Float32())) {
		return value.NewFloat32(canonicalNaN32)
	}
	return out
}

// Inputs gathers what on-demand views computed together read: the request fields (one per
// name; views reading the same name must agree on its type) and the stored features, each
// once, in first-use order. Serving's read plan and dataset create both build theirs with it,
// so the two paths resolve inputs the same way.
type Inputs struct {
	Request []RequestField
	Store   []Need
	names   []string // the names of Request
}

// RequestField is a request field some view reads: its name and type, and the request source
// and on-demand view that first read it (for errors).
type RequestField struct {
	Name   string
	Type   definitions.Type
	Source string
	View   string
}

// Source says where one of a view's Needs comes from: Request[Index] when Request, else
// Store[Index].
type Source struct {
	Request bool
	Index   int
}

// RequestNames are the names of in.Request, in order.
func (in *Inputs) RequestNames() []string { return in.names }

// Add records the needs of v and returns the source of each, in v.Needs() order.
func (in *Inputs) Add(v *View) ([]Source, error) {
	out := make([]Source, 0, len(v.needs))
	for _, n := range v.needs {
		if n.Request {
			j := slices.Index(in.names, n.Field.Name)
			if j < 0 {
				j = len(in.Request)
				in.Request = append(in.Request, RequestField{Name: n.Field.Name, Type: n.Field.Type, Source: n.Input, View: v.Def.Name})
				in.names = append(in.names, n.Field.Name)
			} else if r := in.Request[j]; r.Type != n.Field.Type {
				return nil, fmt.Errorf("request field %q is %s in request source %q (read by on-demand view %q) and %s in request source %q (read by on-demand view %q); on-demand views computed together must agree on request field types",
					n.Field.Name, r.Type, r.Source, r.View, n.Field.Type, n.Input, v.Def.Name)
			}
			out = append(out, Source{Request: true, Index: j})
			continue
		}
		j := slices.IndexFunc(in.Store, func(s Need) bool { return s.Input == n.Input && s.Field.Name == n.Field.Name })
		if j < 0 {
			j = len(in.Store)
			in.Store = append(in.Store, n)
		}
		out = append(out, Source{Index: j})
	}
	return out, nil
}
