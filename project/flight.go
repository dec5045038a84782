package project

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/serving/flight"
	"github.com/quiverfs/quiver/training"
)

// flightDatasets are the project's datasets as quiver serve's Arrow Flight service reads and
// builds them: versions from the registry, snapshots from the warehouse, builds through
// training.CreateDataset on the catalog revision the server serves.
type flightDatasets struct {
	p       *Project
	watcher *catalog.Watcher
}

func (d flightDatasets) Dataset(ctx context.Context, name string, version int) (flight.Dataset, error) {
	reg, err := d.p.Registry(ctx)
	if err != nil {
		return flight.Dataset{}, err
	}
	ds, err := reg.GetDataset(ctx, d.p.Name(), name, version)
	if err != nil {
		if version == 0 {
			return flight.Dataset{}, fmt.Errorf("dataset %s: %w", name, err)
		}
		return flight.Dataset{}, fmt.Errorf("dataset %s@v%d: %w", name, version, err)
	}
	if ds.Deleted {
		return flight.Dataset{}, fmt.Errorf("dataset %s@v%d was removed: %w", ds.Name, ds.Version, registry.ErrNotFound)
	}
	return flightDataset(ds, training.DatasetDir(d.p.Config.Offline.Warehouse, ds))
}

func (d flightDatasets) Create(ctx context.Context, r flight.CreateRequest) (flight.Created, error) {
	req := training.DatasetRequest{Name: r.Name, Service: r.FeatureService, Entities: r.Entities, CreatedCutoff: r.CreatedCutoff, Rebuild: r.Rebuild}
	if r.At != "" {
		at, err := time.Parse(time.RFC3339Nano, r.At)
		if err != nil {
			return flight.Created{}, fmt.Errorf("%w: at %q: want an RFC 3339 time", training.ErrInvalidInput, r.At)
		}
		req.At = at
	}
	req.Project, req.Warehouse, req.QuiverVersion, req.CreatedBy = d.p.Name(), d.p.Config.Offline.Warehouse, d.p.opts.Version, d.p.Actor()
	if pr := auth.FromContext(ctx); pr != nil {
		req.CreatedBy = pr.String()
	}
	reg, err := d.p.Registry(ctx)
	if err != nil {
		return flight.Created{}, err
	}
	off, err := d.p.Offline(ctx)
	if err != nil {
		return flight.Created{}, err
	}
	unlock, err := d.p.LockShared(ctx)
	if err != nil {
		return flight.Created{}, err
	}
	defer unlock()
	res, err := training.CreateDataset(ctx, reg, off, d.watcher.Current(), req)
	if err != nil {
		return flight.Created{}, err
	}
	ds, err := flightDataset(res.Dataset, res.Dir)
	return flight.Created{Dataset: ds, Reused: res.Reused}, err
}

// flightDataset lists a registered version's Parquet parts from its manifest.
func flightDataset(ds registry.Dataset, dir string) (flight.Dataset, error) {
	var m training.Manifest
	if err := json.Unmarshal(ds.Manifest, &m); err != nil {
		return flight.Dataset{}, fmt.Errorf("dataset %s@v%d: read its manifest: %w", ds.Name, ds.Version, err)
	}
	out := flight.Dataset{Name: ds.Name, Version: ds.Version, ContentID: ds.ContentID, Rows: ds.Rows, Dir: dir}
	for _, f := range m.Files {
		out.Parts = append(out.Parts, flight.Part{Path: f.Path, Rows: f.Rows, Bytes: f.Size})
	}
	return out, nil
}
