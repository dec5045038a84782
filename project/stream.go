package project

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/ingest/stream"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/serving/auth"
)

// StreamOptions are quiver stream's settings.
type StreamOptions struct {
	// Views are the views to consume; none means every view on a kafka source.
	Views []string
	// Consumer tunes the consumers (commit interval, session timeout); Serve sets the rest.
	Consumer stream.Options
	// MetricsAddr is where /metrics is served; empty: nowhere. /metrics is never
	// authenticated: a non-loopback address is refused unless AllowUnauthenticatedMetrics.
	MetricsAddr string
	// AllowUnauthenticatedMetrics lets MetricsAddr be a non-loopback address.
	AllowUnauthenticatedMetrics bool
	// Refresh is how often the registry is checked for new definitions (also checked before
	// every offline commit).
	Refresh time.Duration
}

// Stream consumes the Kafka sources of views into both stores until ctx is done. One run group
// owns every goroutine: a consumer per view, the /metrics endpoint and the catalog watcher.
// After an apply that changes a consumed view or its source the consumers go on with the new
// definitions (a new generation's table) without a restart; a consumed view removed, or no
// longer on a kafka source, ends Stream with an error (errkind.Failed).
func (p *Project) Stream(ctx context.Context, opts StreamOptions) error {
	if opts.Refresh <= 0 {
		return errkind.New(errkind.Usage, "--refresh must be positive")
	}
	if opts.MetricsAddr != "" && !opts.AllowUnauthenticatedMetrics {
		if err := auth.CheckMetricsBind(opts.MetricsAddr); err != nil {
			return err
		}
	}
	snap, err := p.Catalog(ctx)
	if err != nil {
		return err
	}
	views, err := snap.Views(opts.Views...)
	if err != nil {
		return err
	}
	if len(opts.Views) == 0 {
		all := views
		views = nil
		for _, v := range all {
			if v.Kafka() {
				views = append(views, v)
			}
		}
		if len(views) == 0 {
			return errkind.Errorf(errkind.Invalid, "project %q has no feature view on a kafka source", p.Name())
		}
	}
	for _, v := range views {
		if !v.Kafka() {
			return errkind.Errorf(errkind.Invalid, "feature view %q: its source %q is not a kafka source", v.Name, v.Def.Source)
		}
	}
	off, err := p.Offline(ctx)
	if err != nil {
		return err
	}
	var on online.Store
	for _, v := range views {
		if v.Online != nil {
			if on, err = p.Online(ctx); err != nil {
				return err
			}
			break
		}
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	copts := opts.Consumer
	if copts.Metrics, err = stream.NewMetrics(metrics); err != nil {
		return err
	}
	reg, err := p.Registry(ctx)
	if err != nil {
		return err
	}
	watcher := catalog.NewWatcher(reg, snap, catalog.WatcherOptions{Interval: opts.Refresh, Logger: p.Logger().With("component", "stream")})
	copts.Logger = p.Logger()
	w := &ingest.Writer{Offline: off, Lock: p.LockShared}
	if on != nil {
		w.Online = on
	}
	// No commit is made with definitions an apply has replaced: each consumer checks first.
	copts.BeforeCommit = func(ctx context.Context) { _, _ = watcher.Check(ctx) }
	f := &follower{all: len(opts.Views) == 0, failed: make(chan struct{}), log: p.Logger().With("component", "stream")}
	for _, v := range views {
		c, err := stream.New(&ingest.View{View: v}, v.Source, w, copts)
		if err != nil {
			return err
		}
		f.consumers = append(f.consumers, c)
		f.names = append(f.names, v.Name)
	}
	watcher.OnChange(f.follow)

	var ln net.Listener
	if opts.MetricsAddr != "" {
		if ln, err = net.Listen("tcp", opts.MetricsAddr); err != nil {
			return fmt.Errorf("--metrics-addr %s: %w", opts.MetricsAddr, err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	if ln != nil {
		g.Go(func() error { return serveMetrics(gctx, ln, metrics) })
	}
	for _, c := range f.consumers {
		g.Go(func() error { return c.Run(gctx) })
	}
	g.Go(func() error { return watcher.Run(gctx) })
	g.Go(func() error {
		select {
		case <-gctx.Done():
			return nil
		case <-f.failed:
			return f.err()
		}
	})
	return g.Wait()
}

// follower hands stream consumers the definitions of each new revision (Update). A consumed
// view that was removed, or whose source is no longer a kafka source, abandons its consumer
// and fails the stream.
type follower struct {
	all       bool // the views were not named: a kafka view applied later is reported
	names     []string
	consumers []*stream.Consumer // consumers[i] consumes view names[i]
	log       interface{ Warn(string, ...any) }

	mu     sync.Mutex
	fatal  error
	failed chan struct{} // closed when fatal is set
}

func (f *follower) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fatal
}

func (f *follower) follow(_, cur *catalog.Snapshot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fatal != nil {
		return
	}
	fail := func(c *stream.Consumer, err error) {
		if c != nil {
			c.Abandon()
		}
		f.fatal = errkind.Mark(errkind.Failed, err)
		close(f.failed)
	}
	consumed := map[string]bool{}
	for i, c := range f.consumers {
		name := f.names[i]
		consumed[name] = true
		v, err := cur.View(name)
		if err != nil {
			fail(c, fmt.Errorf("feature view %q was removed from the registry (revision %d): quiver stream stopped consuming it", name, cur.Revision))
			return
		}
		if !v.Kafka() {
			fail(c, fmt.Errorf("feature view %q: its source %q is no longer a kafka source (revision %d): quiver stream stopped consuming it", name, v.Def.Source, cur.Revision))
			return
		}
		if err := c.Update(&ingest.View{View: v}, v.Source); err != nil {
			fail(nil, fmt.Errorf("feature view %q at registry revision %d: %w", name, cur.Revision, err))
			return
		}
	}
	if f.all {
		views, _ := cur.Views()
		for _, v := range views {
			if v.Kafka() && !consumed[v.Name] {
				f.log.Warn("a feature view on a kafka source was applied; restart quiver stream to consume it", "view", v.Name, "revision", cur.Revision)
			}
		}
	}
}

// serveMetrics serves gatherer's metrics on ln, at /metrics, until ctx is done.
func serveMetrics(ctx context.Context, ln net.Listener, gatherer prometheus.Gatherer) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
