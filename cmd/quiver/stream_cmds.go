package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/ingest/stream"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/internal/stores"
	"github.com/quiverfs/quiver/internal/warehouselock"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/serving"
)

func (a *app) streamCommand() *cobra.Command {
	var (
		opts        stream.Options
		metricsAddr string
		refresh     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "stream [VIEW...]",
		Short: "Consume the Kafka sources of feature views into the online and offline stores",
		Long: `Consume the Kafka topics of feature views whose source is a kafka source (all of them when
none is named), until interrupted. Each message becomes a row: the latest row per entity is
written to the online store at once (an older row never replaces a newer one), the rows are
appended to the view's Iceberg table at least every --commit-interval, and only then are the
consumer group's offsets committed. A restart resumes from the committed offsets; messages the
offline table already holds are not appended again. A message that cannot be read is copied to
the source's dead_letter_topic (on_error: dead_letter) or counted and skipped (on_error: skip).
Prometheus metrics (consumer lag per partition, event-to-online latency, message counts) are
served on --metrics-addr. Run one quiver stream per consumer group. See docs/ingestion.md.

Every --refresh, and before every offline commit, it checks the registry's revision. After an
apply that changes a consumed view or its source (a breaking change starts a new definition
generation), it consumes again, from the committed offsets, what it had not committed yet and
goes on with the new definitions, writing the new generation's table, without a restart. If a
consumed view is removed, or its source is no longer a kafka source, it commits nothing more
for it and stops with an error (exit code 4).`,
		RunE: func(cmd *cobra.Command, names []string) error {
			ctx := cmd.Context()
			cfg, err := a.config()
			if err != nil {
				return err
			}
			reg, err := a.registry(ctx, cfg)
			if err != nil {
				return err
			}
			defer reg.Close()
			applied, err := catalog.Load(ctx, reg, cfg.Project)
			if err != nil {
				return err
			}
			repo := applied.Repo
			var views []*definitions.FeatureView
			if len(names) == 0 {
				for _, v := range repo.FeatureViews {
					if repo.Source(v.Source).Kafka != nil {
						views = append(views, v)
					}
				}
				if len(views) == 0 {
					return errkind.Errorf(errkind.Invalid, "project %q has no feature view on a kafka source", cfg.Project)
				}
			}
			for _, n := range names {
				v := repo.FeatureView(n)
				if v == nil {
					return repo.UnknownError(definitions.KindFeatureView, n)
				}
				if repo.Source(v.Source).Kafka == nil {
					return errkind.Errorf(errkind.Invalid, "feature view %q: its source %q is not a kafka source", n, v.Source)
				}
				views = append(views, v)
			}
			off, err := stores.OpenOffline(ctx, cfg, reg)
			if err != nil {
				return err
			}
			defer off.Close()
			var on online.Store
			for _, v := range views {
				if v.Online {
					if on, err = stores.OpenOnline(ctx, cfg); err != nil {
						return err
					}
					defer on.Close()
					break
				}
			}
			metrics := prometheus.NewRegistry()
			metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			if opts.Metrics, err = stream.NewMetrics(metrics); err != nil {
				return err
			}
			if refresh <= 0 {
				return usage("--refresh must be positive")
			}
			opts.Logger = a.logger()
			opts.Lock = func(ctx context.Context) (func(), error) { return warehouselock.Shared(ctx, cfg.Offline.Warehouse) }
			watcher := &defsWatcher{reg: reg, project: cfg.Project, all: len(names) == 0, log: a.logger().With("component", "stream"),
				rev: applied.Revision, failed: make(chan struct{})}
			opts.BeforeCommit = watcher.check
			var consumers []*stream.Consumer
			for _, fv := range views {
				v, err := ingest.NewView(cfg.Project, repo, fv, applied.Generation(fv.Name))
				if err != nil {
					return err
				}
				c, err := stream.New(v, repo.Source(fv.Source), on, off, opts)
				if err != nil {
					return err
				}
				consumers = append(consumers, c)
				watcher.names = append(watcher.names, fv.Name)
			}
			watcher.mu.Lock()
			watcher.consumers = consumers
			watcher.mu.Unlock()
			g, gctx := errgroup.WithContext(ctx)
			if metricsAddr != "" {
				ln, err := net.Listen("tcp", metricsAddr)
				if err != nil {
					return fmt.Errorf("--metrics-addr %s: %w", metricsAddr, err)
				}
				mux := http.NewServeMux()
				mux.Handle("/metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
				srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
				g.Go(func() error {
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						return err
					}
					return nil
				})
				g.Go(func() error {
					<-gctx.Done()
					sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
					defer cancel()
					return srv.Shutdown(sctx)
				})
			}
			for _, c := range consumers {
				g.Go(func() error { return c.Run(gctx) })
			}
			g.Go(func() error { return watcher.run(gctx, refresh) })
			return g.Wait()
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.CommitInterval, "commit-interval", stream.DefaultCommitInterval, "most time a consumed row waits before its offline commit and the offset commit")
	f.DurationVar(&opts.SessionTimeout, "session-timeout", stream.DefaultSessionTimeout, "consumer group session timeout: how soon a dead consumer's partitions move on")
	f.StringVar(&metricsAddr, "metrics-addr", "127.0.0.1:9465", "Prometheus /metrics listen address HOST:PORT (empty: none)")
	f.DurationVar(&refresh, "refresh", serving.DefaultRefreshInterval, "how often to check the registry for new definitions of the consumed views")
	return cmd
}

// defsWatcher gives quiver stream's consumers new definitions after an apply. check reads the
// registry's revision and, when it changed, hands each consumer its view's new definitions
// (Update); a consumed view that was removed, or whose source is no longer a kafka source,
// abandons its consumer and ends quiver stream with an error. It runs every --refresh and
// before every offline commit (stream.Options.BeforeCommit), so no commit is made with
// definitions an apply has replaced.
type defsWatcher struct {
	reg     registry.Store
	project string
	all     bool // the views were not named: a kafka view applied later is reported
	log     *slog.Logger
	names   []string // consumers[i] consumes view names[i]

	mu        sync.Mutex // guards the rest
	rev       int64
	consumers []*stream.Consumer
	fatal     error
	failed    chan struct{} // closed when fatal is set
}

func (w *defsWatcher) check(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fatal != nil {
		return
	}
	cur, err := w.reg.CurrentRevision(ctx, w.project)
	if err != nil || cur == w.rev {
		if err != nil && ctx.Err() == nil {
			w.log.Warn("cannot read the registry revision; consuming with the definitions of revision "+strconv.FormatInt(w.rev, 10), "err", err)
		}
		return
	}
	applied, err := catalog.Load(ctx, w.reg, w.project)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("cannot load the definitions of a new registry revision; retrying", "revision", cur, "err", err)
		}
		return
	}
	repo := applied.Repo
	fail := func(c *stream.Consumer, err error) {
		if c != nil {
			c.Abandon()
		}
		w.fatal = errkind.Mark(errkind.Failed, err)
		close(w.failed)
	}
	consumed := map[string]bool{}
	for i, c := range w.consumers {
		name := w.names[i]
		consumed[name] = true
		fv := repo.FeatureView(name)
		if fv == nil {
			fail(c, fmt.Errorf("feature view %q was removed from the registry (revision %d): quiver stream stopped consuming it", name, applied.Revision))
			return
		}
		src := repo.Source(fv.Source)
		if src == nil || src.Kafka == nil {
			fail(c, fmt.Errorf("feature view %q: its source %q is no longer a kafka source (revision %d): quiver stream stopped consuming it", name, fv.Source, applied.Revision))
			return
		}
		v, err := ingest.NewView(w.project, repo, fv, applied.Generation(name))
		if err == nil {
			err = c.Update(v, src)
		}
		if err != nil {
			fail(nil, fmt.Errorf("feature view %q at registry revision %d: %w", name, applied.Revision, err))
			return
		}
	}
	if w.all {
		for _, fv := range repo.FeatureViews {
			if src := repo.Source(fv.Source); src != nil && src.Kafka != nil && !consumed[fv.Name] {
				w.log.Warn("a feature view on a kafka source was applied; restart quiver stream to consume it", "view", fv.Name, "revision", applied.Revision)
			}
		}
	}
	w.rev = applied.Revision
}

// run checks every refresh until ctx is done (nil) or a consumed view is gone (its error).
func (w *defsWatcher) run(ctx context.Context, refresh time.Duration) error {
	t := time.NewTicker(refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.failed:
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.fatal
		case <-t.C:
			w.check(ctx)
		}
	}
}
