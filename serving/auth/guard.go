package auth

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// Full gRPC method names of the FeatureServing service (connect-go uses the same paths).
const (
	MethodGetOnlineFeatures = "/quiver.serving.v1.FeatureServing/GetOnlineFeatures"
	MethodPredict           = "/quiver.serving.v1.FeatureServing/Predict"
	MethodPushFeatures      = "/quiver.serving.v1.FeatureServing/PushFeatures"
)

// ResourcesFunc lists the resources a call to fullMethod with request req reads, in the
// served project.
type ResourcesFunc func(project, fullMethod string, req any) []Resource

// Options configure a Guard. Project is required; zero fields take the defaults noted.
type Options struct {
	// Project is the served project: unqualified names in the policy belong to it.
	Project string
	// Logger receives one structured line per denied call. Default: discard.
	Logger *slog.Logger
	// Registerer receives quiver_serving_auth_denials_total. Default: a private registry.
	Registerer prometheus.Registerer
	// HTTPClient fetches a jwks_url. Default: a client with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock tokens are checked against. Default time.Now.
	Now func() time.Time
	// Resources maps a call to what it reads. Default ServingResources.
	Resources ResourcesFunc
	// OpenHTTPPaths are HTTP paths served without credentials. Default: the health paths
	// (/healthz, /readyz, /livez and /grpc.health.v1.Health/*).
	OpenHTTPPaths []string
	// HandlerAuthorized are gRPC method prefixes ("/pkg.Service/") whose handlers authorize
	// every call themselves, with Authorize or AuthorizeResources, once they know what it
	// reads (a Flight ticket names its dataset only inside its opaque bytes): the interceptors
	// authenticate those calls and put the principal in the context, nothing more. Default:
	// none.
	HandlerAuthorized []string
}

// Guard authenticates and authorizes calls. It is safe for concurrent use.
type Guard struct {
	project   string
	log       *slog.Logger
	resources ResourcesFunc
	openHTTP  []string
	// byHandler: method prefixes whose handlers authorize (Options.HandlerAuthorized).
	byHandler []string
	policy    *compiledPolicy // nil: every authenticated caller may read everything
	jwt       *jwtVerifier
	tokens    map[[32]byte]*Principal
	certs     bool
	denials   *prometheus.CounterVec
}

// New builds a Guard from cfg, which must have authentication configured
// (cfg.AuthEnabled). It reads the JWKS file or URL now: an unreadable or invalid key set is
// an error naming it.
func New(ctx context.Context, cfg *Config, opts Options) (*Guard, error) {
	if !cfg.UIAuthEnabled() {
		return nil, configErrorf("no authentication method is configured (tls.client_ca, jwt or api_tokens)")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Project == "" {
		return nil, errors.New("auth: a project is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Resources == nil {
		opts.Resources = ServingResources
	}
	if opts.OpenHTTPPaths == nil {
		opts.OpenHTTPPaths = []string{"/healthz", "/readyz", "/livez", "/grpc.health.v1.Health/"}
	}
	g := &Guard{
		project:   opts.Project,
		log:       opts.Logger,
		resources: opts.Resources,
		openHTTP:  opts.OpenHTTPPaths,
		byHandler: opts.HandlerAuthorized,
		certs:     cfg.TLS.ClientCAFile != "",
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "quiver", Subsystem: "serving", Name: "auth_denials_total",
			Help: "Calls refused by authentication (code Unauthenticated) or the policy (PermissionDenied), by method and reason.",
		}, []string{"method", "code", "reason"}),
	}
	if cfg.Policy != nil {
		g.policy = compilePolicy(cfg.Policy, opts.Project)
	}
	if len(cfg.APITokens) > 0 {
		g.tokens = make(map[[32]byte]*Principal, len(cfg.APITokens))
		for _, t := range cfg.APITokens {
			p := &Principal{Token: t.Name}
			p.ids = p.buildIDs()
			g.tokens[t.SHA256] = p
		}
	}
	if cfg.JWT != nil {
		v, err := newJWTVerifier(ctx, *cfg.JWT, opts.HTTPClient, opts.Now, opts.Logger)
		if err != nil {
			return nil, err
		}
		g.jwt = v
	}
	if err := opts.Registerer.Register(g.denials); err != nil {
		return nil, fmt.Errorf("auth: register metrics: %w", err)
	}
	if cfg.AuthEnabled() && !cfg.TLSEnabled() {
		opts.Logger.Warn("bearer tokens are accepted over plaintext: configure serving.tls so they cannot be read on the wire")
	}
	if g.policy == nil {
		opts.Logger.Warn("no policy configured: every authenticated caller may read every feature and model of the project")
	}
	return g, nil
}

// Authenticate turns a call's credentials into a principal: the verified client
// certificate in state (nil without TLS), and the authorization header values (at most
// one, "Bearer TOKEN"). Bad credentials are an error even when others are good.
func (g *Guard) Authenticate(ctx context.Context, state *tls.ConnectionState, authorization []string) (*Principal, error) {
	var cp *Principal
	if g.certs {
		cp = certPrincipal(state)
	}
	switch len(authorization) {
	case 0:
		if cp != nil {
			return cp, nil
		}
		hint := "send the header authorization: Bearer TOKEN"
		if g.certs {
			hint += " or a client certificate"
		}
		return nil, unauthenticated(reasonNoCredentials, "no credentials: %s", hint)
	case 1:
	default:
		return nil, unauthenticated(reasonInvalid, "more than one authorization header")
	}
	scheme, token, ok := strings.Cut(authorization[0], " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, unauthenticated(reasonInvalid, "the authorization header must be \"Bearer TOKEN\"")
	}
	tp, err := g.verifyToken(ctx, token)
	if err != nil {
		return nil, err
	}
	return cp.merge(tp), nil
}

func (g *Guard) verifyToken(ctx context.Context, token string) (*Principal, error) {
	if g.tokens != nil {
		// A map lookup by hash: timing can only reveal the hash, never the token.
		if p, ok := g.tokens[hashToken(token)]; ok {
			return p, nil
		}
	}
	if g.jwt != nil {
		return g.jwt.verify(ctx, token)
	}
	if g.tokens != nil {
		return nil, unauthenticated(reasonInvalid, "unknown API token")
	}
	return nil, unauthenticated(reasonInvalid, "this server accepts client certificates, not bearer tokens")
}

// hashToken is the SHA-256 of token, without copying a JWT-sized token to the heap.
func hashToken(token string) [32]byte {
	var buf [1024]byte
	if len(token) <= len(buf) {
		return sha256.Sum256(append(buf[:0], token...))
	}
	return sha256.Sum256([]byte(token))
}

// check authorizes p for a call to fullMethod with req.
func (g *Guard) check(p *Principal, fullMethod string, req any) error {
	if g.policy == nil {
		return nil
	}
	return g.policy.check(p, g.resources(g.project, fullMethod, req))
}

// Authorize checks the principal in ctx (put there by an interceptor or HTTPMiddleware)
// against the policy for a call to fullMethod with request req. A denial is logged and
// counted; the error matches ErrPermissionDenied (or ErrUnauthenticated when ctx has no
// principal). HTTP adapters call it once they have decoded the request.
func (g *Guard) Authorize(ctx context.Context, fullMethod string, req any) error {
	p := FromContext(ctx)
	if p == nil {
		err := unauthenticated(reasonNoCredentials, "no authenticated principal")
		g.record(ctx, fullMethod, "", nil, err)
		return err
	}
	if err := g.check(p, fullMethod, req); err != nil {
		g.record(ctx, fullMethod, "", p, err)
		return err
	}
	return nil
}

// AuthorizeReads checks the principal in ctx (as Authorize does) for resources a call reads
// through something it asked for and was authorized for: the stored feature views an on-demand
// view's expressions read, which a grant on the on-demand view does not cover. via names what
// reads them, for the message (`on-demand view "cart_features"`). A denial is logged and
// counted; the error matches ErrPermissionDenied and names the first resource not granted.
func (g *Guard) AuthorizeReads(ctx context.Context, fullMethod, via string, rs ...Resource) error {
	if g.policy == nil || len(rs) == 0 {
		return nil
	}
	p := FromContext(ctx)
	if p == nil {
		err := unauthenticated(reasonNoCredentials, "no authenticated principal")
		g.record(ctx, fullMethod, "", nil, err)
		return err
	}
	if err := g.policy.check(p, rs); err != nil {
		var de *DeniedError
		if errors.As(err, &de) {
			de.Via = via
		}
		g.record(ctx, fullMethod, "", p, err)
		return err
	}
	return nil
}

// AuthorizeResources checks the principal in ctx (as Authorize does) for the resources a
// call reads or writes, for handlers that authorize their own calls
// (Options.HandlerAuthorized). A denial is logged and counted; the error matches
// ErrPermissionDenied and names the first resource not granted, or ErrUnauthenticated when ctx
// has no principal.
func (g *Guard) AuthorizeResources(ctx context.Context, fullMethod string, rs ...Resource) error {
	p := FromContext(ctx)
	if p == nil {
		err := unauthenticated(reasonNoCredentials, "no authenticated principal")
		g.record(ctx, fullMethod, "", nil, err)
		return err
	}
	if g.policy == nil {
		return nil
	}
	if err := g.policy.check(p, rs); err != nil {
		g.record(ctx, fullMethod, "", p, err)
		return err
	}
	return nil
}

// handlerAuthorizes reports whether fullMethod's handler authorizes its calls itself.
func (g *Guard) handlerAuthorizes(fullMethod string) bool {
	for _, prefix := range g.byHandler {
		if strings.HasPrefix(fullMethod, prefix) {
			return true
		}
	}
	return false
}

// record logs and counts a refused call.
func (g *Guard) record(ctx context.Context, method, peerAddr string, p *Principal, err error) {
	code, reason := codes.Unauthenticated, reasonInvalid
	attrs := []slog.Attr{slog.String("method", method)}
	var ae *authError
	var de *DeniedError
	switch {
	case errors.As(err, &de):
		code, reason = codes.PermissionDenied, reasonNotGranted
		attrs = append(attrs, slog.String("resource", de.Resource.String()))
	case errors.As(err, &ae):
		reason = ae.reason
	}
	if p != nil {
		attrs = append(attrs, slog.String("principal", p.String()))
	}
	if peerAddr == "" {
		if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
			peerAddr = pr.Addr.String()
		}
	}
	if peerAddr != "" {
		attrs = append(attrs, slog.String("peer", peerAddr))
	}
	attrs = append(attrs, slog.String("code", code.String()), slog.String("reason", reason), slog.String("err", err.Error()))
	g.denials.WithLabelValues(method, code.String(), reason).Inc()
	g.log.LogAttrs(ctx, slog.LevelWarn, "request denied", attrs...)
}

// GRPCError converts an authentication or authorization error to its gRPC status error.
func GRPCError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, err.Error())
	}
	return status.Error(codes.Internal, "internal error")
}

// HTTPStatus is the HTTP status of an authentication or authorization error: 401 or 403.
func HTTPStatus(err error) int {
	switch {
	case errors.Is(err, ErrPermissionDenied):
		return http.StatusForbidden
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// openMethod: health checks need no credentials.
func openMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/")
}

// authOnlyMethod: reflection needs credentials but no grant (it describes the API, not the
// project's data).
func authOnlyMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

func (g *Guard) authenticateGRPC(ctx context.Context) (*Principal, error) {
	var state *tls.ConnectionState
	if pr, ok := peer.FromContext(ctx); ok {
		if info, ok := pr.AuthInfo.(credentials.TLSInfo); ok {
			state = &info.State
		}
	}
	return g.Authenticate(ctx, state, metadata.ValueFromIncomingContext(ctx, "authorization"))
}

// UnaryServerInterceptor authenticates every call but health checks, authorizes it against
// the policy with the request, and passes the principal on in the context (FromContext).
func (g *Guard) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if openMethod(info.FullMethod) {
			return handler(ctx, req)
		}
		p, err := g.authenticateGRPC(ctx)
		if err == nil && !authOnlyMethod(info.FullMethod) && !g.handlerAuthorizes(info.FullMethod) {
			err = g.check(p, info.FullMethod, req)
		}
		if err != nil {
			g.record(ctx, info.FullMethod, "", p, err)
			return nil, GRPCError(err)
		}
		return handler(WithPrincipal(ctx, p), req)
	}
}

// StreamServerInterceptor authenticates every stream but health watches when it opens, and
// authorizes each message the client sends on it.
func (g *Guard) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if openMethod(info.FullMethod) {
			return handler(srv, ss)
		}
		p, err := g.authenticateGRPC(ss.Context())
		if err != nil {
			g.record(ss.Context(), info.FullMethod, "", nil, err)
			return GRPCError(err)
		}
		return handler(srv, &guardedStream{ServerStream: ss, ctx: WithPrincipal(ss.Context(), p), g: g, p: p, method: info.FullMethod})
	}
}

type guardedStream struct {
	grpc.ServerStream
	ctx    context.Context
	g      *Guard
	p      *Principal
	method string
}

func (s *guardedStream) Context() context.Context { return s.ctx }

func (s *guardedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if authOnlyMethod(s.method) || s.g.handlerAuthorizes(s.method) {
		return nil
	}
	if err := s.g.check(s.p, s.method, m); err != nil {
		s.g.record(s.ctx, s.method, "", s.p, err)
		return GRPCError(err)
	}
	return nil
}

// HTTPMiddleware authenticates every request but those to OpenHTTPPaths, answering 401 with
// a JSON error when credentials are missing or bad, and passes the principal on in the
// request's context. Authorization needs the decoded request: the HTTP adapter calls
// Authorize (or serves FeatureServing(srv), which does) and writes a failure with
// WriteHTTPError.
func (g *Guard) HTTPMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, open := range g.openHTTP {
			if r.URL.Path == open || (strings.HasSuffix(open, "/") && strings.HasPrefix(r.URL.Path, open)) {
				next.ServeHTTP(w, r)
				return
			}
		}
		p, err := g.Authenticate(r.Context(), r.TLS, r.Header.Values("Authorization"))
		if err != nil {
			g.record(r.Context(), "HTTP", r.RemoteAddr, nil, err)
			WriteHTTPError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// WriteHTTPError writes err as an HTTP error: status 401 (with WWW-Authenticate) or 403,
// and a JSON body {"code": "unauthenticated"|"permission_denied", "message": ...}.
func WriteHTTPError(w http.ResponseWriter, err error) {
	st := HTTPStatus(err)
	code := "internal"
	switch st {
	case http.StatusUnauthorized:
		code = "unauthenticated"
		w.Header().Set("WWW-Authenticate", `Bearer realm="quiver"`)
	case http.StatusForbidden:
		code = "permission_denied"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(st)
	msg := err.Error()
	if st == http.StatusInternalServerError {
		msg = "internal error"
	}
	fmt.Fprintf(w, "{\"code\":%q,\"message\":%q}\n", code, msg)
}

// FeatureServing wraps srv so that each call is authorized (Authorize) before srv handles
// it: for transports that call the server directly rather than through gRPC interceptors
// (an in-process HTTP gateway). The context must carry the principal (HTTPMiddleware).
// Methods the wrapper does not know answer UNIMPLEMENTED, so a new method is never served
// unguarded.
func (g *Guard) FeatureServing(srv pb.FeatureServingServer) pb.FeatureServingServer {
	return &guardedServer{srv: srv, g: g}
}

type guardedServer struct {
	pb.UnimplementedFeatureServingServer
	srv pb.FeatureServingServer
	g   *Guard
}

func (s *guardedServer) GetOnlineFeatures(ctx context.Context, req *pb.GetOnlineFeaturesRequest) (*pb.GetOnlineFeaturesResponse, error) {
	if err := s.g.Authorize(ctx, MethodGetOnlineFeatures, req); err != nil {
		return nil, GRPCError(err)
	}
	return s.srv.GetOnlineFeatures(ctx, req)
}

func (s *guardedServer) Predict(ctx context.Context, req *pb.PredictRequest) (*pb.PredictResponse, error) {
	if err := s.g.Authorize(ctx, MethodPredict, req); err != nil {
		return nil, GRPCError(err)
	}
	return s.srv.Predict(ctx, req)
}

func (s *guardedServer) PushFeatures(ctx context.Context, req *pb.PushFeaturesRequest) (*pb.PushFeaturesResponse, error) {
	if err := s.g.Authorize(ctx, MethodPushFeatures, req); err != nil {
		return nil, GRPCError(err)
	}
	return s.srv.PushFeatures(ctx, req)
}

// ServingResources is the default ResourcesFunc: a GetOnlineFeatures call reads its feature
// service, or each feature view its references name; a Predict call reads its model (and,
// through it, the features it is fed). Any other call needs the whole project.
func ServingResources(project, _ string, req any) []Resource {
	switch r := req.(type) {
	case *pb.GetOnlineFeaturesRequest:
		if s := r.GetFeatureService(); s != "" {
			return []Resource{{Kind: KindFeatureService, Project: project, Name: s}}
		}
		refs := r.GetFeatures().GetVal()
		out := make([]Resource, 0, len(refs))
	refs:
		for _, ref := range refs {
			view, _, _ := strings.Cut(ref, ":")
			for _, seen := range out {
				if seen.Name == view {
					continue refs
				}
			}
			out = append(out, Resource{Kind: KindFeatureView, Project: project, Name: view})
		}
		return out
	case *pb.PredictRequest:
		return []Resource{{Kind: KindModel, Project: project, Name: r.GetModel().GetName()}}
	case *pb.PushFeaturesRequest:
		return []Resource{{Kind: KindPushView, Project: project, Name: r.GetFeatureView()}}
	}
	return []Resource{{Kind: KindProject, Project: project}}
}
