// Package serving is Quiver's gRPC server: online feature retrieval (GetOnlineFeatures) and
// predictions made from those features through a model runtime (Predict), with standard
// health checking, server reflection and Prometheus metrics.
//
// The server reads definitions from the registry and swaps in new ones when the project's
// registry revision changes; it reads features from an online.Reader in one call per request;
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
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/serving/auth"
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
)

// ServiceName is the gRPC service name health reports on.
const ServiceName = "quiver.serving.v1.FeatureServing"

// Options configure a Server. Project, Registry and Store are required; every other zero field
// takes the default documented on it.
type Options struct {
	// Project whose definitions are served.
	Project string
	// Registry is where definitions are read from (and polled for new revisions).
	Registry registry.DefinitionReader
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
	// MetricsAddr is the HTTP listen address of /metrics; empty: no metrics endpoint.
	MetricsAddr string
	// TLSCertFile and TLSKeyFile, when both set, make the gRPC server speak TLS.
	TLSCertFile, TLSKeyFile string

	// RefreshInterval is how often the registry revision is polled. Default 10s.
	RefreshInterval time.Duration
	// MaxEntityRows bounds the entity rows of one request. Default 1000.
	MaxEntityRows int
	// MaxRecvMsgBytes and MaxSendMsgBytes bound message sizes. Defaults 4 MiB and 64 MiB.
	MaxRecvMsgBytes, MaxSendMsgBytes int
	// RequestTimeout is the deadline given to requests that come without one. Default 5s.
	RequestTimeout time.Duration
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
	// DisableReflection turns gRPC server reflection off.
	DisableReflection bool
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
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
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
	defs    definitionsHolder
	models  *modelCache
	grpc    *grpc.Server
	health  *health.Server
}

// NewServer checks opts, loads the project's definitions from the registry (failing when it
// cannot) and builds the gRPC server. Nothing listens until Run or Serve.
func NewServer(ctx context.Context, opts Options) (*Server, error) {
	switch {
	case opts.Project == "":
		return nil, errors.New("serving: a project is required")
	case opts.Registry == nil:
		return nil, errors.New("serving: a registry is required")
	case opts.Store == nil:
		return nil, errors.New("serving: an online store is required")
	}
	opts = opts.withDefaults()
	if opts.Auth == nil && !opts.AllowUnauthenticated {
		if err := auth.CheckBind(opts.Addr); err != nil {
			return nil, err
		}
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("serving: register metrics: %w", err)
	}
	s := &Server{opts: opts, log: opts.Logger, metrics: m}
	s.models = newModelCache(opts.Models, s.log)
	if err := refreshOnce(ctx, &s.defs, opts.Registry, opts.Project, s.log, m, nil); err != nil {
		return nil, fmt.Errorf("serving: %w", err)
	}

	unary := []grpc.UnaryServerInterceptor{s.recoverInterceptor, s.deadlineInterceptor}
	sopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(opts.MaxRecvMsgBytes),
		grpc.MaxSendMsgSize(opts.MaxSendMsgBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	if opts.Auth != nil {
		unary = append(unary, opts.Auth.UnaryServerInterceptor())
		sopts = append(sopts, grpc.ChainStreamInterceptor(opts.Auth.StreamServerInterceptor()))
	}
	sopts = append(sopts, grpc.ChainUnaryInterceptor(unary...))
	if opts.TLS != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	} else if opts.TLSCertFile != "" || opts.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.TLSCertFile, opts.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("serving: load TLS key pair: %w", err)
		}
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	}
	s.grpc = grpc.NewServer(sopts...)
	pb.RegisterFeatureServingServer(s.grpc, s)
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

// Refresh reloads the definitions now if the registry revision changed.
func (s *Server) Refresh(ctx context.Context) error {
	return refreshOnce(ctx, &s.defs, s.opts.Registry, s.opts.Project, s.log, s.metrics, s.models.onSwap(ctx, s.opts.ModelResolver))
}

// MetricsHandler serves the Gatherer's metrics in the Prometheus text format.
func (s *Server) MetricsHandler() http.Handler {
	if s.opts.Gatherer == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)})
}

// Run listens on opts.Addr (and opts.MetricsAddr) and serves until ctx is done, then shuts
// down gracefully: health turns NOT_SERVING, new calls are refused, and in-flight calls get
// up to ShutdownTimeout to finish.
func (s *Server) Run(ctx context.Context) error {
	lis, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("serving: listen on %s: %w", s.opts.Addr, err)
	}
	return s.Serve(ctx, lis)
}

// Serve is Run on a listener the caller made (a bufconn listener in tests). It closes lis.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer s.models.closeAll()

	wg.Go(func() {
		refreshLoop(ctx, &s.defs, s.opts.Registry, s.opts.Project, s.opts.RefreshInterval, s.log, s.metrics, s.models.onSwap(ctx, s.opts.ModelResolver))
	})

	errc := make(chan error, 2)
	var httpSrv *http.Server
	if s.opts.MetricsAddr != "" {
		mlis, err := net.Listen("tcp", s.opts.MetricsAddr)
		if err != nil {
			_ = lis.Close()
			return fmt.Errorf("serving: listen for metrics on %s: %w", s.opts.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", s.MetricsHandler())
		httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		s.log.Info("serving metrics", "addr", mlis.Addr().String())
		wg.Go(func() {
			if err := httpSrv.Serve(mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serving: metrics server: %w", err)
			}
		})
	}
	s.log.Info("serving gRPC", "addr", lis.Addr().String(), "project", s.opts.Project, "tls", s.opts.TLS != nil || s.opts.TLSCertFile != "", "auth", s.opts.Auth != nil)
	wg.Go(func() {
		if err := s.grpc.Serve(lis); err != nil {
			errc <- fmt.Errorf("serving: gRPC server: %w", err)
		}
	})

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	s.shutdown(httpSrv)
	return runErr
}

func (s *Server) shutdown(httpSrv *http.Server) {
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
	if httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(sctx)
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

// GetOnlineFeatures implements pb.FeatureServingServer.
func (s *Server) GetOnlineFeatures(ctx context.Context, req *pb.GetOnlineFeaturesRequest) (*pb.GetOnlineFeaturesResponse, error) {
	start := time.Now()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	resp, label, err := s.getOnlineFeatures(ctx, req)
	if err := s.finish(ctx, "GetOnlineFeatures", label, start, err); err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *Server) getOnlineFeatures(ctx context.Context, req *pb.GetOnlineFeaturesRequest) (*pb.GetOnlineFeaturesResponse, string, error) {
	label := "unknown"
	d, err := s.defs.get()
	if err != nil {
		return nil, label, err
	}
	var p *readPlan
	if service := req.GetFeatureService(); service != "" {
		if p, err = servicePlan(d, service, req.GetFullFeatureNames()); err != nil {
			return nil, label, err
		}
		label = service
	} else {
		features, err := resolveFeatures(d, "", req.GetFeatures().GetVal())
		if err != nil {
			return nil, label, err
		}
		label = "_features"
		if p, err = planRead(d, features, req.GetFullFeatureNames()); err != nil {
			return nil, label, err
		}
	}
	ents, err := checkEntities(d, req.GetEntities(), s.opts.MaxEntityRows)
	if err != nil {
		return nil, label, err
	}
	s.metrics.entityRows.WithLabelValues("GetOnlineFeatures").Observe(float64(ents.rows))
	if err := fillKeys(p, ents); err != nil {
		return nil, label, err
	}
	res, err := s.read(ctx, p)
	if err != nil {
		return nil, label, err
	}
	return &pb.GetOnlineFeaturesResponse{
		Rows:     int32(res.Rows),
		Entities: req.GetEntities(),
		Features: featureColumns(p, res),
	}, label, nil
}
