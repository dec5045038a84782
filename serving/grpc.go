package serving

import (
	"context"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// The gRPC adapter of feature retrieval: wire request → FeatureRequest → GetFeatures →
// wire response. The HTTP/JSON gateway calls these same handlers.

// GetOnlineFeatures implements pb.FeatureServingServer.
func (s *Server) GetOnlineFeatures(ctx context.Context, req *pb.GetOnlineFeaturesRequest) (*pb.GetOnlineFeaturesResponse, error) {
	start := time.Now()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	resp, label, err := s.getOnlineFeatures(ctx, req)
	if err == nil {
		err = ctx.Err() // never OK once the deadline passed
	}
	if err := s.finish(ctx, "GetOnlineFeatures", label, start, err); err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *Server) getOnlineFeatures(ctx context.Context, req *pb.GetOnlineFeaturesRequest) (*pb.GetOnlineFeaturesResponse, string, error) {
	fr, err := FeatureRequestFromProto(req)
	if err != nil {
		return nil, "unknown", err
	}
	p, res, label, err := s.retrieve(ctx, fr)
	if err != nil {
		return nil, label, err
	}
	resp := &pb.GetOnlineFeaturesResponse{
		Rows:     int32(res.Rows),
		Entities: req.GetEntities(),
		Features: columnsToProto(res.Rows, len(p.features), func(i int) FeatureColumn { return planColumn(p, res, i) }),
	}
	res.Release() // the response holds copies (columnsToProto), nothing of res
	return resp, label, nil
}

// FeatureRequestFromProto converts a wire request to a FeatureRequest.
func FeatureRequestFromProto(req *pb.GetOnlineFeaturesRequest) (FeatureRequest, error) {
	ents, err := columnsFromProto("entities", req.GetEntities())
	if err != nil {
		return FeatureRequest{}, err
	}
	reqCtx, err := columnsFromProto("request_context", req.GetRequestContext())
	if err != nil {
		return FeatureRequest{}, err
	}
	return FeatureRequest{
		RequestContext:   reqCtx,
		FeatureService:   req.GetFeatureService(),
		Features:         req.GetFeatures().GetVal(),
		Entities:         ents,
		FullFeatureNames: req.GetFullFeatureNames(),
	}, nil
}

// FeatureColumnsToProto converts retrieved features to wire columns: one typed vector per
// feature (a column of n rows is a handful of messages, not n), with its statuses, event
// times and null mask.
func FeatureColumnsToProto(f *Features) []*pb.FeatureColumn {
	return columnsToProto(f.Rows, len(f.Columns), func(i int) FeatureColumn { return f.Columns[i] })
}

// columnsToProto converts the cols columns column(0..cols-1) of rows rows. The null mask of a
// column is set only when the column holds a null (see FeatureColumn.nulls in the .proto):
// without one every row has a value, which the statuses say as well.
func columnsToProto(rows, cols int, column func(i int) FeatureColumn) []*pb.FeatureColumn {
	out := make([]*pb.FeatureColumn, cols)
	fcs := make([]pb.FeatureColumn, cols) // one allocation for every column's message
	vecs := newVectorArena(rows, func(i int) definitions.Type { return column(i).Type }, cols)
	// Event times by the view's shared EventTS slice: a response has few views.
	type viewTimes struct {
		first *time.Time
		ts    []int64
	}
	var times []viewTimes
	// One backing array for every column's statuses: one allocation, not one per column.
	n := rows
	statuses := make([]pb.FieldStatus, n*cols)
	for i := range cols {
		c := column(i)
		fc := &fcs[i]
		fc.Name, fc.View, fc.Type = c.Name, c.View, valueTypeOf(c.Type)
		fc.Values = vecs.vector(i, c.Values, c.Type)
		fc.Statuses = statuses[i*n : (i+1)*n : (i+1)*n]
		for r, st := range c.Statuses {
			fc.Statuses[r] = statusToProto(st)
		}
		for r, v := range c.Values {
			if v.IsNull() {
				if fc.Nulls == nil {
					fc.Nulls = make([]bool, n)
				}
				fc.Nulls[r] = true
			}
		}
		if n > 0 {
			var ts []int64
			for _, vt := range times {
				if vt.first == &c.EventTS[0] {
					ts = vt.ts
					break
				}
			}
			if ts == nil {
				ts = make([]int64, n)
				for r, t := range c.EventTS {
					if !t.IsZero() {
						ts[r] = t.UnixMicro()
					}
				}
				times = append(times, viewTimes{&c.EventTS[0], ts})
			}
			fc.EventTimestampsMicros = ts
		}
		out[i] = fc
	}
	return out
}

// FeaturesFromProto converts wire columns back to retrieved features (for clients such as
// `quiver get-online --server`). Columns from servers that send no null mask take null from
// the statuses NULL_VALUE and NOT_FOUND.
func FeaturesFromProto(resp *pb.GetOnlineFeaturesResponse) *Features {
	rows := int(resp.GetRows())
	out := &Features{Rows: rows, Columns: make([]FeatureColumn, len(resp.GetFeatures()))}
	for i, fc := range resp.GetFeatures() {
		c := FeatureColumn{Name: fc.GetName(), View: fc.GetView(), Type: typeOfValueType(fc.GetType()),
			Values: make([]online.Value, rows), Statuses: make([]online.Status, rows), EventTS: make([]time.Time, rows)}
		for r := range rows {
			if r < len(fc.GetStatuses()) {
				c.Statuses[r] = online.Status(fc.GetStatuses()[r])
			}
			if r < len(fc.GetEventTimestampsMicros()) && fc.GetEventTimestampsMicros()[r] != 0 {
				c.EventTS[r] = time.UnixMicro(fc.GetEventTimestampsMicros()[r]).UTC()
			}
			if IsNull(fc, r) {
				continue
			}
			if v, ok := fromProto(VectorValue(fc.GetValues(), r), c.Type); ok {
				c.Values[r] = v
			}
		}
		out.Columns[i] = c
	}
	return out
}

// IsNull reports whether row r of a wire column has no value: its null mask says so, or, when
// the column has no mask (no row is null, or a server from before the mask), its status is
// NULL_VALUE or NOT_FOUND.
func IsNull(fc *pb.FeatureColumn, r int) bool {
	if n := fc.GetNulls(); len(n) > 0 {
		return r >= len(n) || n[r]
	}
	if r >= len(fc.GetStatuses()) {
		return true
	}
	st := fc.GetStatuses()[r]
	return st == pb.FieldStatus_NULL_VALUE || st == pb.FieldStatus_NOT_FOUND
}
