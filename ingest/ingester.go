package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
)

// Snapshot summary keys of push commits.
const (
	// SummaryPushLog is the id of the push log whose batches a commit holds.
	SummaryPushLog = "quiver.push-log"
	// SummaryPushSeq is the last log sequence number a commit holds for its view.
	SummaryPushSeq = "quiver.push-seq"
	// SummaryPushBatch is the id of a batch pushed directly (quiver push without a server).
	SummaryPushBatch = "quiver.push-batch"
)

// DefaultCommitInterval is how often logged batches are committed to the offline store.
const DefaultCommitInterval = 5 * time.Second

// Offline is what ingestion needs of the offline store.
type Offline interface {
	// Append adds rows to the view's table in one atomic commit whose summary holds props.
	Append(ctx context.Context, vs offline.ViewSchema, rows offline.Stream, props map[string]string) (offline.WriteResult, error)
	// Snapshots lists the table's snapshots (ErrTableNotFound when it has none yet).
	Snapshots(ctx context.Context, view string, generation int) ([]offline.Snapshot, error)
}

// Options tune an Ingester. LogDir is required; the zero value of the rest is usable.
type Options struct {
	// LogDir holds the write-ahead log of accepted batches. It must be on a local disk that
	// honours fsync; one process owns it at a time.
	LogDir string
	// CommitInterval bounds how long an acknowledged batch waits before it is committed to
	// the offline store; 0 means DefaultCommitInterval.
	CommitInterval time.Duration
	// Lock, when set, is held around every offline commit (the warehouse lock that keeps
	// quiver gc from removing files being committed).
	Lock func(ctx context.Context) (unlock func(), err error)
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the ingestion metrics; nil registers none.
	Registerer prometheus.Registerer
	// Allocator allocates Arrow memory; nil means memory.DefaultAllocator.
	Allocator memory.Allocator
	// Now is the clock used for latency metrics; nil means time.Now.
	Now func() time.Time
}

// Result reports one accepted batch.
type Result struct {
	Rows int64
	// OnlineRows is the number of entity rows the online store took: of the latest row per
	// entity of the batch, those not older than the row the store held.
	OnlineRows int64
	// StaleRows is the number of entity rows the online store ignored because it held a newer
	// row for the entity (the stale-write guard). They still go to the offline table.
	StaleRows int64
	// Seq is the batch's sequence number in the push log.
	Seq uint64
}

// Ingester accepts pushed batches: it validates them, writes them to the online store and its
// log, and commits the log to the offline store in the background (Run).
type Ingester struct {
	views  atomic.Pointer[viewsBox]
	online online.Writer
	off    Offline
	log    *wal
	opts   Options
	m      *metrics
	logger *slog.Logger

	commitMu  sync.Mutex
	committed map[viewKey]uint64 // guarded by commitMu
	kick      chan struct{}
}

type viewsBox struct{ Views }

type viewKey struct {
	view       string
	generation int
}

// Open opens the log in opts.LogDir and returns an Ingester. Batches a previous process
// logged but did not commit are committed by the first Commit (Run starts with one).
func Open(views Views, on online.Writer, off Offline, opts Options) (*Ingester, error) {
	if opts.LogDir == "" {
		return nil, errors.New("ingest: no log directory")
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = DefaultCommitInterval
	}
	if opts.Allocator == nil {
		opts.Allocator = memory.DefaultAllocator
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	w, err := openWAL(opts.LogDir)
	if err != nil {
		return nil, err
	}
	in := &Ingester{online: on, off: off, log: w, opts: opts, m: m, logger: logger.With("component", "ingest"),
		committed: map[viewKey]uint64{}, kick: make(chan struct{}, 1)}
	in.views.Store(&viewsBox{views})
	return in, nil
}

// LogID is the id of the ingester's push log, recorded in its offline commits.
func (in *Ingester) LogID() string { return in.log.id }

// SetViews replaces the views pushes are checked against (after definitions change).
func (in *Ingester) SetViews(v Views) { in.views.Store(&viewsBox{v}) }

// View looks up a push view.
func (in *Ingester) View(name string) (*View, error) { return in.views.Load().View(name) }

// Push validates a columnar batch and accepts it (see PushRecord).
func (in *Ingester) Push(ctx context.Context, view string, b Batch) (Result, error) {
	start := time.Now()
	v, err := in.View(view)
	if err != nil {
		in.m.batches.WithLabelValues(view, "invalid").Inc()
		return Result{}, err
	}
	rec, err := v.Build(b, in.opts.Allocator)
	if err != nil {
		in.m.batches.WithLabelValues(view, "invalid").Inc()
		return Result{}, err
	}
	defer rec.Release()
	res, err := in.accept(ctx, v, rec, PathPush)
	if err == nil {
		in.m.ackLatency.Observe(time.Since(start).Seconds())
	}
	return res, err
}

// PushRecord accepts a canonical batch already checked by View.Build or View.FromArrow: it
// writes the latest row per entity to the online store, then logs the batch and fsyncs the
// log. When it returns nil the batch is acknowledged: served online, and committed to the
// offline store within the commit interval even if the process dies now.
func (in *Ingester) PushRecord(ctx context.Context, v *View, rec arrow.RecordBatch, path string) (Result, error) {
	return in.accept(ctx, v, rec, path)
}

func (in *Ingester) accept(ctx context.Context, v *View, rec arrow.RecordBatch, path string) (Result, error) {
	res := Result{Rows: rec.NumRows()}
	if v.Online != nil && in.online != nil {
		w, err := materialize.WriteLatest(ctx, in.online, v.Online, v.Schema, rec)
		if err != nil {
			in.m.batches.WithLabelValues(v.Name, "error").Inc()
			return res, fmt.Errorf("push %q: %w", v.Name, err)
		}
		res.OnlineRows, res.StaleRows = w.Written-w.Stale, w.Stale
		in.observeEventToOnline(rec, len(v.Schema.JoinKeys), path)
	}
	seq, err := in.log.append(entryHeader{View: v.Name, Generation: v.Schema.Generation, Rows: rec.NumRows(), AckedMicros: in.opts.Now().UnixMicro()}, rec)
	if err != nil {
		in.m.batches.WithLabelValues(v.Name, "error").Inc()
		return res, fmt.Errorf("push %q: %w", v.Name, err)
	}
	res.Seq = seq
	in.m.batches.WithLabelValues(v.Name, "ok").Inc()
	in.m.rows.WithLabelValues(v.Name, path).Add(float64(rec.NumRows()))
	return res, nil
}

// observeEventToOnline records, per row, how long after its event time it reached the online
// store.
func (in *Ingester) observeEventToOnline(rec arrow.RecordBatch, tsCol int, path string) {
	ObserveEventToOnline(in.m.eventToOnline.WithLabelValues(path), rec, tsCol, in.opts.Now())
}

// ObserveEventToOnline observes now minus each row's event time (column tsCol, microseconds).
func ObserveEventToOnline(h prometheus.Observer, rec arrow.RecordBatch, tsCol int, now time.Time) {
	type tsArray interface {
		Values() []arrow.Timestamp
	}
	ts, ok := rec.Column(tsCol).(tsArray)
	if !ok {
		return
	}
	nowMicros := now.UnixMicro()
	for _, t := range ts.Values() {
		h.Observe(float64(nowMicros-int64(t)) / 1e6)
	}
}

// Run commits logged batches to the offline store every CommitInterval until ctx is done,
// then makes a last commit. The first commit, at once, is the recovery of batches a previous
// process logged. Failed commits are retried at the next tick; Run returns only when ctx is
// done.
func (in *Ingester) Run(ctx context.Context) error {
	t := time.NewTicker(in.opts.CommitInterval)
	defer t.Stop()
	for {
		if _, err := in.Commit(ctx); err != nil && ctx.Err() == nil {
			in.logger.Error("offline commit of pushed rows failed; retrying", "err", err, "in", in.opts.CommitInterval)
		}
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if _, err := in.Commit(fctx); err != nil {
				in.logger.Error("final offline commit of pushed rows failed; the log keeps them for the next start", "err", err)
			}
			return nil
		case <-t.C:
		case <-in.kick:
		}
	}
}

// CommitResult reports one Commit.
type CommitResult struct {
	// Views maps each committed view to the rows it appended.
	Views map[string]int64
	// Batches is the number of logged batches committed.
	Batches int
}

// Commit commits every logged batch not yet in the offline store, one atomic append per
// view, and then removes them from the log. A batch whose sequence number the view's table
// already records (a crash between commit and removal) is not committed again.
func (in *Ingester) Commit(ctx context.Context) (CommitResult, error) {
	in.commitMu.Lock()
	defer in.commitMu.Unlock()
	res := CommitResult{Views: map[string]int64{}}
	segs, err := in.log.rotate()
	if err != nil {
		return res, err
	}
	in.m.pending.Set(float64(len(segs)))
	if len(segs) == 0 {
		return res, nil
	}
	groups := map[viewKey][]entry{}
	release := func() {
		for _, es := range groups {
			for _, e := range es {
				if e.rec != nil {
					e.rec.Release()
				}
			}
		}
	}
	for _, s := range segs {
		if err := readSegment(s.path, func(e entry) error {
			k := viewKey{e.View, max(e.Generation, 1)}
			groups[k] = append(groups[k], e)
			return nil
		}); err != nil {
			release()
			return res, err
		}
	}
	keys := make([]viewKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].view != keys[j].view {
			return keys[i].view < keys[j].view
		}
		return keys[i].generation < keys[j].generation
	})
	var errs []error
	for _, k := range keys {
		n, batches, err := in.commitView(ctx, k, groups[k])
		groups[k] = nil // commitView took the records
		if err != nil {
			in.m.commits.WithLabelValues(k.view, "error").Inc()
			errs = append(errs, err)
			continue
		}
		if batches > 0 {
			res.Views[k.view] += n
			res.Batches += batches
			in.m.commits.WithLabelValues(k.view, "ok").Inc()
			in.m.lastCommit.WithLabelValues(k.view).SetToCurrentTime()
		}
	}
	if len(errs) > 0 {
		return res, errors.Join(errs...)
	}
	if err := in.log.remove(segs); err != nil {
		return res, err
	}
	in.m.pending.Set(0)
	return res, nil
}

// commitView appends the batches of one view generation the table does not hold yet. It
// takes ownership of the entries' records.
func (in *Ingester) commitView(ctx context.Context, k viewKey, es []entry) (int64, int, error) {
	done, err := in.committedSeq(ctx, k)
	if err != nil {
		for _, e := range es {
			e.rec.Release()
		}
		return 0, 0, err
	}
	var recs []arrow.RecordBatch
	var last uint64
	for _, e := range es {
		if e.Seq <= done {
			e.rec.Release()
			continue
		}
		recs = append(recs, e.rec)
		last = max(last, e.Seq)
	}
	if len(recs) == 0 {
		return 0, 0, nil
	}
	v, err := in.View(k.view)
	if err != nil {
		// The view is gone (pruned): its data is dropped with it.
		in.logger.Warn("dropping logged rows of a view no longer pushable", "view", k.view, "err", err)
		for _, r := range recs {
			r.Release()
		}
		in.committed[k] = last
		return 0, 0, nil
	}
	vs := v.Schema
	if vs.Generation != k.generation {
		in.logger.Warn("committing pushed rows of an earlier definition generation to its own table", "view", k.view, "generation", k.generation, "current", vs.Generation)
		vs.Generation = k.generation
	}
	if in.opts.Lock != nil {
		unlock, err := in.opts.Lock(ctx)
		if err != nil {
			for _, r := range recs {
				r.Release()
			}
			return 0, 0, err
		}
		defer unlock()
	}
	batches := len(recs)
	props := map[string]string{SummaryPushLog: in.log.id, SummaryPushSeq: strconv.FormatUint(last, 10)}
	wr, err := in.off.Append(ctx, vs, offline.NewSliceStream(recs[0].Schema(), recs...), props)
	if err != nil {
		return 0, 0, fmt.Errorf("commit pushed rows of %q: %w", k.view, err)
	}
	in.committed[k] = last
	in.logger.Info("committed pushed rows", "view", k.view, "rows", wr.RowsWritten, "batches", batches, "through_seq", last, "snapshot", wr.SnapshotID)
	return wr.RowsWritten, batches, nil
}

// committedSeq is the last sequence number of this log the view's table records.
func (in *Ingester) committedSeq(ctx context.Context, k viewKey) (uint64, error) {
	if s, ok := in.committed[k]; ok {
		return s, nil
	}
	s, err := LastCommittedSeq(ctx, in.off, k.view, k.generation, in.log.id)
	if err != nil {
		return 0, err
	}
	in.committed[k] = s
	return s, nil
}

// LastCommittedSeq reads, from a view table's snapshot summaries, the last sequence number of
// the push log logID committed to it (0 when none or no table).
func LastCommittedSeq(ctx context.Context, off Offline, view string, generation int, logID string) (uint64, error) {
	snaps, err := off.Snapshots(ctx, view, generation)
	if errors.Is(err, offline.ErrTableNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read commits of %q: %w", view, err)
	}
	var last uint64
	for _, s := range snaps {
		if s.Summary[SummaryPushLog] != logID {
			continue
		}
		if n, err := strconv.ParseUint(s.Summary[SummaryPushSeq], 10, 64); err == nil {
			last = max(last, n)
		}
	}
	return last, nil
}

// Kick asks Run to commit now rather than at the next tick.
func (in *Ingester) Kick() {
	select {
	case in.kick <- struct{}{}:
	default:
	}
}

// Pending reports whether the log holds batches not yet committed.
func (in *Ingester) Pending() bool {
	closed, open := in.log.pending()
	return closed > 0 || open
}

// Close closes the log. Batches not committed stay in it for the next Open. Call it after
// Run has returned.
func (in *Ingester) Close() error { return in.log.close() }
