package training

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/transform"
)

// On-demand features in dataset create: the join reads the stored features the expressions
// need (requested or not), the request fields come from the entity rows' columns of the same
// names, and every batch of joined rows is run through the same compiled programs serving
// uses (package transform), so the values match serving's bit for bit.

// datasetOnDemand is the on-demand part of a dataset build.
type datasetOnDemand struct {
	views []*datasetODView
	// The request fields and stored features the views read.
	in transform.Inputs
}

type datasetODView struct {
	view     *transform.View
	features []int // indexes into view.Def.Features
	src      []datasetSource
}

type datasetSource struct {
	request bool
	idx     int // request field or store need index; after bind, a joined column index
}

// planOnDemand compiles the on-demand views of a service's features, or returns nil when it
// has none.
func planOnDemand(repo *definitions.Repo, features []definitions.ResolvedFeature) (*datasetOnDemand, error) {
	var od *datasetOnDemand
	var set *transform.Set
	for _, f := range features {
		if f.OnDemand == nil {
			continue
		}
		if od == nil {
			s, err := transform.Compile(repo)
			if err != nil {
				return nil, err
			}
			set, od = s, &datasetOnDemand{}
		}
		tv := set.View(f.OnDemand.Name)
		var v *datasetODView
		for _, x := range od.views {
			if x.view == tv {
				v = x
			}
		}
		if v == nil {
			v = &datasetODView{view: tv}
			srcs, err := od.in.Add(tv)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
			}
			for _, s := range srcs {
				v.src = append(v.src, datasetSource{request: s.Request, idx: s.Index})
			}
			od.views = append(od.views, v)
		}
		v.features = append(v.features, slices.IndexFunc(tv.Def.Features, func(x definitions.OnDemandFeature) bool { return x.Name == f.Feature.Name }))
	}
	return od, nil
}

// bind resolves the sources to columns of the joined schema: request fields to the entity
// columns of the same names (the first nEntity), stored features to joined[view:feature].
func (od *datasetOnDemand) bind(schema *arrow.Schema, nEntity int, joined func(view, feature string) int) error {
	reqCol := make([]int, len(od.in.Request))
	for j, r := range od.in.Request {
		n, from := r.Name, fmt.Sprintf("request source %q of on-demand view %q", r.Source, r.View)
		reqCol[j] = -1
		for i := range nEntity {
			if schema.Field(i).Name == n {
				reqCol[j] = i
			}
		}
		if reqCol[j] < 0 {
			return fmt.Errorf("%w: the entity rows have no column %q, field of %s; add a column %q (%s) to the entity file", ErrInvalidInput, n, from, n, r.Type)
		}
		if _, ok := requestReadable(schema.Field(reqCol[j]).Type, r.Type); !ok {
			return fmt.Errorf("%w: entity column %q is %s; request field %q of %s is %s", ErrInvalidInput, n, schema.Field(reqCol[j]).Type, n, from, r.Type)
		}
	}
	for _, v := range od.views {
		for i, s := range v.src {
			if s.request {
				v.src[i].idx = reqCol[s.idx]
			} else {
				n := od.in.Store[s.idx]
				v.src[i].idx = joined(n.Input, n.Field.Name)
			}
		}
	}
	return nil
}

// compute evaluates every on-demand feature over one joined batch, whose first row is entity
// row firstRow: out[view][k] is the Arrow column of the view's k-th requested feature.
func (od *datasetOnDemand) compute(rec arrow.RecordBatch, firstRow int64) ([][]arrow.Array, error) {
	rows := int(rec.NumRows())
	out := make([][]arrow.Array, len(od.views))
	for vi, v := range od.views {
		needs := v.view.Needs()
		cols := make([][]online.Value, len(v.src))
		for i, s := range v.src {
			c, err := arrowValues(rec.Column(s.idx), needs[i].Field.Type)
			if err != nil {
				var re *rowError
				if errors.As(err, &re) && s.request {
					return nil, fmt.Errorf("%w: entity column %q row %d: %w", ErrInvalidInput, needs[i].Field.Name, firstRow+int64(re.row), re.err)
				}
				return nil, fmt.Errorf("on-demand view %q input %s.%s: %w", v.view.Def.Name, needs[i].Input, needs[i].Field.Name, err)
			}
			cols[i] = c
		}
		vals := make([][]online.Value, len(v.features))
		if err := v.view.Eval(rows, cols, v.features, vals); err != nil {
			return nil, err
		}
		out[vi] = make([]arrow.Array, len(vals))
		for k, col := range vals {
			a, err := arrowArray(col, v.view.Def.Features[v.features[k]].Type)
			if err != nil {
				return nil, err
			}
			out[vi][k] = a
		}
	}
	return out, nil
}

// requestReadable reports whether an entity column of type dt can feed a request field of
// type t: the same type, a lossless widening, whole numbers for a float field, or a float64
// for a float32 field (rounded to the nearest float32, as serving rounds a request's double).
func requestReadable(dt arrow.DataType, t definitions.Type) (definitions.Type, bool) {
	got, ok := offline.TypeFromArrow(dt)
	if !ok || got.Array || t.Array {
		return got, false
	}
	if got == t {
		return got, true
	}
	switch t.Elem {
	case definitions.Int64:
		return got, got.Elem == definitions.Int32
	case definitions.Float64:
		return got, got.Elem == definitions.Float32 || got.Elem == definitions.Int32 || got.Elem == definitions.Int64
	case definitions.Float32:
		return got, got.Elem == definitions.Int32 || got.Elem == definitions.Float64
	}
	return got, false
}

// rowError is a value of a column that its declared type cannot hold.
type rowError struct {
	row int
	err error
}

func (e *rowError) Error() string { return fmt.Sprintf("row %d: %v", e.row, e.err) }

// arrowValues converts a column to values of declared type t (null for nulls).
func arrowValues(a arrow.Array, t definitions.Type) ([]online.Value, error) {
	n := a.Len()
	out := make([]online.Value, n)
	set := func(f func(i int) online.Value) {
		for i := range n {
			if a.IsValid(i) {
				out[i] = f(i)
			}
		}
	}
	switch c := a.(type) {
	case *array.Int32:
		switch t.Elem {
		case definitions.Int32:
			set(func(i int) online.Value { return online.Int32(c.Value(i)) })
		case definitions.Int64:
			set(func(i int) online.Value { return online.Int64(int64(c.Value(i))) })
		case definitions.Float64:
			set(func(i int) online.Value { return online.Float64(float64(c.Value(i))) })
		case definitions.Float32:
			set(func(i int) online.Value { return online.Float32(float32(c.Value(i))) })
		default:
			return nil, fmt.Errorf("int32 column for a %s field", t)
		}
	case *array.Int64:
		switch t.Elem {
		case definitions.Int64:
			set(func(i int) online.Value { return online.Int64(c.Value(i)) })
		case definitions.Float64:
			set(func(i int) online.Value { return online.Float64(float64(c.Value(i))) })
		default:
			return nil, fmt.Errorf("int64 column for a %s field", t)
		}
	case *array.Float32:
		switch t.Elem {
		case definitions.Float32:
			set(func(i int) online.Value { return online.Float32(c.Value(i)) })
		case definitions.Float64:
			set(func(i int) online.Value { return online.Float64(float64(c.Value(i))) })
		default:
			return nil, fmt.Errorf("float32 column for a %s field", t)
		}
	case *array.Float64:
		switch t.Elem {
		case definitions.Float64:
			set(func(i int) online.Value { return online.Float64(c.Value(i)) })
		case definitions.Float32:
			for i := range n {
				if !a.IsValid(i) {
					continue
				}
				x := c.Value(i)
				f := float32(x)
				if math.IsInf(float64(f), 0) && !math.IsInf(x, 0) {
					return nil, &rowError{i, fmt.Errorf("float64 value %g is outside float32's range", x)}
				}
				out[i] = online.Float32(f)
			}
		default:
			return nil, fmt.Errorf("float64 column for a %s field", t)
		}
	case *array.Boolean:
		if t.Elem != definitions.Bool {
			return nil, fmt.Errorf("bool column for a %s field", t)
		}
		set(func(i int) online.Value { return online.Bool(c.Value(i)) })
	case *array.String:
		if t.Elem != definitions.String {
			return nil, fmt.Errorf("string column for a %s field", t)
		}
		set(func(i int) online.Value { return online.String(c.Value(i)) })
	case *array.LargeString:
		if t.Elem != definitions.String {
			return nil, fmt.Errorf("string column for a %s field", t)
		}
		set(func(i int) online.Value { return online.String(c.Value(i)) })
	case *array.Binary:
		if t.Elem != definitions.Bytes {
			return nil, fmt.Errorf("binary column for a %s field", t)
		}
		set(func(i int) online.Value { return online.Bytes(c.Value(i)) })
	case *array.Timestamp:
		if t.Elem != definitions.Timestamp {
			return nil, fmt.Errorf("timestamp column for a %s field", t)
		}
		unit := c.DataType().(*arrow.TimestampType).Unit
		set(func(i int) online.Value { return online.Timestamp(c.Value(i).ToTime(unit)) })
	default:
		return nil, fmt.Errorf("%s column cannot be read as %s", a.DataType(), t)
	}
	return out, nil
}

// arrowArray builds the Arrow column of on-demand values of declared type t.
func arrowArray(vals []online.Value, t definitions.Type) (arrow.Array, error) {
	dt, err := offline.ArrowType(t)
	if err != nil {
		return nil, err
	}
	b := array.NewBuilder(memory.DefaultAllocator, dt)
	defer b.Release()
	b.Reserve(len(vals))
	for _, v := range vals {
		if v.IsNull() {
			b.AppendNull()
			continue
		}
		switch bb := b.(type) {
		case *array.Int32Builder:
			bb.Append(v.Int32())
		case *array.Int64Builder:
			bb.Append(v.Int64())
		case *array.Float32Builder:
			bb.Append(v.Float32())
		case *array.Float64Builder:
			bb.Append(v.Float64())
		case *array.BooleanBuilder:
			bb.Append(v.Bool())
		case *array.StringBuilder:
			bb.Append(v.Str())
		case *array.BinaryBuilder:
			bb.Append(v.BytesValue())
		case *array.TimestampBuilder:
			bb.Append(arrow.Timestamp(v.Time().UnixMicro()))
		default:
			return nil, fmt.Errorf("no Arrow builder for %s", t)
		}
	}
	return b.NewArray(), nil
}
