// Package housekeeping is what `quiver gc` runs: a list of collectors, each of which finds
// (and, unless it is a dry run, removes) something nothing needs any more, and reports what
// and how many bytes. The command holds the warehouse lock exclusively while they run (see
// internal/warehouselock), so no writer's uncommitted files are in sight.
package housekeeping

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/registry"
)

// Options are shared by every collector of one gc.
type Options struct {
	// OlderThan is the retention of offline snapshots (and the age leftovers must reach).
	OlderThan time.Duration
	// MinOrphanAge is how old a table file no snapshot references must be before it goes
	// (iceberg.GCOptions.MinOrphanAge).
	MinOrphanAge time.Duration
	DryRun       bool
	Now          time.Time
}

// Item is one thing removed (or, in a dry run, that would be).
type Item struct {
	Kind  string // snapshot, data, manifest, manifest-list, metadata, staging, spill, ...
	Path  string // a file or folder; for a snapshot, TABLE@ID
	Bytes int64
}

// Report is what one collector did.
type Report struct {
	Collector string
	Items     []Item
	Notes     []string
	// Young is how many unreferenced files were kept as younger than Options.MinOrphanAge.
	Young int
}

// Bytes is the sum of the items' bytes.
func (r Report) Bytes() int64 {
	var n int64
	for _, it := range r.Items {
		n += it.Bytes
	}
	return n
}

// Collector finds and removes one kind of garbage.
type Collector interface {
	Name() string
	Collect(ctx context.Context, opts Options) (Report, error)
}

// Func adapts a function to a Collector.
type Func struct {
	N string
	F func(ctx context.Context, opts Options) (Report, error)
}

func (f Func) Name() string { return f.N }

func (f Func) Collect(ctx context.Context, opts Options) (Report, error) { return f.F(ctx, opts) }

// Run runs the collectors in order and returns their reports; it stops at the first error.
func Run(ctx context.Context, cs []Collector, opts Options) ([]Report, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	var out []Report
	for _, c := range cs {
		r, err := c.Collect(ctx, opts)
		r.Collector = c.Name()
		out = append(out, r)
		if err != nil {
			return out, fmt.Errorf("gc %s: %w", c.Name(), err)
		}
	}
	return out, nil
}

// PinnedSnapshots are the offline snapshot ids the project's registered datasets were built
// from, read from each dataset's manifest lineage.
func PinnedSnapshots(ctx context.Context, reg registry.DatasetStore, project string) (map[int64]bool, error) {
	ds, err := reg.ListDatasets(ctx, project, "")
	if err != nil {
		return nil, fmt.Errorf("list datasets: %w", err)
	}
	pinned := map[int64]bool{}
	for _, d := range ds {
		var m struct {
			Lineage struct {
				FeatureViews []struct {
					OfflineSnapshotID int64 `json:"offline_snapshot_id"`
				} `json:"feature_views"`
			} `json:"lineage"`
		}
		if err := json.Unmarshal(d.Manifest, &m); err != nil {
			return nil, fmt.Errorf("dataset %s@v%d: read manifest lineage: %w", d.Name, d.Version, err)
		}
		for _, v := range m.Lineage.FeatureViews {
			if v.OfflineSnapshotID != 0 {
				pinned[v.OfflineSnapshotID] = true
			}
		}
	}
	return pinned, nil
}

// SyncPins tags, in every view table of store, the snapshots the project's registered datasets
// pin (iceberg.PinTagPrefix), and untags those no longer pinned, so that every engine's
// snapshot expiry keeps exactly the pinned ones.
func SyncPins(ctx context.Context, store *iceberg.Store, reg registry.DatasetStore, project string) error {
	pinned, err := PinnedSnapshots(ctx, reg, project)
	if err != nil {
		return err
	}
	views, err := store.Views(ctx)
	if err != nil {
		return err
	}
	for _, v := range views {
		if _, _, err := store.SyncPins(ctx, v, pinned); err != nil {
			return err
		}
	}
	return nil
}

// OfflineSnapshots expires offline snapshots past the retention that no registered dataset
// pins, and removes the files no remaining snapshot needs, in every view table of store.
func OfflineSnapshots(store *iceberg.Store, reg registry.DatasetStore, project string) Collector {
	return Func{N: "offline snapshots", F: func(ctx context.Context, opts Options) (Report, error) {
		var rep Report
		pinned, err := PinnedSnapshots(ctx, reg, project)
		if err != nil {
			return rep, err
		}
		views, err := store.Views(ctx)
		if err != nil {
			return rep, err
		}
		for _, v := range views {
			if !opts.DryRun {
				if _, _, err := store.SyncPins(ctx, v, pinned); err != nil {
					return rep, err
				}
			}
			res, err := store.CollectGarbage(ctx, v, iceberg.GCOptions{OlderThan: opts.OlderThan, MinOrphanAge: opts.MinOrphanAge, Pinned: pinned, DryRun: opts.DryRun, Now: opts.Now})
			for _, id := range res.ExpiredSnapshots {
				rep.Items = append(rep.Items, Item{Kind: "snapshot", Path: v + "@" + strconv.FormatInt(id, 10)})
			}
			for _, f := range res.Files {
				rep.Items = append(rep.Items, Item{Kind: f.Kind, Path: f.Path, Bytes: f.Bytes})
			}
			rep.Young += res.YoungOrphans
			if err != nil {
				return rep, err
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: %d snapshots kept", v, res.KeptSnapshots))
		}
		return rep, nil
	}}
}

// SpillAge is how old a spill folder in the shared temp directory must be before gc removes
// it: other warehouses' writers use the same directory, and this lock does not cover them.
const SpillAge = time.Hour

// Leftovers removes what killed commands left in the warehouse — dataset staging folders
// (.staging-*) and join spill files (tmp/) — and, in tempDir, the spill folders of offline
// writes to the project's namespace (iceberg.SpillPrefix) untouched for SpillAge. Spill
// folders of other projects' writes are never touched.
func Leftovers(warehouse, tempDir, namespace string) Collector {
	return Func{N: "leftovers", F: func(ctx context.Context, opts Options) (Report, error) {
		var rep Report
		if strings.Contains(warehouse, "://") && !strings.HasPrefix(warehouse, "file://") {
			return rep, nil
		}
		wh := strings.TrimPrefix(warehouse, "file://")
		remove := func(kind, p string) error {
			n := TreeSize(p)
			rep.Items = append(rep.Items, Item{Kind: kind, Path: p, Bytes: n})
			if opts.DryRun {
				return nil
			}
			return os.RemoveAll(p)
		}
		// Dataset staging folders: WAREHOUSE/datasets/NAME/.staging-*.
		stagings, _ := filepath.Glob(filepath.Join(wh, "datasets", "*", ".staging-*"))
		for _, p := range stagings {
			if err := remove("staging", p); err != nil {
				return rep, err
			}
		}
		// Join spill files: everything under WAREHOUSE/tmp.
		spills, _ := filepath.Glob(filepath.Join(wh, "tmp", "*"))
		for _, p := range spills {
			if err := remove("spill", p); err != nil {
				return rep, err
			}
		}
		if tempDir == "" {
			tempDir = os.TempDir()
		}
		writes, _ := filepath.Glob(filepath.Join(tempDir, iceberg.SpillPrefix(namespace)+"*"))
		for _, p := range writes {
			if opts.Now.Sub(newest(p)) < SpillAge {
				continue
			}
			if err := remove("spill", p); err != nil {
				return rep, err
			}
		}
		return rep, nil
	}}
}

// TreeSize is the bytes of the files under p.
func TreeSize(p string) int64 {
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func newest(p string) time.Time {
	var t time.Time
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil {
			if fi, err := d.Info(); err == nil && fi.ModTime().After(t) {
				t = fi.ModTime()
			}
		}
		return nil
	})
	return t
}
