package training

import (
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/transform"
	"github.com/quiverfs/quiver/value"
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
		if !requestReadable(schema.Field(reqCol[j]).Type, r.Type) {
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
// row firstRow (0-based; errors name rows from 1, as the entity file's other errors do):
// out[view][k] is the Arrow column of the view's k-th requested feature.
func (od *datasetOnDemand) compute(rec arrow.RecordBatch, firstRow int64) ([][]arrow.Array, error) {
	rows := int(rec.NumRows())
	out := make([][]arrow.Array, len(od.views))
	for vi, v := range od.views {
		needs := v.view.Needs()
		cols := make([][]value.Value, len(v.src))
		for i, s := range v.src {
			c, err := columnValues(rec.Column(s.idx), needs[i].Field.Type)
			if err != nil {
				var re *rowError
				if errors.As(err, &re) && s.request {
					return nil, fmt.Errorf("%w: entity column %q row %d: %w", ErrInvalidInput, needs[i].Field.Name, firstRow+int64(re.row)+1, re.err)
				}
				return nil, fmt.Errorf("on-demand view %q input %s.%s: %w", v.view.Def.Name, needs[i].Input, needs[i].Field.Name, err)
			}
			cols[i] = c
		}
		vals := make([][]value.Value, len(v.features))
		if err := v.view.Eval(rows, cols, v.features, vals); err != nil {
			return nil, err
		}
		out[vi] = make([]arrow.Array, len(vals))
		for k, col := range vals {
			a, err := value.NewArrowArray(memory.DefaultAllocator, v.view.Def.Features[v.features[k]].Type, col)
			if err != nil {
				return nil, err
			}
			out[vi][k] = a
		}
	}
	return out, nil
}

// requestReadable reports whether an entity column of type dt can feed a request field of
// type t: a scalar column whose values convert to t by the one rule (value.Coerce).
func requestReadable(dt arrow.DataType, t definitions.Type) bool {
	got, ok := value.TypeFromArrow(dt)
	return ok && !got.Array && !t.Array && value.CanCoerce(got, t)
}

// columnValues reads an Arrow column of the joined rows as values of declared type t, each
// converted by value.Coerce; the error names the row of the batch that does not convert.
func columnValues(a arrow.Array, t definitions.Type) ([]value.Value, error) {
	got, ok := value.TypeFromArrow(a.DataType())
	if !ok {
		return nil, fmt.Errorf("%s column cannot be read as %s", a.DataType(), t)
	}
	read, err := value.ColumnReader(a, got)
	if err != nil {
		return nil, err
	}
	out := make([]value.Value, a.Len())
	for i := range out {
		if out[i], err = value.Coerce(read(i), t); err != nil {
			return nil, &rowError{i, err}
		}
	}
	return out, nil
}

// rowError is a value of a column that its declared type cannot hold.
type rowError struct {
	row int
	err error
}

func (e *rowError) Error() string { return fmt.Sprintf("row %d: %v", e.row, e.err) }

func (e *rowError) Unwrap() error { return e.err }
