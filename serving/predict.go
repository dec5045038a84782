package serving

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving/model"
	"github.com/quiverfs/quiver/value"
)

// Predict implements pb.FeatureServingServer.
func (s *Server) Predict(ctx context.Context, req *pb.PredictRequest) (*pb.PredictResponse, error) {
	start := time.Now()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	resp, label, err := s.predict(ctx, req)
	if err == nil {
		err = ctx.Err() // never OK once the deadline passed
	}
	if err := s.finish(ctx, "Predict", label, start, err); err != nil {
		return nil, err
	}
	return resp, nil
}

// modelInput reports whether a feature type can be fed to a model (as one float per row).
func modelInput(t definitions.Type) bool {
	if t.Array {
		return false
	}
	switch t.Elem {
	case definitions.Int32, definitions.Int64, definitions.Float32, definitions.Float64, definitions.Bool:
		return true
	}
	return false
}

// asFloat is a value as a model input; null is NaN (missing).
func asFloat(v online.Value) float32 {
	if v.IsNull() {
		return float32(math.NaN())
	}
	switch v.Type().Elem {
	case definitions.Int32:
		return float32(v.Int32())
	case definitions.Int64:
		return float32(v.Int64())
	case definitions.Float32:
		return v.Float32()
	case definitions.Float64:
		return float32(v.Float64())
	case definitions.Bool:
		if v.Bool() {
			return 1
		}
		return 0
	}
	return float32(math.NaN())
}

func (s *Server) predict(ctx context.Context, req *pb.PredictRequest) (*pb.PredictResponse, string, error) {
	label := "unknown"
	if err := ctx.Err(); err != nil { // its deadline may have passed while it was decoded
		return nil, label, err
	}
	d, err := s.defs.get()
	if err != nil {
		return nil, label, err
	}
	ref := model.Ref{Name: req.GetModel().GetName(), Version: req.GetModel().GetVersion(), Alias: req.GetModel().GetAlias()}
	if ref.Name == "" {
		return nil, label, invalidf("model.name is required")
	}
	v, err := s.opts.ModelResolver.ResolveModel(ctx, d, ref)
	if err != nil {
		return nil, label, err
	}
	label = v.Model
	features, ok := d.services[v.FeatureService]
	if !ok {
		return nil, label, tagf(ErrPrecondition, "model %q version %s is served with feature service %q, which is not defined", v.Model, v.Version, v.FeatureService)
	}
	for _, f := range features {
		if !modelInput(f.Feature.Type) {
			return nil, label, tagf(ErrPrecondition, "model %q: feature %s has type %s; models take int32, int64, float32, float64 and bool features", v.Model, f.Ref(), f.Feature.Type)
		}
	}
	p, err := servicePlan(d, v.FeatureService, false)
	if err != nil {
		return nil, label, err
	}
	entCols, err := columnsFromProto("entities", req.GetEntities())
	if err != nil {
		return nil, label, err
	}
	ctxCols, err := columnsFromProto("request_context", req.GetRequestContext())
	if err != nil {
		return nil, label, err
	}
	ents, err := checkEntities(d, entCols, s.opts.MaxEntityRows)
	if err != nil {
		return nil, label, err
	}
	s.metrics.entityRows.WithLabelValues("Predict").Observe(float64(ents.rows))
	// Request fields of on-demand features first; the other columns override features.
	reqCols, err := p.onDemand.requestColumns(ctxCols, ents.rows, false)
	if err != nil {
		return nil, label, err
	}
	if p.onDemand != nil && len(p.onDemand.in.Request) > 0 {
		rest := make(map[string][]online.Value, len(ctxCols))
		for n, c := range ctxCols {
			if !slices.Contains(p.onDemand.in.RequestNames(), n) {
				rest[n] = c
			}
		}
		ctxCols = rest
	}
	overrides, err := requestContext(p, ctxCols, ents.rows)
	if err != nil {
		return nil, label, err
	}
	if err := fillKeys(p, ents); err != nil {
		return nil, label, err
	}
	res, err := s.read(ctx, p)
	if err != nil {
		return nil, label, err
	}
	// Request-time values replace stored ones; the result's columns are ours to change.
	for i, vals := range overrides {
		if vals == nil {
			continue
		}
		c := &res.Columns[p.column[i]]
		c.Values = vals
		c.Statuses = make([]online.Status, res.Rows)
		for r := range c.Statuses {
			c.Statuses[r] = online.Present
		}
	}
	if h := s.hooks.beforeEval; h != nil && p.onDemand != nil {
		h(ctx)
	}
	if err := p.onDemand.compute(ctx, p, res, reqCols); err != nil {
		res.Release()
		return nil, label, err
	}
	batch := &model.Batch{Rows: res.Rows, Features: p.names, Data: make([]float32, res.Rows*len(p.features))}
	for i := range p.features {
		c := p.resultColumn(res, i)
		for r := range res.Rows {
			x := float32(math.NaN()) // NOT_FOUND and OUTSIDE_MAX_AGE values are missing
			if st := c.Statuses[r]; st == online.Present || st == online.NullValue {
				x = asFloat(c.Values[r])
			}
			batch.Data[r*len(p.features)+i] = x
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, label, err
	}
	start := time.Now()
	outs, err := s.models.predict(ctx, v, batch)
	s.metrics.modelLatency.WithLabelValues(v.Model, v.Runtime).Observe(time.Since(start).Seconds())
	if err != nil {
		// The runtime's message may name internal addresses and paths (an OIP server's
		// host:port, an .onnx file): it goes to the log, the caller reads its kind.
		s.log.Warn("model call failed", "model", v.Model, "version", v.Version, "runtime", v.Runtime, "err", err)
		return nil, label, modelCallFailed(v, len(p.features), err)
	}
	resp := &pb.PredictResponse{
		ModelName:      v.Model,
		ModelVersion:   v.Version,
		FeatureService: v.FeatureService,
		Rows:           int32(res.Rows),
	}
	for _, t := range outs {
		o, err := outputToProto(t, res.Rows)
		if err != nil {
			return nil, label, fmt.Errorf("model %q version %s: %w", v.Model, v.Version, err)
		}
		resp.Outputs = append(resp.Outputs, o)
	}
	if req.GetIncludeFeatures() {
		resp.Features = columnsToProto(res.Rows, len(p.features), func(i int) FeatureColumn { return planColumn(p, res, i) })
	}
	res.Release() // the batch and the response hold copies, nothing of res
	return resp, label, nil
}

// modelCallError is a model runtime's failure as callers read it: the model, version and kind
// of failure, never the runtime's own message. It matches the runtime error's kind
// (errors.Is), so statusOf gives it the runtime error's code.
type modelCallError struct {
	msg string
	err error
}

func (e *modelCallError) Error() string { return e.msg }
func (e *modelCallError) Unwrap() error { return e.err }

// modelCallFailed is err, from running (or opening) model version v on a batch of features
// per row, as callers read it.
func modelCallFailed(v model.Version, features int, err error) error {
	what := fmt.Sprintf("model %q version %s", v.Model, v.Version)
	var msg string
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		msg = what + " did not answer before the deadline"
	case errors.Is(err, context.Canceled):
		msg = what + ": the call was canceled"
	case errors.Is(err, model.ErrUnavailable):
		msg = what + " is unavailable: its " + v.Runtime + " runtime cannot be reached or opened (the server's log says why); retry later"
	case errors.Is(err, model.ErrNotFound):
		msg = what + " is not known to its " + v.Runtime + " runtime (the server's log says why)"
	case errors.Is(err, model.ErrInvalidInput):
		msg = fmt.Sprintf("%s refused its input, %d features per row of feature service %q (the server's log has the runtime's message)", what, features, v.FeatureService)
	default:
		msg = what + " failed (the server's log says why)"
	}
	return &modelCallError{msg: msg, err: err}
}

// requestContext converts request-time columns to values of the features they replace, by
// response column; nil entries are features not replaced.
func requestContext(p *readPlan, cols map[string][]online.Value, rows int) ([][]online.Value, error) {
	if len(cols) == 0 {
		return nil, nil
	}
	byName := make(map[string]int, len(p.names))
	for i, n := range p.names {
		byName[n] = i
	}
	names := make([]string, 0, len(cols))
	for n := range cols {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([][]online.Value, len(p.features))
	for _, n := range names {
		i, ok := byName[n]
		if !ok {
			return nil, tagf(ErrUnknown, "request_context %q is not a feature of the model's feature service (its features: %v)%s", n, p.names, definitions.Suggest(n, p.names))
		}
		if p.features[i].OnDemand != nil {
			return nil, invalidf("request_context %q names on-demand feature %s, which is computed; pass the request fields it reads instead", n, p.features[i].Ref())
		}
		vals := cols[n]
		if len(vals) != rows {
			return nil, invalidf("request_context %q has %d values for %d entity rows", n, len(vals), rows)
		}
		t := p.features[i].Feature.Type
		col := make([]online.Value, rows)
		for r, x := range vals {
			v, err := value.Coerce(x, t)
			if err != nil {
				return nil, invalidf("request_context %q row %d: %v", n, r, err)
			}
			col[r] = v
		}
		out[i] = col
	}
	return out, nil
}

// outputToProto splits a model output by row: one scalar per row, or a list when each row
// has several elements.
func outputToProto(t model.Tensor, rows int) (*pb.ModelOutput, error) {
	n := t.Len()
	if len(t.Shape) == 0 || t.Shape[0] != int64(rows) || n%rows != 0 {
		return nil, fmt.Errorf("output %q has shape %v (%d values) for %d rows: %w", t.Name, t.Shape, n, rows, model.ErrInvalidInput)
	}
	per := n / rows
	o := &pb.ModelOutput{Name: t.Name, Shape: t.Shape, Values: make([]*pb.Value, rows)}
	for r := range rows {
		lo, hi := r*per, (r+1)*per
		var v *pb.Value
		switch {
		case t.Float32 != nil && per == 1:
			v = &pb.Value{Kind: &pb.Value_FloatVal{FloatVal: t.Float32[lo]}}
		case t.Float32 != nil:
			v = &pb.Value{Kind: &pb.Value_FloatListVal{FloatListVal: &pb.FloatList{Val: t.Float32[lo:hi]}}}
		case t.Float64 != nil && per == 1:
			v = &pb.Value{Kind: &pb.Value_DoubleVal{DoubleVal: t.Float64[lo]}}
		case t.Float64 != nil:
			v = &pb.Value{Kind: &pb.Value_DoubleListVal{DoubleListVal: &pb.DoubleList{Val: t.Float64[lo:hi]}}}
		case t.Int64 != nil && per == 1:
			v = &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: t.Int64[lo]}}
		case t.Int64 != nil:
			v = &pb.Value{Kind: &pb.Value_Int64ListVal{Int64ListVal: &pb.Int64List{Val: t.Int64[lo:hi]}}}
		case t.Int32 != nil && per == 1:
			v = &pb.Value{Kind: &pb.Value_Int32Val{Int32Val: t.Int32[lo]}}
		case t.Int32 != nil:
			v = &pb.Value{Kind: &pb.Value_Int32ListVal{Int32ListVal: &pb.Int32List{Val: t.Int32[lo:hi]}}}
		case t.Bool != nil && per == 1:
			v = &pb.Value{Kind: &pb.Value_BoolVal{BoolVal: t.Bool[lo]}}
		case t.Bool != nil:
			v = &pb.Value{Kind: &pb.Value_BoolListVal{BoolListVal: &pb.BoolList{Val: t.Bool[lo:hi]}}}
		default:
			v = &pb.Value{}
		}
		o.Values[r] = v
	}
	return o, nil
}
