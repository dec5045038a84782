package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/ingest/stream"
	"github.com/quiverfs/quiver/internal/stores"
	"github.com/quiverfs/quiver/internal/warehouselock"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
)

func (a *app) streamCommand() *cobra.Command {
	var (
		opts        stream.Options
		metricsAddr string
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
served on --metrics-addr. Run one quiver stream per consumer group. See docs/ingestion.md.`,
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
			applied, err := registry.LoadApplied(ctx, reg, cfg.Project)
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
					return invalid(fmt.Errorf("project %q has no feature view on a kafka source", cfg.Project))
				}
			}
			for _, n := range names {
				v := repo.FeatureView(n)
				if v == nil {
					return invalid(repo.UnknownError(definitions.KindFeatureView, n))
				}
				if repo.Source(v.Source).Kafka == nil {
					return invalid(fmt.Errorf("feature view %q: its source %q is not a kafka source", n, v.Source))
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
			opts.Logger = a.logger()
			opts.Lock = func(ctx context.Context) (func(), error) { return warehouselock.Shared(ctx, cfg.Offline.Warehouse) }
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
			}
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
			return g.Wait()
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.CommitInterval, "commit-interval", stream.DefaultCommitInterval, "most time a consumed row waits before its offline commit and the offset commit")
	f.DurationVar(&opts.SessionTimeout, "session-timeout", stream.DefaultSessionTimeout, "consumer group session timeout: how soon a dead consumer's partitions move on")
	f.StringVar(&metricsAddr, "metrics-addr", "127.0.0.1:9465", "Prometheus /metrics listen address HOST:PORT (empty: none)")
	return cmd
}
