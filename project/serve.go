package project

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/serving"
	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/serving/flight"
	"github.com/quiverfs/quiver/serving/model/onnx"
)

// ServeOptions are quiver serve's settings.
type ServeOptions struct {
	// Server are the server's settings from the command line; Serve sets the project, the
	// stores, the logger and metrics, the models, the authentication of quiver.yaml's
	// serving: section and the push ingester.
	Server serving.Options
	// ClientCA, when set, requires mTLS with client certificates chaining to it (it wins
	// over serving.tls.client_ca); Server.TLSCertFile and TLSKeyFile win over serving.tls.
	ClientCA string
	// ONNX configures the ONNX Runtime of onnx models.
	ONNX onnx.Options
	// Push configures PushFeatures.
	Push PushOptions
}

// PushOptions are quiver serve's push ingestion settings.
type PushOptions struct {
	// Enabled accepts PushFeatures for the project's push views.
	Enabled bool
	// LogDir is the push write-ahead log's directory; default .quiver/push-log/PROJECT in the
	// feature repo.
	LogDir string
	// CommitInterval bounds how long an acknowledged push waits for its offline commit.
	CommitInterval time.Duration
}

// Serve serves the project's online features and predictions, and its datasets over Arrow
// Flight on the same port, until ctx is done. One run
// group owns every goroutine: the server (gRPC, HTTP/JSON, health, /metrics), the push
// committer, and the one catalog watcher that moves the server and the push ingester to a
// new registry revision together, so pushes are checked against the revision served. The
// committer stops after the server has drained, with a last commit.
func (p *Project) Serve(ctx context.Context, opts ServeOptions) error {
	sopts := opts.Server
	sc, err := auth.ParseConfig(config.FileName, p.Config.Root, p.Config.Serving)
	if err != nil {
		return err
	}
	if sopts.TLSCertFile != "" || sopts.TLSKeyFile != "" { // flags win over quiver.yaml
		sc.TLS.CertFile, sc.TLS.KeyFile = sopts.TLSCertFile, sopts.TLSKeyFile
	}
	if opts.ClientCA != "" {
		sc.TLS.ClientCAFile = opts.ClientCA
	}
	if err := sc.Validate(); err != nil {
		return err
	}
	if err := sc.CheckServe(); err != nil {
		return err
	}
	if w := sc.ServeUnauthenticatedWarning(); w != "" {
		p.Logger().Warn(w)
	}
	if sopts.TLS, err = auth.ServerTLS(sc.TLS); err != nil {
		return err
	}
	sopts.DisableReflection = !sc.Reflection
	reg, err := p.Registry(ctx)
	if err != nil {
		return err
	}
	startup := sopts.StartupTimeout
	if startup <= 0 {
		startup = serving.DefaultStartupTimeout
	}
	lctx, cancel := context.WithTimeout(ctx, startup)
	snap, err := catalog.Load(lctx, reg, p.Name())
	cancel()
	if err != nil {
		return fmt.Errorf("serving: load definitions of project %q: %w", p.Name(), err)
	}
	watcher := catalog.NewWatcher(reg, snap, catalog.WatcherOptions{Interval: sopts.RefreshInterval, Logger: p.Logger()})
	// The model runtimes are loaded now, so a missing one fails the start, not the first
	// Predict.
	if err := serving.CheckModelRuntimes(ctx, snap.Repo, reg, p.Name(), opts.ONNX); err != nil {
		return err
	}
	store, err := p.Online(ctx)
	if err != nil {
		return err
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sopts.Project, sopts.Registry, sopts.Store, sopts.Watcher = p.Name(), reg, store, watcher
	sopts.Logger, sopts.Registerer, sopts.Gatherer = p.Logger(), metrics, metrics
	sopts.Models = serving.RuntimeOpener{BaseDir: p.Config.Root, ONNX: opts.ONNX}
	sopts.ModelResolver = &serving.RegistryResolver{Models: reg, Project: p.Name()}
	if sc.AuthEnabled() {
		// The Flight service authorizes each call itself, once it knows the dataset.
		aopts := auth.Options{Project: p.Name(), Logger: sopts.Logger, Registerer: metrics, HandlerAuthorized: []string{flight.ServicePrefix}}
		if sopts.Auth, err = auth.New(ctx, sc, aopts); err != nil {
			return err
		}
	}
	// Arrow Flight (datasets) shares the gRPC port: one listener, one TLS and auth setup.
	fl, err := flight.New(flight.Options{Project: p.Name(), Datasets: flightDatasets{p: p, watcher: watcher}, Auth: sopts.Auth,
		Logger: sopts.Logger, Registerer: metrics})
	if err != nil {
		return err
	}
	sopts.Services = append(sopts.Services, fl.Register)
	in, err := p.openIngester(ctx, snap, metrics, opts.Push)
	if err != nil {
		return err
	}
	if in != nil {
		defer in.Close()
		sopts.Pusher = in
		watcher.OnChange(func(_, cur *catalog.Snapshot) { in.SetViews(ingest.ViewSetOf(cur)) })
	}
	srv, err := serving.NewServer(ctx, sopts)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	// The committer runs until the server has returned (drained), then makes a last commit.
	commitCtx, stopCommits := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCommits()
	g.Go(func() error { return watcher.Run(gctx) })
	g.Go(func() error {
		defer stopCommits()
		return srv.Run(gctx) // returns after graceful shutdown
	})
	if in != nil {
		g.Go(func() error { return in.Run(commitCtx) })
	}
	return g.Wait()
}

// openIngester opens the push ingester of quiver serve when the project has push views (or a
// log directory is given). It returns nil when push is off.
func (p *Project) openIngester(ctx context.Context, snap *catalog.Snapshot, metrics prometheus.Registerer, opts PushOptions) (*ingest.Ingester, error) {
	if !opts.Enabled {
		return nil, nil
	}
	set := ingest.ViewSetOf(snap)
	if len(set.Names()) == 0 && opts.LogDir == "" {
		return nil, nil
	}
	dir := opts.LogDir
	if dir == "" {
		dir = filepath.Join(p.Config.Root, ".quiver", "push-log", p.Name())
	}
	on, err := p.Online(ctx)
	if err != nil {
		return nil, err
	}
	off, err := p.Offline(ctx)
	if err != nil {
		return nil, err
	}
	return ingest.Open(set, on, off, ingest.Options{
		LogDir: dir, CommitInterval: opts.CommitInterval, Logger: p.Logger(), Registerer: metrics, Lock: p.LockShared,
	})
}
