package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
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
	// entity of the batch, those not older than the row the store held. For an aggregation
	// view: the events folded into the tiles.
	OnlineRows int64
	// StaleRows is the number of entity rows the online store ignored because it held a newer
	// row for the entity (the stale-write guard). They still go to the offline table. For an
	// aggregation view: the events the tiles already held (redeliveries) or no window reaches.
	StaleRows int64
	// Seq is the batch's sequence number in the push log (of the log id LogID).
	Seq uint64
}

// Ingester accepts pushed batches: it validates them, writes them to the online store and its
// log, and commits the log to the offline store in the background (Run), all through one
// Writer.
type Ingester struct {
	views  atomic.Pointer[viewsBox]
	w      *Writer
	log    *wal
	opts   Options
	m      *metrics
	logger *slog.Logger

	commitMu  sync.Mutex
	committed map[groupKey]uint64 // guarded by commitMu
	reported  map[string]bool     // damaged segments already logged; guarded by commitMu

	brokenLogged atomic.Bool // the broken log was reported
}

type viewsBox struct{ Views }

// groupKey is what one offline commit covers: the logged batches of one view generation
// written under one log id.
type groupKey struct {
	view       string
	generation int
	log        string
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
	in := &Ingester{w: &Writer{Online: on, Offline: off, Lock: opts.Lock}, log: w, opts: opts, m: m, logger: logger.With("component", "ingest"),
		committed: map[groupKey]uint64{}, reported: map[string]bool{}}
	in.views.Store(&viewsBox{views})
	return in, nil
}

// LogID is the id of the ingester's push log, recorded in its offline commits. Each Open
// draws a new one, so sequence numbers are never reused under an id.
func (in *Ingester) LogID() string { return in.log.id }

// SetViews replaces the views pushes are checked against (after definitions change).
func (in *Ingester) SetViews(v Views) { in.views.Store(&viewsBox{v}) }

// View looks up a push view.
func (in *Ingester) View(name string) (*View, error) { return in.views.Load().View(name) }

// Push validates a columnar batch and accepts it: it writes the latest row per entity to the
// online store, then logs the batch and fsyncs the log. When it returns nil the batch is
// acknowledged: served online, and committed to the offline store within the commit interval
// even if the process dies now. A log already known to be broken (ErrLogBroken) refuses the
// batch before anything is written.
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

// accept writes online first, then logs: a push refused by the online store is then in no
// store. The log is checked first, so once it is broken nothing more is written online; only
// the push during which the log breaks (or a crash between the two writes) can leave its rows
// online but not logged, and its client is not acknowledged (docs/ingestion.md).
func (in *Ingester) accept(ctx context.Context, v *View, rec arrow.RecordBatch, path string) (Result, error) {
	res := Result{Rows: rec.NumRows()}
	if err := in.log.usable(); err != nil {
		in.m.batches.WithLabelValues(v.Name, "error").Inc()
		return res, fmt.Errorf("push %q: %w", v.Name, err)
	}
	if v.Online != nil && in.w.Online != nil {
		w, err := in.w.WriteOnline(ctx, v, rec)
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
		if errors.Is(err, ErrLogBroken) && in.brokenLogged.CompareAndSwap(false, true) {
			in.logger.Error("push log broken: refusing every push, writing nothing, until the server restarts; the restart commits every acknowledged batch",
				"dir", in.log.dir, "err", in.log.brokenCause(), "view", v.Name, "rows_online_not_logged", res.OnlineRows)
		}
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
		}
	}
}

// CommitResult reports one Commit.
type CommitResult struct {
	// Views maps each committed view to the rows it appended.
	Views map[string]int64
	// Batches is the number of logged batches committed.
	Batches int
	// SetAside is the number of logged batches that fit no offline table and went to the
	// log's dead-letter folder instead.
	SetAside int
	// Quarantined lists the damaged segments moved into the log's quarantine folder.
	Quarantined []string
}

// Commit commits every logged batch not yet in the offline store, one atomic append per view
// generation and log id, and then removes them from the log. A batch whose (log id, sequence
// number) the view's table already records (a crash between commit and removal) is not
// committed again, and a warning says so. Batches of a definition generation that has ended
// go to that generation's table if it still exists and fits them, batches that fit no table
// to the dead-letter folder (one error logged); either way the log is truncated. A segment
// with damaged frames has its valid frames committed and is then moved into quarantine.
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
	groups := map[groupKey][]entry{}
	release := func() {
		for _, es := range groups {
			for _, e := range es {
				if e.rec != nil {
					e.rec.Release()
				}
			}
		}
	}
	// Only the last segment a log id wrote can end in a torn frame: every earlier one was
	// fsynced and closed whole. (The open segment of this process is not among segs.)
	last := map[string]uint64{}
	for _, s := range segs {
		if s.logID != in.log.id {
			last[s.logID] = max(last[s.logID], s.num)
		}
	}
	quarantine := map[string]bool{}
	for _, s := range segs {
		rep, err := readSegment(s, func(e entry) error {
			k := groupKey{e.View, max(e.Generation, 1), e.log}
			groups[k] = append(groups[k], e)
			return nil
		})
		if err != nil {
			release()
			return res, err
		}
		if rep.TornTail >= 0 && (s.logID == in.log.id || s.num != last[s.logID]) {
			rep.Damage = append(rep.Damage, damage{Offset: rep.TornTail, Length: -1, Reason: "frame cut short in a segment closed whole"})
			rep.TornTail = -1
		}
		if rep.damaged() {
			quarantine[s.path] = true
			if !in.reported[s.path] {
				in.reported[s.path] = true
				in.logger.Error("push log segment damaged: its valid frames are committed, the damaged ones skipped, and the segment moved to quarantine",
					"segment", s.path, "damaged_at", rep.offsets(), "valid_frames", rep.Frames, "quarantine", in.log.quarantinePath(s))
			}
		} else if rep.TornTail >= 0 && !in.reported[s.path] {
			in.reported[s.path] = true
			in.logger.Warn("push log segment ends in a frame cut short by a crash; that batch was never acknowledged",
				"segment", s.path, "offset", rep.TornTail, "valid_frames", rep.Frames)
		}
	}
	keys := make([]groupKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.view != b.view {
			return a.view < b.view
		}
		if a.generation != b.generation {
			return a.generation < b.generation
		}
		return a.log < b.log
	})
	var errs []error
	for _, k := range keys {
		out, err := in.commitGroup(ctx, k, groups[k])
		groups[k] = nil // commitGroup took the records
		if err != nil {
			in.m.commits.WithLabelValues(k.view, "error").Inc()
			errs = append(errs, err)
			continue
		}
		res.SetAside += out.setAside
		if out.setAside > 0 {
			in.m.commits.WithLabelValues(k.view, "dead_letter").Inc()
		}
		if out.batches > 0 {
			res.Views[k.view] += out.rows
			res.Batches += out.batches
			in.m.commits.WithLabelValues(k.view, "ok").Inc()
			in.m.lastCommit.WithLabelValues(k.view).SetToCurrentTime()
		}
	}
	if len(errs) > 0 {
		return res, errors.Join(errs...)
	}
	if err := in.log.remove(segs, quarantine); err != nil {
		return res, err
	}
	for _, s := range segs {
		if quarantine[s.path] {
			res.Quarantined = append(res.Quarantined, in.log.quarantinePath(s))
		}
		delete(in.reported, s.path)
	}
	in.m.pending.Set(0)
	return res, nil
}

// groupResult is what commitGroup did.
type groupResult struct {
	rows     int64 // rows appended offline
	batches  int   // batches appended offline
	setAside int   // batches written to the dead-letter folder
}

// commitGroup appends the batches of one view generation and log id that the table does not
// hold yet, or sets them aside when they fit no table. It takes ownership of the records.
func (in *Ingester) commitGroup(ctx context.Context, k groupKey, es []entry) (groupResult, error) {
	var out groupResult
	releaseAll := func(es []entry) {
		for _, e := range es {
			e.rec.Release()
		}
	}
	done, err := in.committedSeq(ctx, k)
	if err != nil {
		releaseAll(es)
		return out, err
	}
	var todo []entry
	var skipped []uint64
	for _, e := range es {
		if e.Seq <= done {
			skipped = append(skipped, e.Seq)
			e.rec.Release()
			continue
		}
		todo = append(todo, e)
	}
	if len(skipped) > 0 {
		in.logger.Warn("not committing logged batches again: the offline table already records them (a crash between a commit and the log's truncation)",
			"view", k.view, "generation", k.generation, "log", k.log, "batches", len(skipped),
			"seqs", fmt.Sprintf("%d-%d", slices.Min(skipped), slices.Max(skipped)), "table_through_seq", done)
	}
	if len(todo) == 0 {
		return out, nil
	}
	last := todo[len(todo)-1].Seq
	vs, why, err := in.targetSchema(ctx, k, todo)
	if err != nil {
		releaseAll(todo)
		return out, err
	}
	recs := make([]arrow.RecordBatch, 0, len(todo))
	if why == "" {
		for _, e := range todo {
			r, err := conform(ctx, e.rec, vs, in.opts.Allocator)
			if err != nil {
				why = fmt.Sprintf("batch %d does not fit generation %d of the view: %v", e.Seq, k.generation, err)
				for _, r := range recs {
					r.Release()
				}
				recs = recs[:0]
				break
			}
			recs = append(recs, r)
		}
	}
	if why == "" {
		rows, err := in.appendGroup(ctx, k, vs, recs, last)
		switch {
		case err == nil:
			releaseAll(todo)
			in.committed[k] = last
			out.rows, out.batches = rows, len(todo)
			return out, nil
		case !misfit(err):
			releaseAll(todo)
			return out, err
		}
		why = err.Error()
	}
	files, rows, err := in.setAside(k, todo, why)
	releaseAll(todo)
	if err != nil {
		return out, err
	}
	in.committed[k] = last
	in.logger.Error("pushed rows fit no offline table: set aside in the push log's dead-letter folder, and the log truncated",
		"view", k.view, "generation", k.generation, "log", k.log, "batches", len(todo), "rows", rows,
		"seqs", fmt.Sprintf("%d-%d", todo[0].Seq, last), "files", files, "reason", why)
	out.setAside = len(todo)
	return out, nil
}

// targetSchema is the schema a group's batches are committed with: the view's current one
// when they were logged for its current generation; for an ended generation (or a view no
// longer pushable), the schema they were logged with, if that generation's table still
// exists. why says, instead, why the batches fit no table.
func (in *Ingester) targetSchema(ctx context.Context, k groupKey, es []entry) (offline.ViewSchema, string, error) {
	v, verr := in.View(k.view)
	if verr == nil && v.Schema.Generation == k.generation {
		return v.Schema, "", nil
	}
	if _, err := in.w.Offline.Snapshots(ctx, k.view, k.generation); errors.Is(err, offline.ErrTableNotFound) {
		if verr != nil {
			return offline.ViewSchema{}, fmt.Sprintf("the view is no longer pushable (%v) and generation %d has no table", verr, k.generation), nil
		}
		return offline.ViewSchema{}, fmt.Sprintf("generation %d of the view ended (now %d) and its table was dropped", k.generation, v.Schema.Generation), nil
	} else if err != nil {
		return offline.ViewSchema{}, "", fmt.Errorf("commit pushed rows of %q: %w", k.view, err)
	}
	// The newest batch was logged with the newest definitions of that generation.
	vs, err := schemaOf(k.view, k.generation, es[len(es)-1].rec.Schema())
	if err != nil {
		return offline.ViewSchema{}, err.Error(), nil //nolint:nilerr // a batch that has no view's shape fits no table: set aside
	}
	if verr == nil {
		in.logger.Warn("committing pushed rows of an ended definition generation to its own table", "view", k.view, "generation", k.generation, "current", v.Schema.Generation)
	}
	return vs, "", nil
}

// appendGroup makes one offline append of recs, recording the log and its last sequence
// number. It takes ownership of recs.
func (in *Ingester) appendGroup(ctx context.Context, k groupKey, vs offline.ViewSchema, recs []arrow.RecordBatch, last uint64) (int64, error) {
	wr, err := in.w.Commit(ctx, vs, recs, offline.PushLogToken(k.log, last))
	if err != nil {
		return 0, fmt.Errorf("commit pushed rows of %q generation %d: %w", k.view, k.generation, err)
	}
	in.logger.Info("committed pushed rows", "view", k.view, "generation", k.generation, "rows", wr.RowsWritten, "batches", len(recs), "log", k.log, "through_seq", last, "snapshot", wr.SnapshotID)
	return wr.RowsWritten, nil
}

// committedSeq is the last sequence number of the group's log its table records.
func (in *Ingester) committedSeq(ctx context.Context, k groupKey) (uint64, error) {
	if s, ok := in.committed[k]; ok {
		return s, nil
	}
	snaps, err := in.w.Commits(ctx, k.view, k.generation)
	if err != nil {
		return 0, err
	}
	s := offline.PushLogSeq(snaps, k.log)
	in.committed[k] = s
	return s, nil
}

// Pending reports whether the log holds batches not yet committed.
func (in *Ingester) Pending() bool {
	closed, open := in.log.pending()
	return closed > 0 || open
}

// Close closes the log. Batches not committed stay in it for the next Open. Call it after
// Run has returned.
func (in *Ingester) Close() error { return in.log.close() }
