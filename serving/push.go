package serving

import (
	"context"
	"time"

	"github.com/quiverfs/quiver/ingest"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// Pusher accepts pushed batches of push feature views (implemented by *ingest.Ingester).
type Pusher interface {
	// Push validates b against the view and, when it returns nil, has written it online and
	// durably logged it for the offline store.
	Push(ctx context.Context, view string, b ingest.Batch) (ingest.Result, error)
}

// PushFeatures implements pb.FeatureServingServer.
func (s *Server) PushFeatures(ctx context.Context, req *pb.PushFeaturesRequest) (*pb.PushFeaturesResponse, error) {
	start := time.Now()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	resp, err := s.pushFeatures(ctx, req)
	if err := s.finish(ctx, "PushFeatures", req.GetFeatureView(), start, err); err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *Server) pushFeatures(ctx context.Context, req *pb.PushFeaturesRequest) (*pb.PushFeaturesResponse, error) {
	if s.opts.Pusher == nil {
		return nil, tagf(ErrPrecondition, "this server takes no pushes: the project has no push feature views, or quiver serve ran with --push=false")
	}
	if req.GetFeatureView() == "" {
		return nil, invalidf("feature_view is required")
	}
	b, err := PushBatchFromProto(req)
	if err != nil {
		return nil, err
	}
	res, err := s.opts.Pusher.Push(ctx, req.GetFeatureView(), b)
	if err != nil {
		return nil, err
	}
	return &pb.PushFeaturesResponse{Rows: int32(res.Rows), OnlineRows: int32(res.OnlineRows), StaleRows: int32(res.StaleRows), LogSequence: res.Seq}, nil
}

// PushBatchFromProto converts a wire push request to an ingest.Batch.
func PushBatchFromProto(req *pb.PushFeaturesRequest) (ingest.Batch, error) {
	cols, err := columnsFromProto("column", req.GetColumns())
	if err != nil {
		return ingest.Batch{}, err
	}
	b := ingest.Batch{Columns: cols, EventTS: make([]time.Time, len(req.GetEventTimestampsMicros()))}
	for i, us := range req.GetEventTimestampsMicros() {
		if us != 0 {
			b.EventTS[i] = time.UnixMicro(us).UTC()
		}
	}
	if c := req.GetCreatedTimestampsMicros(); len(c) > 0 {
		b.CreatedTS = make([]time.Time, len(c))
		for i, us := range c {
			if us != 0 {
				b.CreatedTS[i] = time.UnixMicro(us).UTC()
			}
		}
	}
	return b, nil
}

// PushRequestFromBatch converts an ingest.Batch to a wire push request.
func PushRequestFromBatch(view string, b ingest.Batch) *pb.PushFeaturesRequest {
	req := &pb.PushFeaturesRequest{FeatureView: view, Columns: make(map[string]*pb.RepeatedValue, len(b.Columns))}
	for k, vals := range b.Columns {
		rv := &pb.RepeatedValue{Val: make([]*pb.Value, len(vals))}
		for i, v := range vals {
			rv.Val[i] = toProto(v)
		}
		req.Columns[k] = rv
	}
	req.EventTimestampsMicros = make([]int64, len(b.EventTS))
	for i, t := range b.EventTS {
		req.EventTimestampsMicros[i] = t.UnixMicro()
	}
	if b.CreatedTS != nil {
		req.CreatedTimestampsMicros = make([]int64, len(b.CreatedTS))
		for i, t := range b.CreatedTS {
			if !t.IsZero() {
				req.CreatedTimestampsMicros[i] = t.UnixMicro()
			}
		}
	}
	return req
}
