package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/stores"
	"github.com/quiverfs/quiver/internal/warehouselock"
	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/serving"
)

// materializedViews are the views materialization covers when none are named: every view but
// those on push sources, whose rows arrive by push.
func materializedViews(repo *definitions.Repo) []*definitions.FeatureView {
	var out []*definitions.FeatureView
	for _, v := range repo.FeatureViews {
		if !repo.Source(v.Source).IsPush() {
			out = append(out, v)
		}
	}
	return out
}

// pushOutput is the -o json of quiver push.
type pushOutput struct {
	View       string `json:"view"`
	File       string `json:"file"`
	Rows       int64  `json:"rows"`
	OnlineRows int64  `json:"online_rows"`
	// StaleRows are entity rows the online store ignored: it held a newer row.
	StaleRows int64 `json:"stale_rows"`
	// Direct pushes: the offline commit.
	OfflineRows      int64  `json:"offline_rows,omitempty"`
	SnapshotID       string `json:"snapshot_id,omitempty"`
	AlreadyCommitted bool   `json:"already_committed,omitempty"`
	// Pushes through a server: the server's log sequence number of the last batch sent.
	Server      string `json:"server,omitempty"`
	LogSequence string `json:"log_sequence,omitempty"`
	Requests    int    `json:"requests,omitempty"`
}

func (a *app) pushCommand() *cobra.Command {
	var (
		remote    remoteFlags
		batchRows int
	)
	cmd := &cobra.Command{
		Use:   "push VIEW FILE",
		Short: "Write the rows of a Parquet or CSV file to a push feature view",
		Long: `Write the rows of a Parquet (.parquet) or CSV (.csv) file to a feature view whose source is
a push source (push: {}). The file holds one column per join key and feature of the view, the
event time in the source's timestamp_field and, optionally, the created time in its
created_timestamp_field. The whole file is checked first: an unknown or missing column, a value
of the wrong type, a null join key or event time refuses it, naming the column and row (0-based),
and nothing is written.

Without --server the rows are written directly: the latest row per entity to the online store
(an older row never replaces a newer one), then all rows to the view's offline table in one
Iceberg commit. Pushing the same file again does not commit its rows twice.

With --server the rows are sent to a quiver serve (PushFeatures) in requests of --batch-rows
rows; each acknowledged request is online and logged on the server's disk, and reaches the
offline table within the server's --push-commit-interval. See docs/ingestion.md.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			view, path := args[0], args[1]
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
			set, err := ingest.NewViewSet(cfg.Project, applied.Repo, applied.Generation)
			if err != nil {
				return err
			}
			v, err := set.View(view)
			if err != nil {
				return err
			}
			recs, batchID, err := ingest.ReadFile(ctx, v, path, nil)
			if err != nil {
				return err
			}
			out := pushOutput{View: view, File: args[1]}
			if remote.server != "" {
				b, err := v.ToBatch(recs...)
				for _, r := range recs {
					r.Release()
				}
				if err != nil {
					return err
				}
				if out, err = a.pushRemote(ctx, &remote, view, b, batchRows, out); err != nil {
					return err
				}
			} else {
				if out, err = a.pushDirect(ctx, cfg, v, recs, batchID, out); err != nil {
					return err
				}
			}
			if a.jsonOutput() {
				return a.printJSON(out)
			}
			online := fmt.Sprintf("%d entity rows online", out.OnlineRows)
			if out.StaleRows > 0 {
				online += fmt.Sprintf(", %d ignored as stale (the online store holds newer rows)", out.StaleRows)
			}
			switch {
			case out.Server != "":
				fmt.Fprintf(a.stdout, "Pushed %d rows of %s to %s in %d requests (%s); acknowledged through log sequence %s.\n",
					out.Rows, view, out.Server, out.Requests, online, out.LogSequence)
			case out.AlreadyCommitted:
				fmt.Fprintf(a.stdout, "Pushed %d rows of %s (%s); the offline table already held this file (snapshot %s).\n",
					out.Rows, view, online, out.SnapshotID)
			default:
				fmt.Fprintf(a.stdout, "Pushed %d rows of %s: %s, %d rows committed offline (snapshot %s).\n",
					out.Rows, view, online, out.OfflineRows, out.SnapshotID)
			}
			return nil
		},
	}
	a.addRemoteFlags(cmd, &remote, "push through this quiver serve (HOST:PORT) instead of writing the stores directly")
	cmd.Flags().IntVar(&batchRows, "batch-rows", 5000, "rows per PushFeatures request with --server")
	return cmd
}

func (a *app) pushDirect(ctx context.Context, cfg *config.Config, v *ingest.View, recs []arrow.RecordBatch, batchID string, out pushOutput) (pushOutput, error) {
	release := func() {
		for _, r := range recs {
			r.Release()
		}
	}
	unlock, err := warehouselock.Shared(ctx, cfg.Offline.Warehouse)
	if err != nil {
		release()
		return out, err
	}
	defer unlock()
	off, err := stores.OpenOffline(ctx, cfg, nil)
	if err != nil {
		release()
		return out, err
	}
	defer off.Close()
	var on online.Store
	if v.Online != nil {
		if on, err = stores.OpenOnline(ctx, cfg); err != nil {
			release()
			return out, err
		}
		defer on.Close()
	}
	res, err := ingest.PushDirect(ctx, v, on, off, recs, batchID)
	if err != nil {
		return out, err
	}
	out.Rows, out.OnlineRows, out.StaleRows, out.OfflineRows, out.SnapshotID, out.AlreadyCommitted = res.Rows, res.OnlineRows, res.StaleRows, res.OfflineRows, idString(res.SnapshotID), res.AlreadyCommitted
	return out, nil
}

func (a *app) pushRemote(ctx context.Context, remote *remoteFlags, view string, b ingest.Batch, batchRows int, out pushOutput) (pushOutput, error) {
	if batchRows <= 0 {
		return out, usage("--batch-rows must be at least 1")
	}
	conn, err := a.dial(remote)
	if err != nil {
		return out, err
	}
	defer conn.Close()
	client := pb.NewFeatureServingClient(conn)
	out.Server = remote.server
	for from := 0; from < b.Rows(); from += batchRows {
		to := min(from+batchRows, b.Rows())
		resp, err := client.PushFeatures(ctx, serving.PushRequestFromBatch(view, b.Slice(from, to)))
		if err != nil {
			return out, fmt.Errorf("push rows %d to %d of %s: %w", from, to-1, view, statusError(err))
		}
		out.Requests++
		out.Rows += int64(resp.GetRows())
		out.OnlineRows += int64(resp.GetOnlineRows())
		out.StaleRows += int64(resp.GetStaleRows())
		out.LogSequence = fmt.Sprint(resp.GetLogSequence())
	}
	return out, nil
}

// pushFlags are quiver serve's push ingestion settings.
type pushFlags struct {
	enabled        bool
	logDir         string
	commitInterval time.Duration
}

func addPushFlags(cmd *cobra.Command, p *pushFlags) {
	f := cmd.Flags()
	f.BoolVar(&p.enabled, "push", true, "accept PushFeatures for the project's push views (false: refuse them)")
	f.StringVar(&p.logDir, "push-log", "", "directory of the push write-ahead log, on a local disk (default: .quiver/push-log/PROJECT in the feature repo); one server per directory")
	f.DurationVar(&p.commitInterval, "push-commit-interval", ingest.DefaultCommitInterval, "most time an acknowledged push waits before its offline commit")
}

// pushServer is the ingestion side of quiver serve.
type pushServer struct {
	in  *ingest.Ingester
	off *stores.Offline
}

// openPushServer opens the ingester of quiver serve when the project has push views (or
// --push-log is given). It returns nil when push is off.
func (a *app) openPushServer(ctx context.Context, cfg *config.Config, reg registry.Store, on online.Writer, metrics prometheus.Registerer, p pushFlags) (*pushServer, error) {
	if !p.enabled {
		return nil, nil
	}
	applied, err := catalog.Load(ctx, reg, cfg.Project)
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	set, err := ingest.NewViewSet(cfg.Project, applied.Repo, applied.Generation)
	if err != nil {
		return nil, err
	}
	if len(set.Names()) == 0 && p.logDir == "" {
		return nil, nil
	}
	dir := p.logDir
	if dir == "" {
		dir = filepath.Join(cfg.Root, ".quiver", "push-log", cfg.Project)
	}
	off, err := stores.OpenOffline(ctx, cfg, reg)
	if err != nil {
		return nil, err
	}
	in, err := ingest.Open(set, on, off, ingest.Options{
		LogDir: dir, CommitInterval: p.commitInterval, Logger: a.logger(), Registerer: metrics,
		Lock: func(ctx context.Context) (func(), error) { return warehouselock.Shared(ctx, cfg.Offline.Warehouse) },
	})
	if err != nil {
		off.Close()
		return nil, err
	}
	return &pushServer{in: in, off: off}, nil
}

// run commits the log until ctx is done (then a last commit), and reloads the push views
// from the registry every refresh.
func (p *pushServer) run(ctx context.Context, reg registry.Store, cfg *config.Config, refresh time.Duration) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		t := time.NewTicker(refresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			applied, err := catalog.Load(ctx, reg, cfg.Project)
			if err != nil {
				continue
			}
			if set, err := ingest.NewViewSet(cfg.Project, applied.Repo, applied.Generation); err == nil {
				p.in.SetViews(set)
			}
		}
	})
	g.Go(func() error { return p.in.Run(ctx) })
	return g.Wait()
}

func (p *pushServer) Close() error {
	return errors.Join(p.in.Close(), p.off.Close())
}

// runWithPush serves until ctx is done, then stops the committer, which makes a last commit
// after the server has drained.
func runWithPush(ctx context.Context, srv *serving.Server, ps *pushServer, reg registry.Store, cfg *config.Config, refresh time.Duration) error {
	pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan error, 1)
	go func() { done <- ps.run(pctx, reg, cfg, refresh) }()
	err := srv.Run(ctx)
	stop()
	return errors.Join(err, <-done)
}
