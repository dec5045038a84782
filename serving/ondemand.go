package serving

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/transform"
	"github.com/quiverfs/quiver/value"
)

// On-demand features in serving: a read plan that holds on-demand features reads the stored
// features their expressions need in the same store round trip (requested or not), takes the
// request fields from the request context, and computes the features in process after the
// read with the snapshot's compiled programs (transform.Set). Their columns are the request
// plan's computed columns, numbered after the store's; p.column points at them, so the response
// keeps the declared order.

// onDemandPlan is the on-demand part of a read plan; shared, read-only, by every request.
type onDemandPlan struct {
	views []*onDemandView
	// The request fields and stored features the views read.
	in transform.Inputs
}

type onDemandView struct {
	view     *transform.View
	features []int // indexes into view.Def.Features
	resp     []int // response column of each of features
	// src says where each of view.Needs() comes from: a request field (request) or a store
	// input; col is the request field index or, after finish, the store column.
	src []onDemandSource
}

type onDemandSource struct {
	request bool
	col     int
}

// addFeature adds on-demand feature f, response column i.
func (od *onDemandPlan) addFeature(d *Definitions, i int, f definitions.ResolvedFeature) error {
	tv := d.transforms.View(f.OnDemand.Name)
	if tv == nil {
		return tag(ErrUnknown, d.Repo.UnknownError(definitions.KindOnDemandView, f.OnDemand.Name))
	}
	var v *onDemandView
	for _, x := range od.views {
		if x.view == tv {
			v = x
		}
	}
	if v == nil {
		v = &onDemandView{view: tv}
		srcs, err := od.in.Add(tv)
		if err != nil {
			return tag(ErrPrecondition, err)
		}
		for _, s := range srcs {
			v.src = append(v.src, onDemandSource{request: s.Request, col: s.Index})
		}
		od.views = append(od.views, v)
	}
	fi := slices.IndexFunc(tv.Def.Features, func(x definitions.OnDemandFeature) bool { return x.Name == f.Feature.Name })
	v.features = append(v.features, fi)
	v.resp = append(v.resp, i)
	return nil
}

// storeInputs are the stored features the on-demand features read.
func (od *onDemandPlan) storeInputs() []transform.Need { return od.in.Store }

// finish places the store inputs at their store columns and the on-demand features after the
// store's columns.
func (od *onDemandPlan) finish(p *readPlan, storeCols []int) {
	k := p.nStore
	for _, v := range od.views {
		for i := range v.src {
			if !v.src[i].request {
				v.src[i].col = storeCols[v.src[i].col]
			}
		}
		for _, r := range v.resp {
			p.column[r] = k
			k++
		}
	}
}

// requestColumns checks the request context against the request fields the plan reads and
// converts them to their declared types. With strict, a column no on-demand feature reads is
// an error; otherwise such columns are left to the caller (Predict's feature overrides).
func (od *onDemandPlan) requestColumns(cols map[string][]online.Value, rows int, strict bool) ([][]online.Value, error) {
	var names []string
	if od != nil {
		names = od.in.RequestNames()
	}
	if strict {
		var extra []string
		for n := range cols {
			if !slices.Contains(names, n) {
				extra = append(extra, n)
			}
		}
		if len(extra) > 0 {
			sort.Strings(extra)
			if len(names) == 0 {
				return nil, invalidf("request_context %q is not read by any requested feature (no requested on-demand feature reads request fields)", extra[0])
			}
			return nil, invalidf("request_context %q is not read by any requested on-demand feature (request fields read: %s)%s", extra[0], strings.Join(names, ", "), definitions.Suggest(extra[0], names))
		}
	}
	if od == nil || len(names) == 0 {
		return nil, nil
	}
	out := make([][]online.Value, len(names))
	for j, n := range names {
		vals, ok := cols[n]
		if !ok {
			return nil, invalidf("request_context is missing %q, field of request source %q read by on-demand view %q; add request_context %q with one value per entity row", n, od.in.Request[j].Source, od.in.Request[j].View, n)
		}
		if len(vals) != rows {
			return nil, invalidf("request_context %q has %d values for %d entity rows", n, len(vals), rows)
		}
		t := od.in.Request[j].Type
		col := make([]online.Value, rows)
		for r, x := range vals {
			v, err := value.Coerce(x, t)
			if err != nil {
				return nil, invalidf("request_context %q row %d: %v", n, r, err)
			}
			col[r] = v
		}
		out[j] = col
	}
	return out, nil
}

// evalChunkRows is how many rows compute evaluates between checks of the request's deadline.
const evalChunkRows = 64

// compute evaluates the plan's on-demand features over the store's result into p.computed
// (in the order finish placed them; p is the request's own plan). It stops with ctx's error
// once ctx is done, checked every evalChunkRows rows of every view.
func (od *onDemandPlan) compute(ctx context.Context, p *readPlan, res *online.ReadResult, req [][]online.Value) error {
	if od == nil {
		return nil
	}
	rows := res.Rows
	zeroTS := make([]time.Time, rows) // on-demand values have no event time
	n := 0
	for _, v := range od.views {
		n += len(v.features)
	}
	p.computed = make([]online.Column, 0, n)
	// One backing array for every computed column's statuses, and one for their values.
	statuses := make([]online.Status, n*rows)
	values := make([]online.Value, n*rows)
	var cols [][]online.Value
	var out [][]online.Value
	for _, v := range od.views {
		cols = slices.Grow(cols[:0], len(v.src))[:len(v.src)]
		for i, s := range v.src {
			if s.request {
				cols[i] = req[s.col]
				continue
			}
			cols[i] = presentValues(&res.Columns[s.col])
		}
		out = slices.Grow(out[:0], len(v.features))[:len(v.features)]
		for k := range out {
			at := (len(p.computed) + k) * rows
			out[k] = values[at : at+rows : at+rows]
		}
		if err := evalChunked(ctx, v.view, rows, cols, v.features, out); err != nil {
			return err
		}
		for _, vals := range out {
			k := len(p.computed)
			st := statuses[k*rows : (k+1)*rows : (k+1)*rows]
			for r, x := range vals {
				st[r] = online.Present
				if x.IsNull() {
					st[r] = online.NullValue
				}
			}
			p.computed = append(p.computed, online.Column{Feature: -1, Values: vals, Statuses: st, EventTS: zeroTS})
		}
	}
	return nil
}

// evalChunked is view.Eval over rows rows, evalChunkRows at a time, checking ctx before each.
func evalChunked(ctx context.Context, view *transform.View, rows int, cols [][]online.Value, features []int, out [][]online.Value) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if rows <= evalChunkRows { // one chunk: the columns as they are, nothing to slice
		return view.Eval(rows, cols, features, out)
	}
	ccols, cout := make([][]online.Value, len(cols)), make([][]online.Value, len(out))
	for lo := 0; lo < rows; lo += evalChunkRows {
		if lo > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		hi := min(lo+evalChunkRows, rows)
		for i, c := range cols {
			ccols[i] = c[lo:hi]
		}
		for k, o := range out {
			cout[k] = o[lo:hi:hi]
		}
		if err := view.Eval(hi-lo, ccols, features, cout); err != nil {
			return err
		}
	}
	return nil
}

// presentValues is a stored column as an on-demand input: a value read past the view's TTL
// is null, as the point-in-time join of `dataset create` makes it.
func presentValues(c *online.Column) []online.Value {
	for r, st := range c.Statuses {
		if st == online.OutsideMaxAge && !c.Values[r].IsNull() {
			out := slices.Clone(c.Values)
			for q := r; q < len(out); q++ {
				if c.Statuses[q] == online.OutsideMaxAge {
					out[q] = online.Null()
				}
			}
			return out
		}
	}
	return c.Values
}
