package project

import (
	"context"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
)

// GetOnline reads the features req asks for, of the entities given as KEY=VALUE (typed by the
// applied join keys), from the online store in this process: the retrieval quiver serve
// runs, without a server.
func (p *Project) GetOnline(ctx context.Context, req *pb.GetOnlineFeaturesRequest, entities []string) (*pb.GetOnlineFeaturesResponse, error) {
	snap, err := p.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	defs, err := serving.FromCatalog(snap)
	if err != nil {
		return nil, err
	}
	if req.Entities, err = serving.ParseEntities(defs, entities); err != nil {
		return nil, err
	}
	fr, err := serving.FeatureRequestFromProto(req)
	if err != nil {
		return nil, err
	}
	store, err := p.Online(ctx)
	if err != nil {
		return nil, err
	}
	f, err := serving.GetFeatures(ctx, defs, store, fr)
	if err != nil {
		return nil, err
	}
	return &pb.GetOnlineFeaturesResponse{Rows: int32(f.Rows), Entities: req.Entities, Features: serving.FeatureColumnsToProto(f)}, nil
}
