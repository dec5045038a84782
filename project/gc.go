package project

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/internal/housekeeping"
	"github.com/quiverfs/quiver/internal/warehouselock"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

// DefaultRetention is gc's default OlderThan: offline snapshots stay readable (dataset create
// --at) for a week.
const DefaultRetention = 7 * 24 * time.Hour

// GCOptions are gc's choices.
type GCOptions struct {
	// OlderThan is the retention: offline snapshots younger than it stay.
	OlderThan time.Duration
	// MinOrphanAge overrides quiver.yaml's offline.gc.min_orphan_age when MinOrphanAgeSet:
	// how old a view table's file that no snapshot references must be before it goes.
	MinOrphanAge    time.Duration
	MinOrphanAgeSet bool
	// DryRun writes and removes nothing (no run is reaped either) and lists what gc would.
	DryRun bool
	// Waiting is called when gc has to wait for running writers to finish.
	Waiting func()
}

// GCResult is what gc removed, or would remove, by collector.
type GCResult struct {
	DryRun       bool   `json:"dry_run"`
	OlderThan    string `json:"older_than"`
	MinOrphanAge string `json:"min_orphan_age"`
	// YoungFilesKept is how many unreferenced table files were kept as younger than
	// MinOrphanAge: writes in flight, possibly another engine's.
	YoungFilesKept int           `json:"young_files_kept"`
	Collectors     []GCCollector `json:"collectors"`
	BytesReclaimed int64         `json:"bytes_reclaimed"`
	// Items is how many things were (or would be) removed.
	Items     int           `json:"-"`
	retention time.Duration // OlderThan
}

// GCCollector is what one collector removed.
type GCCollector struct {
	Collector string   `json:"collector"`
	Removed   []GCItem `json:"removed"`
	Bytes     int64    `json:"bytes"`
	Notes     []string `json:"notes,omitempty"`
}

// GCItem is one thing removed.
type GCItem struct {
	Kind  string `json:"kind"`
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
}

// WriteText writes what gc removed, one line each, and the total.
func (r *GCResult) WriteText(w io.Writer) {
	verb := "Removed"
	if r.DryRun {
		verb = "Would remove"
		fmt.Fprintln(w, "Dry run: nothing is removed.")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COLLECTOR\tKIND\tPATH\tBYTES")
	for _, c := range r.Collectors {
		for _, it := range c.Removed {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", c.Collector, it.Kind, it.Path, it.Bytes)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "%s %d items, %d bytes (retention %s).\n", verb, r.Items, r.BytesReclaimed, r.retention)
	verb = "Kept"
	if r.DryRun {
		verb = "Would keep"
	}
	fmt.Fprintf(w, "%s %d unreferenced table files younger than %s (min orphan age: a write in flight, maybe another engine's).\n", verb, r.YoungFilesKept, r.MinOrphanAge)
}

// MinOrphanAge is the minimum age of an unreferenced table file gc removes: the override,
// else quiver.yaml's offline.gc.min_orphan_age, else config.DefaultMinOrphanAge.
func (p *Project) MinOrphanAge(override *time.Duration) (time.Duration, error) {
	d := config.DefaultMinOrphanAge
	switch {
	case override != nil:
		d = *override
	case p.Config.Offline.GC.MinOrphanAge != nil:
		d = *p.Config.Offline.GC.MinOrphanAge
	}
	if d < 0 {
		return 0, errkind.Errorf(errkind.Usage, "--min-orphan-age %s is negative; want a duration such as 72h, or 0s for no minimum", d)
	}
	return d, nil
}

// GC reclaims space under the warehouse's exclusive lock: offline snapshots past the
// retention that nothing pins and the table files no snapshot needs (on object storage,
// those last modified before the retention horizon: the lock does not reach there),
// leftovers of killed commands (the project's own), the project's dead work folders, and
// dataset files no live version references. What it
// removed is recorded in the audit trail. A collector that fails fails gc (errkind.Failed)
// after the others ran.
func (p *Project) GC(ctx context.Context, opts GCOptions) (*GCResult, error) {
	var override *time.Duration
	if opts.MinOrphanAgeSet {
		override = &opts.MinOrphanAge
	}
	minAge, err := p.MinOrphanAge(override)
	if err != nil {
		return nil, err
	}
	if opts.OlderThan < 0 {
		return nil, errkind.Errorf(errkind.Usage, "--older-than %s is negative", opts.OlderThan)
	}
	reg, err := p.Registry(ctx)
	if err != nil {
		return nil, err
	}
	// A dry run writes and removes nothing: no run is reaped, no table adopted, no namespace
	// claimed.
	var off *Offline
	if opts.DryRun {
		if off, err = InspectOffline(ctx, p.Config, reg); err != nil {
			return nil, err
		}
		defer off.Close()
	} else {
		if err := p.Reap(ctx); err != nil {
			return nil, err
		}
		if off, err = p.Offline(ctx); err != nil {
			return nil, err
		}
	}
	release, err := warehouselock.Exclusive(ctx, p.FilesDir(), opts.Waiting)
	if err != nil {
		return nil, err
	}
	defer release()
	files, project, tmp := p.FilesDir(), p.Name(), p.tempDir()
	collectors := []housekeeping.Collector{
		housekeeping.OfflineSnapshots(off.Store, reg, project),
		housekeeping.Leftovers(files, tmp, iceberg.ProjectNamespace(project)),
		workFolders(tmp, project),
		datasetFiles(reg, files, project, p.remote()),
	}
	reports, runErr := housekeeping.Run(ctx, collectors, housekeeping.Options{OlderThan: opts.OlderThan, MinOrphanAge: minAge, DryRun: opts.DryRun, Now: time.Now()})
	res := &GCResult{DryRun: opts.DryRun, OlderThan: opts.OlderThan.String(), MinOrphanAge: minAge.String(), Collectors: []GCCollector{}, retention: opts.OlderThan}
	for _, r := range reports {
		c := GCCollector{Collector: r.Collector, Removed: []GCItem{}, Bytes: r.Bytes(), Notes: r.Notes}
		for _, it := range r.Items {
			c.Removed = append(c.Removed, GCItem{Kind: it.Kind, Path: it.Path, Bytes: it.Bytes})
		}
		res.Collectors = append(res.Collectors, c)
		res.BytesReclaimed += r.Bytes()
		res.Items += len(r.Items)
		res.YoungFilesKept += r.Young
	}
	if !opts.DryRun && res.Items > 0 {
		detail, _ := json.Marshal(map[string]any{"older_than": opts.OlderThan.String(), "items": res.Items, "bytes": res.BytesReclaimed})
		if _, err := reg.RecordAudit(ctx, registry.AuditEvent{Project: project, Actor: p.Actor(), Action: registry.AuditGC, Target: "warehouse", Detail: detail}); err != nil && runErr == nil {
			runErr = err
		}
	}
	return res, errkind.Mark(errkind.Failed, runErr)
}

// workFolders collects the project's training work folders in tempDir whose quiver process
// is dead (training.StaleWorkDirs); other projects' folders are never touched.
func workFolders(tempDir, project string) housekeeping.Collector {
	return housekeeping.Func{N: "work folders", F: func(_ context.Context, opts housekeeping.Options) (housekeeping.Report, error) {
		var rep housekeeping.Report
		for _, d := range training.StaleWorkDirs(tempDir, project) {
			rep.Items = append(rep.Items, housekeeping.Item{Kind: "work", Path: d, Bytes: housekeeping.TreeSize(d)})
			if opts.DryRun {
				continue
			}
			if err := os.RemoveAll(d); err != nil {
				return rep, err
			}
		}
		return rep, nil
	}}
}

// datasetFiles collects the dataset content no live registered version references, and the
// staging folders of dead builds (training.CollectDatasetGarbage), and with an object-store
// warehouse the copies there of that content (remote, nil otherwise). gc holds the warehouse
// lock exclusively, so no build is in flight: the grace period only needs to cover clock
// skew, and follows OlderThan up to training.DefaultGCGrace.
func datasetFiles(reg registry.Store, files, project string, remote *training.Remote) housekeeping.Collector {
	return housekeeping.Func{N: "dataset files", F: func(ctx context.Context, opts housekeeping.Options) (housekeeping.Report, error) {
		grace := min(max(opts.OlderThan, time.Nanosecond), training.DefaultGCGrace)
		gopts := training.GCOptions{DryRun: opts.DryRun, Grace: grace}
		res, err := training.CollectDatasetGarbage(ctx, reg, files, project, gopts)
		if err == nil && remote != nil {
			var more training.GCResult
			more, err = remote.CollectDatasets(ctx, reg, files, project, gopts)
			res.Items = append(res.Items, more.Items...)
		}
		var rep housekeeping.Report
		for _, it := range res.Items {
			rep.Items = append(rep.Items, housekeeping.Item{Kind: it.Reason, Path: it.Path, Bytes: it.Bytes})
		}
		return rep, err
	}}
}
