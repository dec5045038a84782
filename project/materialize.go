package project

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/internal/warehouselock"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/offline/trino"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
)

// MaterializeOptions choose what a Materialization covers.
type MaterializeOptions struct {
	// Views are the views to load; none means every view materialization loads (all but
	// push and Kafka views), or every view with OnlineOnly.
	Views []string
	// OnlineOnly loads the online store from the offline tables, which every view has, push
	// and Kafka views too; no source is read.
	OnlineOnly bool
	// DryRun opens no store and reaps nothing: the Materialization only plans.
	DryRun bool
	// Engine computes the intervals' rows: EngineLocal (the default: this process reads the
	// sources) or EngineTrino (Trino stages each interval in the shared Iceberg catalog and
	// this process commits it; materialize.TrinoEngine).
	Engine string
}

// Materialization engines.
const (
	EngineLocal = "local"
	EngineTrino = "trino"
)

// Materialization is an opened materialization: the views of one catalog snapshot and the
// stores they are loaded into, with the warehouse lock held shared (so gc never removes what
// a run wrote but has not committed). Close lets go of it.
type Materialization struct {
	p     *Project
	snap  *catalog.Snapshot
	Views []*catalog.View
	// Options are the run options every run shares (heartbeat, actor).
	Options materialize.Options

	onlineOnly bool
	sources    *SourceSet
	trino      *materialize.TrinoEngine
	unlock     func()
}

// Materialize opens the views to load and, unless DryRun, reaps abandoned runs and opens the
// stores they need.
func (p *Project) Materialize(ctx context.Context, opts MaterializeOptions) (*Materialization, error) {
	lease, err := p.Lease()
	if err != nil {
		return nil, err
	}
	m := &Materialization{p: p, onlineOnly: opts.OnlineOnly,
		Options: materialize.Options{Heartbeat: registry.HeartbeatInterval(lease), Actor: p.Actor()}}
	if !opts.DryRun {
		if err := p.Reap(ctx); err != nil {
			return nil, err
		}
	}
	if m.snap, err = p.Catalog(ctx); err != nil {
		return nil, err
	}
	if m.Views, err = m.snap.Views(opts.Views...); err != nil {
		return nil, err
	}
	if len(opts.Views) == 0 && !opts.OnlineOnly {
		all := m.Views
		m.Views = nil
		for _, v := range all {
			if v.Materialized() {
				m.Views = append(m.Views, v)
			}
		}
	}
	if len(m.Views) == 0 {
		return nil, errkind.Errorf(errkind.Invalid, "project %q has no feature views in the registry; run quiver apply first", p.Name())
	}
	switch opts.Engine {
	case "", EngineLocal:
	case EngineTrino:
		if opts.OnlineOnly {
			return nil, errkind.New(errkind.Usage, "--online-only reads the offline tables in this process; it takes no --engine trino")
		}
		if p.Config.Trino.DSN == "" {
			return nil, errkind.New(errkind.Invalid, "--engine trino needs trino.dsn in quiver.yaml (or QUIVER_TRINO_DSN), with the Iceberg catalog Quiver shares as its catalog")
		}
		for _, v := range m.Views {
			if _, err := trino.StageSource(v.Source); err != nil {
				return nil, fmt.Errorf("view %q: --engine trino: %w (or use --engine local)", v.Name, err)
			}
		}
	default:
		return nil, errkind.Errorf(errkind.Usage, "--engine %q is not an engine; valid engines: local, trino", opts.Engine)
	}
	if opts.DryRun {
		return m, nil
	}
	if m.unlock, err = p.LockShared(ctx); err != nil {
		return nil, err
	}
	off, err := p.Offline(ctx)
	if err != nil {
		m.Close()
		return nil, err
	}
	needTrino := opts.Engine == EngineTrino
	for _, v := range m.Views {
		needTrino = needTrino || v.Source.Trino != nil
	}
	if m.sources, err = Sources(p.Config, off, needTrino); err != nil {
		m.Close()
		return nil, err
	}
	if opts.Engine == EngineTrino {
		m.trino = &materialize.TrinoEngine{Client: m.sources.cfg.Trino, Schema: materialize.StageSchema(iceberg.ProjectNamespace(p.Name())),
			Reader: off.Store, Pause: p.debugPause(), Logger: p.Logger()}
		reg, err := p.Registry(ctx)
		if err != nil {
			m.Close()
			return nil, err
		}
		dropped, err := m.trino.SweepStages(ctx, reg)
		if err != nil {
			m.Close()
			return nil, err
		}
		if len(dropped) > 0 {
			p.notice("quiver: dropped %d staging tables of runs that no longer run (%s)", len(dropped), strings.Join(dropped, ", "))
		}
	}
	for _, v := range m.Views {
		if v.Online != nil {
			if _, err := p.Online(ctx); err != nil {
				m.Close()
				return nil, err
			}
			break
		}
	}
	return m, nil
}

// Close lets go of the warehouse lock and the sources (the project's stores stay open).
func (m *Materialization) Close() {
	if m.unlock != nil {
		m.unlock()
		m.unlock = nil
	}
	if m.sources != nil {
		_ = m.sources.Close()
		m.sources = nil
	}
}

// job is the materialization job of one view. For OnlineOnly it has no source: the online
// store is loaded from the offline table.
func (m *Materialization) job(ctx context.Context, v *catalog.View) (materialize.Job, error) {
	off, err := m.p.Offline(ctx)
	if err != nil {
		return materialize.Job{}, err
	}
	job := materialize.Job{Project: m.p.Name(), Schema: v.Schema, Offline: off, OfflineReader: off, TTL: v.Def.TTL.Std()}
	switch {
	case m.trino != nil:
		if job.Source, err = m.trino.Source(v.Source); err != nil {
			return materialize.Job{}, err
		}
	case !m.onlineOnly:
		if job.Source, err = m.sources.Open(v.Source); err != nil {
			return materialize.Job{}, err
		}
	}
	if v.Online != nil {
		if job.Online, err = m.p.Online(ctx); err != nil {
			return materialize.Job{}, err
		}
		job.OnlineView = v.Online
	}
	return job, nil
}

// Incremental is each view's interval from its watermark to end (UpToDate when there is
// nothing to run).
func (m *Materialization) Incremental(ctx context.Context, end time.Time) ([]materialize.Interval, error) {
	reg, err := m.p.Registry(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]materialize.Interval, 0, len(m.Views))
	for _, v := range m.Views {
		iv, err := materialize.IncrementalInterval(ctx, reg, m.p.Name(), v.Name, v.Def.TTL.Std(), end)
		if err != nil {
			return nil, err
		}
		out = append(out, iv)
	}
	return out, nil
}

// RunOptions tune one run.
type RunOptions struct {
	// ReplaceOnline makes the online store what the offline table says for the interval's
	// entities (materialize.Options.ReplaceOnline).
	ReplaceOnline bool
	// Progress is called with the rows read so far.
	Progress func(rows int64)
	// OnlineWorkers loads the online store after the offline commit with this many workers
	// (materialize.Options.OnlineWorkers); 0 folds the rows on their way offline.
	OnlineWorkers int
}

// Validate checks the options a command line gave.
func (o RunOptions) Validate() error {
	if o.OnlineWorkers < 0 || o.OnlineWorkers > 256 {
		return errkind.Errorf(errkind.Usage, "--online-workers %d: use 1 to 256 workers (0: fold the rows on their way offline)", o.OnlineWorkers)
	}
	return nil
}

// Run materializes one interval of one view. When the run fails it removes what the run
// wrote to the offline table without committing it, if no other writer runs.
func (m *Materialization) Run(ctx context.Context, iv materialize.Interval, opts RunOptions) (materialize.Result, error) {
	res, err := m.run(ctx, iv, opts)
	if err != nil {
		if v, verr := m.snap.View(iv.View); verr == nil {
			m.cleanupFailedWrite(ctx, iceberg.TableName(iv.View, v.Generation))
		}
	}
	return res, err
}

// run is Run without the clean-up after a failure (a backfill cleans up once its running
// chunks have stopped).
func (m *Materialization) run(ctx context.Context, iv materialize.Interval, opts RunOptions) (materialize.Result, error) {
	v, err := m.snap.View(iv.View)
	if err != nil {
		return materialize.Result{}, err
	}
	job, err := m.job(ctx, v)
	if err != nil {
		return materialize.Result{}, fmt.Errorf("view %q: %w", iv.View, err)
	}
	reg, err := m.p.Registry(ctx)
	if err != nil {
		return materialize.Result{}, err
	}
	ro := m.Options
	ro.OnlineSince, ro.ReplaceOnline, ro.Progress, ro.OnlineWorkers = iv.OnlineFrom, opts.ReplaceOnline, opts.Progress, opts.OnlineWorkers
	return materialize.Run(ctx, reg, job, iv.Start, iv.End, ro)
}

// Sync loads the online store from view v's offline table.
func (m *Materialization) Sync(ctx context.Context, v *catalog.View, progress func(rows int64)) (materialize.SyncResult, error) {
	job, err := m.job(ctx, v)
	if err != nil {
		return materialize.SyncResult{}, fmt.Errorf("view %q: %w", v.Name, err)
	}
	reg, err := m.p.Registry(ctx)
	if err != nil {
		return materialize.SyncResult{}, err
	}
	return materialize.SyncOnline(ctx, reg, job, materialize.Options{Actor: m.Options.Actor, Progress: progress})
}

// cleanupFailedWrite removes the files a failed run wrote to a view's offline table without
// committing them (a full disk stays full otherwise). It needs the warehouse to itself: it
// lets go of the shared lock and cleans only if no other writer holds it; else the next gc
// does.
func (m *Materialization) cleanupFailedWrite(ctx context.Context, table string) {
	if m.unlock == nil {
		return
	}
	m.unlock()
	m.unlock = nil
	release, ok, err := warehouselock.TryExclusive(m.p.FilesDir())
	if err != nil || !ok {
		m.p.notice("quiver: other writers are running; quiver gc will remove what the failed run of %s left", table)
		return
	}
	defer release()
	off, err := m.p.Offline(ctx)
	if err != nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	res, err := off.CollectGarbage(cctx, table, iceberg.GCOptions{OrphansOnly: true})
	if err != nil {
		m.p.notice("quiver: clean up after the failed run of %s: %v (quiver gc will retry)", table, err)
		return
	}
	var n int64
	for _, f := range res.Files {
		n += f.Bytes
	}
	if len(res.Files) > 0 {
		m.p.notice("quiver: removed %d files (%d bytes) the failed run of %s left", len(res.Files), n, table)
	}
}

// ResetWatermark moves a view's watermark back to to, recorded in the audit trail.
func (p *Project) ResetWatermark(ctx context.Context, view string, to time.Time) (from, now registry.Watermark, err error) {
	snap, err := p.Catalog(ctx)
	if err != nil {
		return from, now, err
	}
	if _, err := snap.View(view); err != nil {
		return from, now, err
	}
	reg, err := p.Registry(ctx)
	if err != nil {
		return from, now, err
	}
	return materialize.ResetWatermark(ctx, reg, p.Name(), view, to, p.Actor())
}

// OnlineDeletion is what DeleteOnline removed.
type OnlineDeletion struct {
	View     string   `json:"view"`
	Entities []string `json:"entities"` // as given
	Keys     int      `json:"-"`        // the entities named
	Deleted  int64    `json:"deleted"`  // the rows removed
}

// DeleteOnline removes entities (KEY=VALUE, a join key per entity once) of one view from the
// online store, recorded in the audit trail.
func (p *Project) DeleteOnline(ctx context.Context, view string, entities []string) (OnlineDeletion, error) {
	snap, err := p.Catalog(ctx)
	if err != nil {
		return OnlineDeletion{}, err
	}
	v, err := snap.View(view)
	if err != nil {
		return OnlineDeletion{}, err
	}
	ov := v.Online
	if ov == nil { // not served, but rows may have been written before online: false
		o, err := online.NewView(p.Name(), v.Def, v.Entities)
		if err != nil {
			return OnlineDeletion{}, err
		}
		ov = o.WithGeneration(v.Generation)
	}
	keys, desc, err := materialize.ParseEntityKeys(ov, entities)
	if err != nil {
		return OnlineDeletion{}, err
	}
	store, err := p.Online(ctx)
	if err != nil {
		return OnlineDeletion{}, err
	}
	reg, err := p.Registry(ctx)
	if err != nil {
		return OnlineDeletion{}, err
	}
	n, err := materialize.DeleteOnline(ctx, reg, p.Name(), store, ov, keys, desc, p.Actor())
	return OnlineDeletion{View: v.Name, Entities: desc, Keys: len(keys), Deleted: n}, err
}

// debugPauseEnv names a point of a run where the process stops (materialize.TrinoEngine's
// Pause points): it says so on stderr and waits until it is killed or interrupted, or, with
// debugPauseForEnv set to a duration, for that long before it goes on. A fault-injection hook
// for the kill -9 tests (docs/testing.md); unset in normal use.
const (
	debugPauseEnv    = "QUIVER_DEBUG_PAUSE_AT"
	debugPauseForEnv = "QUIVER_DEBUG_PAUSE_FOR"
)

func (p *Project) debugPause() func(ctx context.Context, point string) {
	at := p.opts.Getenv(debugPauseEnv)
	if at == "" {
		return nil
	}
	d, _ := time.ParseDuration(p.opts.Getenv(debugPauseForEnv))
	return func(ctx context.Context, point string) {
		if point != at {
			return
		}
		p.notice("quiver: paused at %s (%s)", point, debugPauseEnv)
		if d <= 0 {
			<-ctx.Done()
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}
