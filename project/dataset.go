package project

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/internal/housekeeping"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/offline/trino"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

// ParseDatasetRef parses NAME, NAME@vN or NAME@N. Version 0 means the latest.
func ParseDatasetRef(s string) (string, int, error) {
	name, ver, ok := strings.Cut(s, "@")
	if !ok {
		return name, 0, nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(ver, "v"))
	if err != nil || n < 1 {
		return "", 0, errkind.Errorf(errkind.Usage, "dataset %q: want NAME or NAME@vN (e.g. churn_train@v3)", s)
	}
	return name, n, nil
}

// Dataset resolves NAME[@vN] to a registered version and its directory.
func (p *Project) Dataset(ctx context.Context, ref string) (registry.Dataset, string, error) {
	name, ver, err := ParseDatasetRef(ref)
	if err != nil {
		return registry.Dataset{}, "", err
	}
	reg, err := p.Registry(ctx)
	if err != nil {
		return registry.Dataset{}, "", err
	}
	ds, err := reg.GetDataset(ctx, p.Name(), name, ver)
	if err != nil {
		return registry.Dataset{}, "", fmt.Errorf("dataset %s: %w", ref, err)
	}
	if ds.Deleted {
		return registry.Dataset{}, "", fmt.Errorf("dataset %s@v%d was removed: %w", ds.Name, ds.Version, registry.ErrNotFound)
	}
	dir := training.DatasetDir(p.FilesDir(), ds)
	if r := p.remote(); r != nil {
		if err := r.Pull(ctx, p.FilesDir(), dir); err != nil {
			return registry.Dataset{}, "", fmt.Errorf("dataset %s@v%d: %w", ds.Name, ds.Version, err)
		}
	}
	return ds, dir, nil
}

// remote is the copy of the project's dataset snapshots in an object-store warehouse; nil when
// the warehouse is a local directory.
func (p *Project) remote() *training.Remote {
	if !IsObjectStore(p.Config.Offline.Warehouse) {
		return nil
	}
	return &training.Remote{URL: p.Config.Offline.Warehouse, Props: iceberg.S3Props(os.Getenv)}
}

// DatasetRequest asks for a dataset; Project, Warehouse, QuiverVersion and CreatedBy are the
// project's, and a local engine's entity file is resolved against the working directory.
type DatasetRequest = training.DatasetRequest

// stagePartitionRowsEnv sets, for --engine trino, how many entity rows one partition of the
// staged join result holds (training.StagePartitionRows by default).
const stagePartitionRowsEnv = "QUIVER_TRINO_STAGE_PARTITION_ROWS"

// CreateDataset builds (or reuses) a dataset snapshot of the project's applied definitions
// as the next version of req.Name, holding the warehouse lock shared.
func (p *Project) CreateDataset(ctx context.Context, req DatasetRequest) (*training.DatasetResult, error) {
	reg, err := p.Registry(ctx)
	if err != nil {
		return nil, err
	}
	snap, err := p.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	off, err := p.Offline(ctx)
	if err != nil {
		return nil, err
	}
	req.Project, req.Warehouse, req.QuiverVersion, req.CreatedBy = p.Name(), p.FilesDir(), p.opts.Version, p.Actor()
	if req.Engine == training.EngineTrino {
		if p.Config.Trino.DSN == "" {
			return nil, errkind.New(errkind.Invalid, "--engine trino needs trino.dsn in quiver.yaml (or QUIVER_TRINO_DSN)")
		}
		client, err := trino.Open(p.Config.Trino.DSN)
		if err != nil {
			return nil, err
		}
		defer client.Close()
		req.Trino, req.TrinoNamespace = client, iceberg.ProjectNamespace(p.Name())
		req.TrinoStage, req.TrinoStageSchema = off.Store, materialize.StageSchema(req.TrinoNamespace)
		req.Pause = p.debugPause()
		if s := p.opts.Getenv(stagePartitionRowsEnv); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return nil, errkind.Errorf(errkind.Usage, "%s=%q is not a positive number of rows", stagePartitionRowsEnv, s)
			}
			req.TrinoStagePartitionRows = n
		}
	} else if req.Entities, err = filepath.Abs(req.Entities); err != nil {
		return nil, err
	}
	unlock, err := p.LockShared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res, err := training.CreateDataset(ctx, reg, off, snap, req)
	if err != nil {
		return nil, err
	}
	if !res.Reused {
		// Tag the snapshots the dataset pins, so every engine's expiry keeps them.
		if perr := housekeeping.SyncPins(ctx, off.Store, reg, p.Name()); perr != nil {
			p.notice("quiver: tag the offline snapshots dataset %s pins: %v (quiver gc will retry)", req.Name, perr)
		}
	}
	// A reused snapshot is pushed too: a push cut short before is completed.
	if r := p.remote(); r != nil {
		if err := r.Push(ctx, p.FilesDir(), res.Dir); err != nil {
			return nil, fmt.Errorf("dataset %s@v%d is registered and on local disk, but not in the warehouse: %w (dataset create again copies it)", res.Dataset.Name, res.Dataset.Version, err)
		}
	}
	return res, nil
}

// RemoveDataset marks a dataset version removed; unless force, it refuses a version a
// registered model version was trained on.
func (p *Project) RemoveDataset(ctx context.Context, ref string, force bool) (registry.Dataset, error) {
	ds, _, err := p.Dataset(ctx, ref)
	if err != nil {
		return ds, err
	}
	reg, err := p.Registry(ctx)
	if err != nil {
		return ds, err
	}
	if !force {
		trained, err := reg.ModelVersionsTrainedOn(ctx, p.Name(), ds.Name, ds.Version)
		if err != nil {
			return ds, fmt.Errorf("model versions trained on %s@v%d: %w", ds.Name, ds.Version, err)
		}
		if len(trained) > 0 {
			users := make([]string, len(trained))
			for i, mv := range trained {
				users[i] = fmt.Sprintf("%s@v%d", mv.Name, mv.Version)
			}
			return ds, errkind.Errorf(errkind.Invalid, "dataset %s@v%d trained registered model version(s) %s; removing it would break their lineage (use --force to remove it anyway)",
				ds.Name, ds.Version, strings.Join(users, ", "))
		}
	}
	if err := reg.DeleteDataset(ctx, p.Name(), ds.Name, ds.Version); err != nil {
		return ds, fmt.Errorf("remove dataset %s@v%d: %w", ds.Name, ds.Version, err)
	}
	return ds, nil
}

// shortID is the first 19 characters of a content id ("sha256:" and 12 hex digits).
func shortID(id string) string {
	if len(id) > 19 {
		return id[:19]
	}
	return id
}
