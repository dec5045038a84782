// Package serving is Quiver's gRPC server: online feature retrieval (GetOnlineFeatures) and
// predictions made from those features through a model runtime (Predict), with standard
// health checking, server reflection and Prometheus metrics.
//
// The server serves one catalog snapshot of the project's definitions at a time and swaps
// in the next when its catalog.Watcher finds a new revision; it reads features from an online.Reader in one call per request;
// it runs models through serving/model runtimes. Requests are converted from wire types to
// domain types in the handlers; every error reaches the client through statusOf.
package serving

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/serving/model"
)

// Defaults of Options' zero fields.
const (
	DefaultAddr            = "127.0.0.1:6566"
	DefaultRefreshInterval = 10 * time.Second
	DefaultMaxEntityRows   = 1000
	DefaultMaxRecvMsgBytes = 4 << 20
	DefaultMaxSendMsgBytes = 64 << 20
	DefaultRequestTimeout  = 5 * time.Second
	DefaultShutdownTimeout = 15 * time.Second
	DefaultStartupTimeout  = 30 * time.Second
)

// ServiceName is the gRPC service name health reports on.
const ServiceName = "quiver.serving.v1.FeatureServing"

// Options configure a Server. Project, Registry and Store are required; every other zero field
// takes the default documented on it.
type Options struct {
	// Project whose definitions are served.
	Project string
	// Registry is where definitions are read from, and polled for new revisions by the
	// server's own catalog watcher, when Watcher is nil.
	Registry catalog.Reader
	// Watcher, when set, is the process's catalog watcher: the server serves its current
	// snapshot and follows it to every new one. Its owner runs it (RefreshInterval is then
	// unused), so that everything the process serves or writes moves to a revision together.
	Watcher *catalog.Watcher
	// Store is the online store features are read from. The server does not close it.
	Store online.Reader

	// Logger receives the server's logs. Default: discard.
	Logger *slog.Logger
	// Registerer receives the server's metrics. Default: a new private registry.
	Registerer prometheus.Registerer
	// Gatherer serves /metrics. Default: Registerer, when it is also a Gatherer.
	Gatherer prometheus.Gatherer

	// Addr is the gRPC listen address of Run. Default DefaultAddr.
	Addr string
	// MetricsAddr is the HTTP listen address of /metrics; empty: no metrics endpoint. Metrics
	// are never authenticated: NewServer refuses a non-loopback MetricsAddr unless
	// AllowUnauthenticatedMetrics is set (or AllowUnauthenticated, on a server without Auth).
	MetricsAddr string
	// AllowUnauthenticatedMetrics lets MetricsAddr be a non-loopback address.
	AllowUnauthenticatedMetrics bool
	// HealthAddr is the listen address of a plain-HTTP health endpoint, GET /healthz as on
	// the HTTP/JSON API, for probes that can present neither credentials nor a client
	// certificate (a Kubernetes httpGet probe of a server whose TLS requires client
	// certificates). It serves health only, without TLS or authentication, on any address.
	// Empty: none.
	HealthAddr string
	// HTTPAddr is the listen address of the HTTP/JSON API (the same API as gRPC, see
	// HTTPHandler); empty: none.
	HTTPAddr string
	// TLSCertFile and TLSKeyFile, when both set, make the gRPC and HTTP/JSON servers speak TLS.
	TLSCertFile, TLSKeyFile string

	// RefreshInterval is how often the server's own watcher (no Watcher given) polls the
	// registry revision. Default 10s.
	RefreshInterval time.Duration
	// MaxEntityRows bounds the entity rows of one request. Default 1000.
	MaxEntityRows int
	// MaxRecvMsgBytes bounds a request's size on both transports: a gRPC message, an HTTP/JSON
	// body. MaxSendMsgBytes bounds a gRPC response. Defaults 4 MiB and 64 MiB.
	MaxRecvMsgBytes, MaxSendMsgBytes int
	// MaxInflightRequestBytes bounds the bytes of large requests (64 KiB or more) decoded and
	// served at once, over both transports; a large request waits for room within its
	// deadline, then is refused with RESOURCE_EXHAUSTED (admission.go). Default 4 ×
	// MaxRecvMsgBytes; never less than MaxRecvMsgBytes.
	MaxInflightRequestBytes int
	// RequestTimeout is the deadline given to requests that come without one. Default 5s.
	RequestTimeout time.Duration
	// StartupTimeout bounds each startup step that talks to another service: loading the
	// definitions from the registry (NewServer) and opening models (PreloadModels), so an
	// unreachable one fails startup instead of hanging it. Default 30s.
	StartupTimeout time.Duration
	// PreloadModels makes Serve open the current version of every model before serving, and
	// fail when one cannot be opened. Default false: models open on their first request.
	PreloadModels bool
	// ShutdownTimeout bounds how long Run waits for in-flight calls on shutdown before it
	// cancels them. Default 15s.
	ShutdownTimeout time.Duration

	// Models opens model runtimes. Default: RuntimeOpener{} (onnx and oip).
	Models ModelOpener
	// ModelResolver resolves a request's model reference. Default: DefinitionResolver, which
	// takes the model's feature service and runtime from its `models:` definition.
	ModelResolver ModelResolver

	// Auth, when set, authenticates every call but health checks and authorizes it against
	// its policy (package serving/auth). Nil: no authentication, and NewServer refuses an
	// Addr that is not a loopback address unless AllowUnauthenticated is set.
	Auth *auth.Guard
	// AllowUnauthenticated lets a server without Auth listen on any address.
	AllowUnauthenticated bool
	// TLS, when set, is the gRPC server's TLS configuration (mTLS included; see
	// auth.ServerTLS). It takes precedence over TLSCertFile and TLSKeyFile.
	TLS *tls.Config
	// Pusher, when set, accepts PushFeatures batches (package ingest); nil: PushFeatures
	// answers FAILED_PRECONDITION.
	Pusher Pusher
	// DisableReflection turns gRPC server reflection off.
	DisableReflection bool
	// Services register further gRPC services on the server's port, behind the same TLS,
	// authentication and limits (Arrow Flight, package serving/flight). Nil: none.
	Services []func(grpc.ServiceRegistrar)
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Registerer == nil {
		r := prometheus.NewRegistry()
		o.Registerer = r
	}
	if o.Gatherer == nil {
		if g, ok := o.Registerer.(prometheus.Gatherer); ok {
			o.Gatherer = g
		}
	}
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.MaxEntityRows <= 0 {
		o.MaxEntityRows = DefaultMaxEntityRows
	}
	if o.MaxRecvMsgBytes <= 0 {
		o.MaxRecvMsgBytes = DefaultMaxRecvMsgBytes
	}
	if o.MaxSendMsgBytes <= 0 {
		o.MaxSendMsgBytes = DefaultMaxSendMsgBytes
	}
	if o.MaxInflightRequestBytes <= 0 {
		o.MaxInflightRequestBytes = 4 * o.MaxRecvMsgBytes
	}
	o.MaxInflightRequestBytes = max(o.MaxInflightRequestBytes, o.MaxRecvMsgBytes)
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.StartupTimeout <= 0 {
		o.StartupTimeout = DefaultStartupTimeout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.Models == nil {
		o.Models = RuntimeOpener{}
	}
	if o.ModelResolver == nil {
		o.ModelResolver = DefinitionResolver{}
	}
	return o
}

// Server serves FeatureServing. Build it with NewServer and run it with Run or Serve, once.
type Server struct {
	pb.UnimplementedFeatureServingServer

	opts    Options
	log     *slog.Logger
	metrics *metrics
	gate    *gate
	sizes   sizeTable // wire sizes of large gRPC requests, from the codec
	defs    definitionsHolder
	models  *modelCache
	grpc    *grpc.Server
	health  *health.Server
	tls     *tls.Config // nil: plaintext
	watcher *catalog.Watcher
	// ownWatcher: the server made watcher and runs it in Serve.
	ownWatcher bool
	served     atomic.Bool
	hooks      testHooks
}

// testHooks are called where tests need to hold a request (export_test.go sets them before
// Serve); nil in production.
type testHooks struct {
	// admitted: a large request of n bytes was admitted to decoding and serving.
	admitted func(n int64)
	// beforeEval: the request's on-demand features are about to be evaluated.
	beforeEval func(ctx context.Context)
}

// NewServer checks opts, loads the project's definitions from the registry (failing when it
// cannot) and builds the gRPC server. Nothing listens until Run or Serve.
func NewServer(ctx context.Context, opts Options) (*Server, error) {
	switch {
	case opts.Project == "":
		return nil, errors.New("serving: a project is required")
	case opts.Registry == nil && opts.Watcher == nil:
		return nil, errors.New("serving: a registry or a catalog watcher is required")
	case opts.Store == nil:
		return nil, errors.New("serving: an online store is required")
	}
	opts = opts.withDefaults()
	if opts.Auth == nil && !opts.AllowUnauthenticated {
		if err := auth.CheckBind(opts.Addr); err != nil {
			return nil, err
		}
		if opts.HTTPAddr != "" {
			if err := auth.CheckBind(opts.HTTPAddr); err != nil {
				return nil, fmt.Errorf("--http-addr: %w", err)
			}
		}
	}
	openServer := opts.Auth == nil && opts.AllowUnauthenticated // everything is open by choice
	if opts.MetricsAddr != "" && !opts.AllowUnauthenticatedMetrics && !openServer {
		if err := auth.CheckMetricsBind(opts.MetricsAddr); err != nil {
			return nil, err
		}
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("serving: register metrics: %w", err)
	}
	s := &Server{opts: opts, log: opts.Logger, metrics: m, gate: newGate(int64(opts.MaxInflightRequestBytes), m)}
	s.models = newModelCache(opts.Models, s.log)
	s.watcher = opts.Watcher
	if s.watcher == nil {
		lctx, cancel := context.WithTimeout(ctx, opts.StartupTimeout)
		snap, err := catalog.Load(lctx, opts.Registry, opts.Project)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("serving: load definitions of project %q: %w", opts.Project, err)
		}
		s.watcher = catalog.NewWatcher(opts.Registry, snap, catalog.WatcherOptions{Interval: opts.RefreshInterval, Logger: s.log})
		s.ownWatcher = true
	}
	d, err := FromCatalog(s.watcher.Current())
	if err != nil {
		return nil, fmt.Errorf("serving: definitions of project %q: %w", opts.Project, err)
	}
	s.defs.cur.Store(d)
	m.revision.Set(float64(d.Revision))

	// sizeInterceptor comes first: it takes the entry the codec recorded for a large request
	// before anything can refuse the call (admission.go).
	unary := []grpc.UnaryServerInterceptor{s.sizeInterceptor, s.recoverInterceptor, s.deadlineInterceptor}
	sopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(opts.MaxRecvMsgBytes),
		grpc.MaxSendMsgSize(opts.MaxSendMsgBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.ForceServerCodecV2(serverCodec{sizes: &s.sizes}), // codec.go: response buffers that are not cleared
	}
	if opts.Auth != nil {
		unary = append(unary, opts.Auth.UnaryServerInterceptor())
		sopts = append(sopts, grpc.ChainStreamInterceptor(opts.Auth.StreamServerInterceptor()))
	}
	unary = append(unary, s.admitInterceptor)
	sopts = append(sopts, grpc.ChainUnaryInterceptor(unary...))
	if opts.TLS != nil {
		s.tls = opts.TLS
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	} else if opts.TLSCertFile != "" || opts.TLSKeyFile != "" {
		if opts.TLSCertFile == "" || opts.TLSKeyFile == "" {
			return nil, errors.New("serving: TLS needs both a certificate file and a key file (--tls-cert and --tls-key)")
		}
		cert, err := tls.LoadX509KeyPair(opts.TLSCertFile, opts.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("serving: load TLS key pair (certificate %s, key %s): %w", opts.TLSCertFile, opts.TLSKeyFile, err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(s.tls)))
	}
	s.grpc = grpc.NewServer(sopts...)
	pb.RegisterFeatureServingServer(s.grpc, s)
	for _, register := range opts.Services {
		register(s.grpc)
	}
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if !opts.DisableReflection {
		reflection.Register(s.grpc)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s, nil
}

// Definitions returns the snapshot being served.
func (s *Server) Definitions() *Definitions { return s.defs.cur.Load() }

// useCatalog serves snap from now on, unless it is what is served already. Definitions the
// server cannot serve are logged, counted and skipped: the current ones stay.
func (s *Server) useCatalog(ctx context.Context, snap *catalog.Snapshot) {
	if cur := s.defs.cur.Load(); cur != nil && cur.Catalog == snap {
		return
	}
	d, err := FromCatalog(snap)
	if err != nil {
		s.log.Warn("cannot serve the definitions of a new revision; serving the current ones", "project", s.opts.Project, "revision", snap.Revision, "err", err)
		s.metrics.refreshErrors.Inc()
		return
	}
	old := s.defs.cur.Swap(d)
	s.metrics.revision.Set(float64(d.Revision))
	s.models.onSwap(ctx, s.opts.ModelResolver)(old, d)
}

// MetricsHandler serves the Gatherer's metrics in the Prometheus text format.
func (s *Server) MetricsHandler() http.Handler {
	if s.opts.Gatherer == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)})
}

// Run listens on opts.Addr and serves until ctx is done, as Serve does.
func (s *Server) Run(ctx context.Context) error {
	lis, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("serving: listen for gRPC on %s: %w", s.opts.Addr, err)
	}
	return s.Serve(ctx, lis)
}

// Serve serves gRPC on lis (a bufconn listener in tests), and metrics and HTTP/JSON on their
// own addresses when set, until ctx is done; then it shuts down gracefully: health turns
// NOT_SERVING, new calls are refused, and in-flight calls get up to ShutdownTimeout to finish.
// It closes lis.
//
// Every startup failure — an address in use, a model that cannot be opened
// (PreloadModels) — returns at once with an error naming it, and so does a server that fails
// later: one errgroup owns every goroutine of the server, and the first to fail cancels the
// others before Serve waits for them. Serve returns nil after a shutdown asked for by ctx.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	if !s.served.CompareAndSwap(false, true) {
		_ = lis.Close()
		return errors.New("serving: Serve or Run called twice on one server")
	}
	defer s.models.closeAll()
	var extra []*endpoint
	closeAll := func() {
		_ = lis.Close()
		for _, e := range extra {
			_ = e.lis.Close()
		}
	}
	for _, e := range s.endpoints() {
		l, err := net.Listen("tcp", e.addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("serving: listen for %s on %s: %w", e.name, e.addr, err)
		}
		e.lis = l
		extra = append(extra, e)
	}
	if s.opts.PreloadModels {
		if err := s.preloadModels(ctx); err != nil {
			closeAll()
			return fmt.Errorf("serving: %w", err)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	s.watcher.OnChange(func(_, cur *catalog.Snapshot) { s.useCatalog(gctx, cur) })
	s.watcher.OnError(func(error) { s.metrics.refreshErrors.Inc() })
	s.useCatalog(gctx, s.watcher.Current()) // a revision the watcher found before Serve
	if s.ownWatcher {
		g.Go(func() error { return s.watcher.Run(gctx) })
	}
	s.log.Info("serving gRPC", "addr", lis.Addr().String(), "project", s.opts.Project, "tls", s.tls != nil, "auth", s.opts.Auth != nil)
	g.Go(func() error {
		err := s.grpc.Serve(lis)
		if gctx.Err() != nil {
			return nil //nolint:nilerr // stopped by shutdown: not a failure
		}
		if err == nil {
			err = errors.New("stopped")
		}
		return fmt.Errorf("serving: gRPC server on %s: %w", lis.Addr(), err)
	})
	for _, e := range extra {
		s.log.Info("serving "+e.name, "addr", e.lis.Addr().String())
		g.Go(func() error {
			var err error
			if e.tls {
				err = e.srv.ServeTLS(e.lis, "", "")
			} else {
				err = e.srv.Serve(e.lis)
			}
			if gctx.Err() != nil && errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("serving: %s server on %s: %w", e.name, e.lis.Addr(), err)
		})
	}
	g.Go(func() error {
		<-gctx.Done() // ctx done, or a server above failed
		s.shutdown(extra)
		return nil
	})
	return g.Wait()
}

// endpoint is an HTTP server of Serve besides gRPC: metrics, or the HTTP/JSON API.
type endpoint struct {
	name string // for logs and errors
	addr string
	tls  bool // serve TLS with the server's certificate
	srv  *http.Server
	lis  net.Listener
}

// endpoints are the HTTP servers Options ask for.
func (s *Server) endpoints() []*endpoint {
	var out []*endpoint
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	if s.opts.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", s.MetricsHandler())
		out = append(out, &endpoint{name: "metrics", addr: s.opts.MetricsAddr, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}})
	}
	if s.opts.HealthAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET "+healthPath, s.httpHealth)
		out = append(out, &endpoint{name: "health", addr: s.opts.HealthAddr, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}})
	}
	if s.opts.HTTPAddr != "" {
		out = append(out, &endpoint{name: "HTTP/JSON", addr: s.opts.HTTPAddr, tls: s.tls != nil,
			srv: &http.Server{Handler: s.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, TLSConfig: s.tls, ErrorLog: errLog}})
	}
	return out
}

// preloadModels opens the current version of every model of the definitions, so that a model
// that cannot be opened stops the server at startup instead of failing its first request. A
// model with no version to serve yet (none registered, and no path or endpoint in its
// definition) is skipped with a warning.
func (s *Server) preloadModels(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartupTimeout)
	defer cancel()
	d, err := s.defs.get()
	if err != nil {
		return err
	}
	for _, m := range d.Repo.Models {
		v, err := s.opts.ModelResolver.ResolveModel(ctx, d, model.Ref{Name: m.Name})
		if errors.Is(err, model.ErrNotFound) {
			s.log.Warn("model has no version to serve", "model", m.Name, "err", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("resolve model %q: %w", m.Name, err)
		}
		if v.Path == "" && v.Endpoint == "" {
			s.log.Warn("model has no version to serve: nothing registered, and no path or endpoint in its definition", "model", m.Name)
			continue
		}
		if _, err := s.models.get(ctx, v); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) shutdown(extra []*endpoint) {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(s.opts.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("shutdown timeout: cancelling in-flight calls", "timeout", s.opts.ShutdownTimeout)
		s.grpc.Stop()
		<-done
	}
	for _, e := range extra {
		sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
		if err := e.srv.Shutdown(sctx); err != nil {
			_ = e.srv.Close()
		}
		cancel()
	}
	s.log.Info("server stopped")
}

// recoverInterceptor turns a panic into INTERNAL and logs its stack; a bug in one request
// must not take the server down.
func (s *Server) recoverInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(ctx, req)
}

// deadlineInterceptor gives calls without a deadline RequestTimeout, so a hung store cannot
// hold a request forever.
func (s *Server) deadlineInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.RequestTimeout)
		defer cancel()
	}
	return handler(ctx, req)
}

// sizeInterceptor moves a large request's wire size, recorded by the codec, into its context.
func (s *Server) sizeInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if n, ok := s.sizes.take(req); ok {
		ctx = context.WithValue(ctx, requestSizeKey{}, int64(n))
	}
	return handler(ctx, req)
}

// admitInterceptor passes large requests through the gate (admission.go) before their
// handler converts and serves them. It runs after authentication: an unauthenticated caller
// never takes room.
func (s *Server) admitInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	n, ok := ctx.Value(requestSizeKey{}).(int64)
	if !ok {
		return handler(ctx, req)
	}
	start := time.Now()
	release, err := s.gate.admit(ctx, n)
	if err != nil {
		return nil, s.finish(ctx, path.Base(info.FullMethod), "unknown", start, err)
	}
	defer release()
	if h := s.hooks.admitted; h != nil {
		h(n)
	}
	return handler(ctx, req)
}

// finish records a call's metrics, logs server-side failures, and returns the call's status
// error (nil for OK).
func (s *Server) finish(ctx context.Context, method, service string, start time.Time, err error) error {
	st, internal := statusOf(ctx, err)
	code := st.Code().String()
	s.metrics.requests.WithLabelValues(method, service, code).Inc()
	s.metrics.latency.WithLabelValues(method, service).Observe(time.Since(start).Seconds())
	if err == nil {
		return nil
	}
	s.metrics.errors.WithLabelValues(method, code).Inc()
	if internal {
		s.log.Error("request failed", "method", method, "service", service, "err", err)
	} else {
		s.log.Debug("request failed", "method", method, "service", service, "code", code, "err", err)
	}
	return st.Err()
}
