package serving

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/value"
)

// readPlan is a resolved feature request: which views to read, which of their features, and
// how the store's columns map to the response's.
type readPlan struct {
	features []definitions.ResolvedFeature // in response order
	names    []string                      // response column names, parallel to features
	views    []*online.View                // distinct views in first-use order
	reads    []online.ViewRead             // parallel to views; Keys filled per request
	column   []int                         // response column i is store column column[i]
	// onDemand computes the on-demand features after the store read (ondemand.go); their
	// response columns are p.computed, numbered after the store's nStore columns.
	onDemand *onDemandPlan
	nStore   int
	rows     int // entity rows of the request (fillKeys)
	// computed holds the request's on-demand columns: column nStore+k is computed[k].
	computed []online.Column
}

// resultColumn is response column i: a store column of res, or a computed one.
func (p *readPlan) resultColumn(res *online.ReadResult, i int) *online.Column {
	if j := p.column[i]; j >= p.nStore {
		return &p.computed[j-p.nStore]
	}
	return &res.Columns[p.column[i]]
}

// resolveFeatures expands a feature service or a list of "view:feature" references.
func resolveFeatures(d *Definitions, service string, refs []string) ([]definitions.ResolvedFeature, error) {
	if service != "" {
		if fs, ok := d.services[service]; ok {
			return fs, nil
		}
		return nil, tag(ErrUnknown, d.Repo.UnknownError(definitions.KindFeatureService, service))
	}
	if len(refs) == 0 {
		return nil, invalidf("no features requested: set feature_service or features")
	}
	parsed := make([]definitions.FeatureRef, len(refs))
	for i, r := range refs {
		ref, err := definitions.ParseFeatureRef(r)
		if err != nil {
			return nil, tag(ErrInvalidRequest, err)
		}
		parsed[i] = ref
	}
	fs, err := d.Repo.ResolveRefs(parsed)
	if err != nil {
		return nil, tag(ErrUnknown, err)
	}
	return fs, nil
}

// planRead groups features by view for one store round trip and names the response columns.
func planRead(d *Definitions, features []definitions.ResolvedFeature, fullNames bool) (*readPlan, error) {
	p := &readPlan{features: features, names: make([]string, len(features)), column: make([]int, len(features))}
	viewIdx := map[string]int{}
	seen := make(map[string]string, len(features))
	type pos struct{ view, feat int }
	at := make([]pos, len(features))
	// addRead adds feature feat of view fv to the store reads, once.
	addRead := func(fv *definitions.FeatureView, feat string) (pos, error) {
		vi, ok := viewIdx[fv.Name]
		if !ok {
			if !fv.Online {
				return pos{}, tagf(ErrPrecondition, "feature view %q is not online (online: false); it cannot be served", fv.Name)
			}
			v := d.View(fv.Name)
			if v == nil {
				return pos{}, tag(ErrUnknown, d.Repo.UnknownError(definitions.KindFeatureView, fv.Name))
			}
			vi = len(p.views)
			viewIdx[fv.Name] = vi
			p.views = append(p.views, v)
			p.reads = append(p.reads, online.ViewRead{View: v, Features: []int{}})
		}
		idx, err := p.views[vi].FeatureIndexes(feat)
		if err != nil {
			return pos{}, tag(ErrUnknown, err)
		}
		if j := slices.Index(p.reads[vi].Features, idx[0]); j >= 0 {
			return pos{vi, j}, nil
		}
		p.reads[vi].Features = append(p.reads[vi].Features, idx[0])
		return pos{vi, len(p.reads[vi].Features) - 1}, nil
	}
	od := &onDemandPlan{}
	for i, f := range features {
		name := f.Feature.Name
		if fullNames {
			name = f.ViewName() + "__" + f.Feature.Name
		}
		if prev, dup := seen[name]; dup {
			if prev == f.Ref() {
				return nil, invalidf("feature %s requested twice", f.Ref())
			}
			return nil, invalidf("features %s and %s would both be named %q; set full_feature_names", prev, f.Ref(), name)
		}
		seen[name] = f.Ref()
		p.names[i] = name
		if f.OnDemand != nil {
			if err := od.addFeature(d, i, f); err != nil {
				return nil, err
			}
			continue
		}
		a, err := addRead(f.View, f.Feature.Name)
		if err != nil {
			return nil, err
		}
		at[i] = a
	}
	// The stored features on-demand features read, requested or not.
	var inputAt []pos
	for _, in := range od.storeInputs() {
		a, err := addRead(d.Repo.FeatureView(in.Input), in.Field.Name)
		if err != nil {
			return nil, err
		}
		inputAt = append(inputAt, a)
	}
	// Store columns come view by view, each view's features in the order asked.
	first := make([]int, len(p.reads))
	n := 0
	for i, r := range p.reads {
		first[i] = n
		n += len(r.Features)
	}
	for i, a := range at {
		if features[i].OnDemand == nil { // on-demand columns are placed by finish
			p.column[i] = first[a.view] + a.feat
		}
	}
	p.nStore = n
	if len(od.views) > 0 {
		storeCols := make([]int, len(inputAt))
		for i, a := range inputAt {
			storeCols[i] = first[a.view] + a.feat
		}
		od.finish(p, storeCols)
		p.onDemand = od
	}
	return p, nil
}

type planKey struct {
	service   string
	fullNames bool
}

// servicePlan is planRead for a feature service, cached in the snapshot. The returned plan is
// the caller's: its reads are a copy, ready for the request's keys.
func servicePlan(d *Definitions, service string, fullNames bool) (*readPlan, error) {
	k := planKey{service, fullNames}
	if p, ok := d.plans.Load(k); ok {
		return p.(*readPlan).clone(), nil
	}
	features, err := resolveFeatures(d, service, nil)
	if err != nil {
		return nil, err
	}
	p, err := planRead(d, features, fullNames)
	if err != nil {
		return nil, err
	}
	d.plans.Store(k, p)
	return p.clone(), nil
}

// clone copies what a request changes (the reads' keys); the rest is shared and read-only.
func (p *readPlan) clone() *readPlan {
	c := *p
	c.reads = slices.Clone(p.reads)
	return &c
}

// entityRows is the checked entity input of a request.
type entityRows struct {
	rows int
	cols map[string][]online.Value
}

// checkEntities checks the shape of the entity columns: at least one, all the same length,
// within the batch limit, and every name a join key of some entity.
func checkEntities(d *Definitions, cols map[string][]online.Value, maxRows int) (entityRows, error) {
	if len(cols) == 0 {
		return entityRows{}, invalidf("no entities given: set entities to one column per join key")
	}
	names := make([]string, 0, len(cols))
	for name := range cols {
		names = append(names, name)
	}
	sort.Strings(names)
	rows := -1
	for _, name := range names {
		if !d.keys[name] {
			valid := make([]string, 0, len(d.keys))
			for k := range d.keys {
				valid = append(valid, k)
			}
			sort.Strings(valid)
			return entityRows{}, tagf(ErrUnknown, "unknown join key %q (join keys: %s)%s", name, strings.Join(valid, ", "), definitions.Suggest(name, valid))
		}
		n := len(cols[name])
		if rows >= 0 && n != rows {
			return entityRows{}, invalidf("entity column %q has %d values, column %q has %d; all entity columns must have one value per row", name, n, names[0], rows)
		}
		rows = n
	}
	if rows == 0 {
		return entityRows{}, invalidf("entity columns are empty")
	}
	if maxRows > 0 && rows > maxRows {
		return entityRows{}, tagf(ErrTooLarge, "%d entity rows requested, the limit is %d", rows, maxRows)
	}
	return entityRows{rows: rows, cols: cols}, nil
}

// fillKeys encodes each view's entity keys from the entity columns.
func fillKeys(p *readPlan, e entityRows) error {
	buf := make([]byte, 0, 128)                         // scratch for encoding; each key is copied out as a string
	shared := map[online.EntityKey][]online.EntityKey{} // views with the same entities share keys
	p.rows = e.rows
	for i := range p.reads {
		v := p.reads[i].View
		if keys, ok := shared[v.KeyPrefix()]; ok {
			p.reads[i].Keys = keys
			continue
		}
		cols := make([][]online.Value, len(v.JoinKeys))
		for j, jk := range v.JoinKeys {
			c, ok := e.cols[jk.Name]
			if !ok {
				return invalidf("feature view %q needs join key %q (of entities %s); add an entities column %q", v.Name, jk.Name, strings.Join(v.Entities, ", "), jk.Name)
			}
			cols[j] = c
		}
		keys := make([]online.EntityKey, e.rows)
		vals := make([]online.Value, len(v.JoinKeys))
		for r := range e.rows {
			for j, jk := range v.JoinKeys {
				val := cols[j][r]
				if val.IsNull() {
					return invalidf("join key %q row %d is null", jk.Name, r)
				}
				cv, err := value.Coerce(val, jk.Type)
				if err != nil {
					return invalidf("join key %q row %d: %v", jk.Name, r, err)
				}
				vals[j] = cv
			}
			k, err := v.AppendKey(buf, vals...)
			if err != nil {
				return fmt.Errorf("row %d: %w", r, err)
			}
			keys[r] = k
		}
		p.reads[i].Keys = keys
		shared[v.KeyPrefix()] = keys
	}
	return nil
}

// read runs the plan against the store: one Read call, so one round trip for backends that
// pipeline.
func (s *Server) read(ctx context.Context, p *readPlan) (*online.ReadResult, error) {
	return s.retriever().read(ctx, p)
}

func (r retriever) read(ctx context.Context, p *readPlan) (*online.ReadResult, error) {
	if len(p.reads) == 0 { // only on-demand features over request fields
		return &online.ReadResult{Rows: p.rows}, nil
	}
	start := time.Now()
	res, err := r.store.Read(ctx, online.ReadRequest{Views: p.reads})
	if r.metrics != nil {
		r.metrics.storeLatency.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		return nil, fmt.Errorf("read online store: %w", err)
	}
	if res.Rows != len(p.reads[0].Keys) || len(res.Columns) < p.nStore {
		return nil, fmt.Errorf("online store returned %d rows × %d columns for %d rows × %d features", res.Rows, len(res.Columns), len(p.reads[0].Keys), len(p.features))
	}
	return res, nil
}

var nullValue = &pb.Value{}

// vectorOf converts a column of stored values (of type t, or null) to a typed vector; nulls
// become the type's zero value.
func vectorOf(src []online.Value, t definitions.Type) *pb.Vector {
	if t.Array {
		vals := make([]*pb.Value, len(src))
		for r, v := range src {
			if v.IsNull() {
				vals[r] = nullValue
			} else {
				vals[r] = toProto(v)
			}
		}
		return &pb.Vector{Kind: &pb.Vector_ListValues{ListValues: &pb.RepeatedValue{Val: vals}}}
	}
	switch t.Elem {
	case definitions.Int32:
		out := make([]int32, len(src))
		for r, v := range src {
			out[r] = v.Int32()
		}
		return &pb.Vector{Kind: &pb.Vector_Int32Values{Int32Values: &pb.Int32List{Val: out}}}
	case definitions.Int64:
		out := make([]int64, len(src))
		for r, v := range src {
			out[r] = v.Int64()
		}
		return &pb.Vector{Kind: &pb.Vector_Int64Values{Int64Values: &pb.Int64List{Val: out}}}
	case definitions.Float32:
		out := make([]float32, len(src))
		for r, v := range src {
			out[r] = v.Float32()
		}
		return &pb.Vector{Kind: &pb.Vector_FloatValues{FloatValues: &pb.FloatList{Val: out}}}
	case definitions.Float64:
		out := make([]float64, len(src))
		for r, v := range src {
			out[r] = v.Float64()
		}
		return &pb.Vector{Kind: &pb.Vector_DoubleValues{DoubleValues: &pb.DoubleList{Val: out}}}
	case definitions.Bool:
		out := make([]bool, len(src))
		for r, v := range src {
			out[r] = v.Bool()
		}
		return &pb.Vector{Kind: &pb.Vector_BoolValues{BoolValues: &pb.BoolList{Val: out}}}
	case definitions.String:
		out := make([]string, len(src))
		for r, v := range src {
			out[r] = v.Str()
		}
		return &pb.Vector{Kind: &pb.Vector_StringValues{StringValues: &pb.StringList{Val: out}}}
	case definitions.Bytes:
		out := make([][]byte, len(src))
		for r, v := range src {
			if !v.IsNull() {
				out[r] = v.BytesValue()
			} else {
				out[r] = []byte{}
			}
		}
		return &pb.Vector{Kind: &pb.Vector_BytesValues{BytesValues: &pb.BytesList{Val: out}}}
	case definitions.Timestamp:
		out := make([]*timestamp, len(src))
		buf := make([]timestamp, len(src))
		for r, v := range src {
			if !v.IsNull() {
				t := v.Time()
				buf[r].Seconds, buf[r].Nanos = t.Unix(), int32(t.Nanosecond())
			}
			out[r] = &buf[r]
		}
		return &pb.Vector{Kind: &pb.Vector_TimestampValues{TimestampValues: &pb.TimestampList{Val: out}}}
	}
	return &pb.Vector{}
}

// VectorLen is the number of rows a vector holds.
func VectorLen(v *pb.Vector) int {
	switch k := v.GetKind().(type) {
	case *pb.Vector_Int32Values:
		return len(k.Int32Values.GetVal())
	case *pb.Vector_Int64Values:
		return len(k.Int64Values.GetVal())
	case *pb.Vector_FloatValues:
		return len(k.FloatValues.GetVal())
	case *pb.Vector_DoubleValues:
		return len(k.DoubleValues.GetVal())
	case *pb.Vector_BoolValues:
		return len(k.BoolValues.GetVal())
	case *pb.Vector_StringValues:
		return len(k.StringValues.GetVal())
	case *pb.Vector_BytesValues:
		return len(k.BytesValues.GetVal())
	case *pb.Vector_TimestampValues:
		return len(k.TimestampValues.GetVal())
	case *pb.Vector_ListValues:
		return len(k.ListValues.GetVal())
	}
	return 0
}

// VectorValue returns row r of a vector as a Value (an empty Value when r is out of range).
func VectorValue(v *pb.Vector, r int) *pb.Value {
	if r < 0 || r >= VectorLen(v) {
		return &pb.Value{}
	}
	switch k := v.GetKind().(type) {
	case *pb.Vector_Int32Values:
		return &pb.Value{Kind: &pb.Value_Int32Val{Int32Val: k.Int32Values.Val[r]}}
	case *pb.Vector_Int64Values:
		return &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: k.Int64Values.Val[r]}}
	case *pb.Vector_FloatValues:
		return &pb.Value{Kind: &pb.Value_FloatVal{FloatVal: k.FloatValues.Val[r]}}
	case *pb.Vector_DoubleValues:
		return &pb.Value{Kind: &pb.Value_DoubleVal{DoubleVal: k.DoubleValues.Val[r]}}
	case *pb.Vector_BoolValues:
		return &pb.Value{Kind: &pb.Value_BoolVal{BoolVal: k.BoolValues.Val[r]}}
	case *pb.Vector_StringValues:
		return &pb.Value{Kind: &pb.Value_StringVal{StringVal: k.StringValues.Val[r]}}
	case *pb.Vector_BytesValues:
		return &pb.Value{Kind: &pb.Value_BytesVal{BytesVal: k.BytesValues.Val[r]}}
	case *pb.Vector_TimestampValues:
		return &pb.Value{Kind: &pb.Value_TimestampVal{TimestampVal: k.TimestampValues.Val[r]}}
	case *pb.Vector_ListValues:
		return k.ListValues.Val[r]
	}
	return &pb.Value{}
}
