package catalog

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often a Watcher polls the registry's revision by default.
const DefaultInterval = 10 * time.Second

// Watcher keeps a process's current snapshot: it polls the project's registry revision and,
// when it changed, loads the new snapshot and tells every OnChange subscriber, in the order
// they subscribed, before the next check. One Watcher per process feeds everything that
// serves or writes from the definitions (the server, the push ingester, stream consumers),
// so they move to a new revision together.
type Watcher struct {
	reg      Reader
	project  string
	interval time.Duration
	log      *slog.Logger

	cur atomic.Pointer[Snapshot]

	mu     sync.Mutex // serializes Check and guards the subscribers
	subs   []func(old, cur *Snapshot)
	errors []func(error)
}

// WatcherOptions tune a Watcher; the zero value is usable.
type WatcherOptions struct {
	// Interval between checks; DefaultInterval when zero or negative.
	Interval time.Duration
	// Logger receives one line per new revision and per failed check; nil discards.
	Logger *slog.Logger
}

// NewWatcher returns a watcher of project whose current snapshot is initial (not nil).
func NewWatcher(reg Reader, initial *Snapshot, opts WatcherOptions) *Watcher {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{reg: reg, project: initial.Project, interval: opts.Interval, log: opts.Logger}
	w.cur.Store(initial)
	return w
}

// Current is the latest snapshot loaded.
func (w *Watcher) Current() *Snapshot { return w.cur.Load() }

// OnChange subscribes fn to new snapshots: Check calls it, with the snapshot replaced and
// the new one, after Current returns the new one. fn runs on the checking goroutine and
// must not call Check.
func (w *Watcher) OnChange(fn func(old, cur *Snapshot)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.subs = append(w.subs, fn)
}

// OnError subscribes fn to failed checks (a metric counts them, say); the current snapshot
// stays. fn runs on the checking goroutine and must not call Check.
func (w *Watcher) OnError(fn func(error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errors = append(w.errors, fn)
}

// Check reads the registry's revision now and, when it is not the current snapshot's, loads
// the new snapshot and tells the subscribers. It reports whether the snapshot changed; on an
// error the current snapshot stays. Checks are serialized.
func (w *Watcher) Check(ctx context.Context) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.cur.Load()
	rev, err := w.reg.CurrentRevision(ctx, w.project)
	if err != nil || rev == old.Revision {
		return false, w.failed(ctx, err)
	}
	cur, err := Load(ctx, w.reg, w.project)
	if err != nil || cur.Revision == old.Revision {
		return false, w.failed(ctx, err)
	}
	w.cur.Store(cur)
	w.log.Info("definitions loaded", "project", w.project, "revision", cur.Revision, "views", len(cur.Repo.FeatureViews),
		"services", len(cur.Repo.FeatureServices), "models", len(cur.Repo.Models))
	for _, fn := range w.subs {
		fn(old, cur)
	}
	return true, nil
}

func (w *Watcher) failed(ctx context.Context, err error) error {
	if err != nil && ctx.Err() == nil {
		w.log.Warn("check the registry for new definitions; keeping revision", "project", w.project, "revision", w.cur.Load().Revision, "err", err)
		for _, fn := range w.errors {
			fn(err)
		}
	}
	return err
}

// Run checks every interval until ctx is done, then returns nil. A failed check is logged
// and retried at the next tick.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_, _ = w.Check(ctx)
		}
	}
}
