package definitions

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// Expression limits. An expression whose estimated worst-case cost exceeds MaxExprCost is
// rejected at validate time; the estimate assumes strings and bytes of up to MaxExprStringSize
// bytes. Evaluation stops (and the feature is null) if an input larger than that drives the
// actual cost past the same limit.
const (
	MaxExprCost       = 10_000
	MaxExprStringSize = 4096
	MaxExprLength     = 4096
)

// CompiledView is an on-demand view with every expression parsed and type-checked against
// its inputs. Programs are built from it by package transform; the environment and checked
// ASTs are immutable and safe to share.
type CompiledView struct {
	View *OnDemandFeatureView
	Env  *cel.Env
	// Inputs are the view's inputs in declared order.
	Inputs []ExprInput
	// Asts are the checked expressions, parallel to View.Features.
	Asts []*cel.Ast
}

// ExprInput is one input of an on-demand view as its expressions see it: a variable of an
// object type with one field per request field or feature.
type ExprInput struct {
	Name string
	// Request is true for a request source, false for a feature view.
	Request bool
	// Fields are every field of the input; Used marks those some expression reads.
	Fields []Field
	Used   []bool
	typ    *types.Type
}

// NewObject returns an input value for evaluation: Vals (one per field of the input, nil for
// a null or absent value) is filled by the caller before each evaluation.
func (in *ExprInput) NewObject() *ExprObject {
	return &ExprObject{typ: in.typ, Vals: make([]ref.Val, len(in.Fields))}
}

// ExprObject is the value of an input variable during one evaluation. A field whose value is
// nil is absent: has() is false for it and reading it makes the expression null.
type ExprObject struct {
	typ  *types.Type
	Vals []ref.Val
}

// ErrNullInput is the evaluation error of an expression that read a null input.
var ErrNullInput = errors.New("null input")

// ConvertToNative implements ref.Val.
func (o *ExprObject) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("input %s cannot be converted to %v", o.typ.TypeName(), t)
}

// ConvertToType implements ref.Val.
func (o *ExprObject) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return o.typ
	}
	return types.NewErr("input %s cannot be converted to %s", o.typ.TypeName(), t.TypeName())
}

// Equal implements ref.Val.
func (o *ExprObject) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(o)) }

// Type implements ref.Val.
func (o *ExprObject) Type() ref.Type { return o.typ }

// Value implements ref.Val.
func (o *ExprObject) Value() any { return o }

// celType is the CEL type of a declared type.
func celType(t Type) *types.Type {
	var s *types.Type
	switch t.Elem {
	case Int32, Int64:
		s = types.IntType
	case Float32, Float64:
		s = types.DoubleType
	case Bool:
		s = types.BoolType
	case String:
		s = types.StringType
	case Bytes:
		s = types.BytesType
	case Timestamp:
		s = types.TimestampType
	default:
		s = types.DynType
	}
	if t.Array {
		return types.NewListType(s)
	}
	return s
}

// inputProvider declares the inputs' object types to CEL and reads their fields at run time.
type inputProvider struct {
	*types.Registry
	structs map[string]map[string]*types.FieldType
	names   map[string][]string
}

func (p *inputProvider) FindStructType(name string) (*types.Type, bool) {
	if _, ok := p.structs[name]; ok {
		return types.NewTypeTypeWithParam(types.NewObjectType(name)), true
	}
	return p.Registry.FindStructType(name)
}

func (p *inputProvider) FindStructFieldNames(name string) ([]string, bool) {
	if n, ok := p.names[name]; ok {
		return n, true
	}
	return p.Registry.FindStructFieldNames(name)
}

func (p *inputProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if fs, ok := p.structs[name]; ok {
		ft, ok := fs[field]
		return ft, ok
	}
	return p.Registry.FindStructFieldType(name, field)
}

func (p *inputProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.structs[name]; ok {
		return types.NewErr("inputs cannot be constructed in an expression")
	}
	return p.Registry.NewValue(name, fields)
}

func fieldAccess(i int) *types.FieldType {
	return &types.FieldType{
		IsSet: func(target any) bool {
			o, ok := target.(*ExprObject)
			return ok && o.Vals[i] != nil
		},
		GetFrom: func(target any) (any, error) {
			o, ok := target.(*ExprObject)
			if !ok {
				return nil, errors.New("not an input")
			}
			if v := o.Vals[i]; v != nil {
				return v, nil
			}
			return nil, ErrNullInput
		},
	}
}

// inputTypeName is the CEL type name of an input's object type.
func inputTypeName(input string) string { return "quiver.input." + input }

type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	switch n.Type().Kind() {
	case types.StringKind, types.BytesKind:
		return &checker.SizeEstimate{Min: 0, Max: MaxExprStringSize}
	}
	return nil
}

func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// compileOnDemand parses, type-checks and cost-checks every expression of v, whose inputs
// are known to exist. Errors point into the expressions.
func compileOnDemand(r *Repo, v *OnDemandFeatureView) (*CompiledView, ErrorList) {
	c := &CompiledView{View: v}
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, ErrorList{{Pos: v.Pos, Msg: "build expression environment: " + err.Error()}}
	}
	p := &inputProvider{Registry: reg, structs: map[string]map[string]*types.FieldType{}, names: map[string][]string{}}
	opts := []cel.EnvOption{cel.CustomTypeProvider(p), cel.CrossTypeNumericComparisons(true)}
	for _, name := range v.Inputs {
		in := ExprInput{Name: name}
		if rs := r.RequestSource(name); rs != nil {
			in.Request = true
			in.Fields = rs.Fields
		} else {
			in.Fields = r.FeatureView(name).Features
		}
		in.Used = make([]bool, len(in.Fields))
		tn := inputTypeName(name)
		in.typ = types.NewObjectType(tn)
		fs := map[string]*types.FieldType{}
		for i, f := range in.Fields {
			ft := fieldAccess(i)
			ft.Type = celType(f.Type)
			fs[f.Name] = ft
			p.names[tn] = append(p.names[tn], f.Name)
		}
		p.structs[tn] = fs
		opts = append(opts, cel.Variable(name, in.typ))
		c.Inputs = append(c.Inputs, in)
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, ErrorList{{Pos: v.Pos, Msg: "build expression environment: " + err.Error()}}
	}
	c.Env = env
	var errs ErrorList
	for _, f := range v.Features {
		at := func(loc common.Location) Pos {
			if loc == nil || loc.Line() <= 0 {
				return f.ExprLoc.At(1, 0)
			}
			return f.ExprLoc.At(loc.Line(), loc.Column())
		}
		what := fmt.Sprintf("on-demand feature %s:%s", v.Name, f.Name)
		if len(f.Expr) > MaxExprLength {
			errs.add(at(nil), "%s: expression is %d bytes long; the limit is %d", what, len(f.Expr), MaxExprLength)
			c.Asts = append(c.Asts, nil)
			continue
		}
		ast, iss := env.Compile(f.Expr)
		if iss != nil && iss.Err() != nil {
			for _, e := range iss.Errors() {
				msg := e.Message
				if strings.HasPrefix(msg, "undeclared reference") {
					msg += fmt.Sprintf(" (inputs of %s: %s)", v.Name, strings.Join(v.Inputs, ", "))
				}
				errs.add(at(e.Location), "%s: %s", what, msg)
			}
			c.Asts = append(c.Asts, nil)
			continue
		}
		want := celType(f.Type)
		if out := ast.OutputType(); f.Type.Valid() && !out.IsExactType(want) {
			errs.add(at(nil), "%s is declared %s but its expression is of type %s; declare type: %s or change the expression", what, f.Type, celTypeName(out), declaredFor(out, f.Type))
		}
		used := true
		celast.PreOrderVisit(ast.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
			if e.Kind() != celast.SelectKind {
				return
			}
			sel := e.AsSelect()
			op := sel.Operand()
			if op.Kind() != celast.IdentKind {
				return
			}
			for ii := range c.Inputs {
				in := &c.Inputs[ii]
				if in.Name != op.AsIdent() {
					continue
				}
				for fi, fd := range in.Fields {
					if fd.Name != sel.FieldName() {
						continue
					}
					in.Used[fi] = true
					if fd.Type.Array && used {
						used = false
						loc := ast.NativeRep().SourceInfo().GetStartLocation(e.ID())
						errs.add(at(loc), "%s reads %s.%s, of type %s; expressions read scalar features only", what, in.Name, fd.Name, fd.Type)
					}
				}
			}
		}))
		est, err := env.EstimateCost(ast, sizeEstimator{})
		switch {
		case err != nil:
			errs.add(at(nil), "%s: estimate cost: %v", what, err)
		case est.Max > MaxExprCost:
			errs.add(at(nil), "%s: expression could be too slow (estimated worst-case cost %d, the limit is %d); simplify it", what, est.Max, MaxExprCost)
		}
		c.Asts = append(c.Asts, ast)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func celTypeName(t *types.Type) string {
	switch t.Kind() {
	case types.IntKind:
		return "int"
	case types.DoubleKind:
		return "double"
	case types.BoolKind:
		return "bool"
	case types.StringKind:
		return "string"
	case types.BytesKind:
		return "bytes"
	case types.TimestampKind:
		return "timestamp"
	}
	return t.String()
}

// declaredFor suggests the declared type matching a CEL type.
func declaredFor(t *types.Type, cur Type) string {
	switch t.Kind() {
	case types.IntKind:
		return "int64"
	case types.DoubleKind:
		return "float64"
	case types.BoolKind:
		return "bool"
	case types.StringKind:
		return "string"
	case types.BytesKind:
		return "bytes"
	case types.TimestampKind:
		return "timestamp"
	}
	return cur.String()
}

func (l *ErrorList) addAll(o ErrorList) { *l = append(*l, o...) }
