package serving

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime/debug"
	"strings"
	"unicode"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// The HTTP/JSON API: the same FeatureServing API as gRPC, generated from the same .proto by
// grpc-gateway (bindings in proto/quiver/serving/v1/serving_http.yaml). Requests are served
// in process by the gRPC handlers (no second hop), so both transports answer alike:
//
//	POST /v1/get-online-features   body: GetOnlineFeaturesRequest  → GetOnlineFeaturesResponse
//	POST /v1/predict               body: PredictRequest            → PredictResponse
//	POST /v1/push-features         body: PushFeaturesRequest       → PushFeaturesResponse
//	POST /v1/online-features       plain JSON in and out (http_plain.go)
//	GET  /healthz                  200 {"status":"SERVING"}, 503 otherwise
//
// Bodies are protobuf's JSON mapping with the .proto's snake_case field names (camelCase is
// accepted on input). Errors carry the HTTP status of their gRPC code (httpStatus, beside
// statusOf) and a JSON body {"code": "INVALID_ARGUMENT", "message": "..."}.

// HTTPHandler serves the HTTP/JSON API. Serve mounts it on Options.HTTPAddr; it can also be
// mounted on a caller's own server.
func (s *Server) HTTPHandler() http.Handler {
	endpoints := strings.Join(httpEndpoints(), ", ")
	gw := runtime.NewServeMux(
		// GetOnlineFeatures' answer is written by hand (http_typed.go), the rest by protojson.
		runtime.WithMarshalerOption(runtime.MIMEWildcard, gatewayMarshaler{&runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{},
		}}),
		runtime.WithErrorHandler(s.httpError),
		runtime.WithRoutingErrorHandler(func(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
			msg := http.StatusText(code)
			switch code {
			case http.StatusNotFound:
				msg = "no such endpoint " + r.URL.Path + "; endpoints: " + endpoints
			case http.StatusMethodNotAllowed:
				msg = r.Method + " is not allowed on " + r.URL.Path + "; use POST"
			}
			writeHTTPError(w, code, codeOfHTTP(code), msg)
		}),
	)
	// RegisterFeatureServingHandlerServer only fails on a nil argument.
	// With authentication, every call is authorized by the same policy as over gRPC: the
	// middleware authenticates (health stays open), the wrapper authorizes the decoded request.
	var impl pb.FeatureServingServer = s
	if s.opts.Auth != nil {
		impl = s.opts.Auth.FeatureServing(s)
	}
	_ = pb.RegisterFeatureServingHandlerServer(context.Background(), gw, impl)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+healthPath, s.httpHealth)
	mux.HandleFunc("POST "+plainPath, s.httpOnlineFeatures) // plain JSON (http_plain.go)
	mux.Handle("/", gw)
	h := s.httpCall(mux)
	if s.opts.Auth != nil {
		h = s.opts.Auth.HTTPMiddleware(h)
	}
	return h
}

// healthPath is the HTTP health endpoint, open without credentials (auth.Options.OpenHTTPPaths).
const healthPath = "/healthz"

// httpEndpoints lists the HTTP/JSON API's endpoints, as "METHOD /path", for the 404 answer.
// It is derived from what RegisterFeatureServingHandlerServer registers — one POST route per
// method of the FeatureServing service, at /v1/ and the method's name in kebab case
// (serving_http.yaml's rule) — plus health, so a new method cannot be left out;
// TestHTTPUnknownPathListsEveryEndpoint checks every one listed is routed.
func httpEndpoints() []string {
	var out []string
	for _, m := range pb.FeatureServing_ServiceDesc.Methods {
		var path strings.Builder
		for i, r := range m.MethodName {
			if unicode.IsUpper(r) {
				if i > 0 {
					path.WriteByte('-')
				}
				r = unicode.ToLower(r)
			}
			path.WriteRune(r)
		}
		out = append(out, "POST /v1/"+path.String())
	}
	return append(out, "POST "+plainPath, "GET "+healthPath)
}

// httpCall is what the gRPC interceptors do for gRPC calls: a deadline for requests without
// one, and a panic turned into a 500 instead of a dead server.
func (s *Server) httpCall(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(p)
				}
				s.log.Error("panic in HTTP handler", "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				writeHTTPError(w, http.StatusInternalServerError, codes.Internal, "internal error")
			}
		}()
		// One size limit for both transports: the gRPC message limit.
		limit := s.opts.MaxRecvMsgBytes
		if r.ContentLength > int64(limit) {
			writeHTTPError(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, bodyTooLarge(r.ContentLength, limit))
			return
		}
		body := newBodyLimit(w, r.Body, limit)
		r.Body = body
		ctx := r.Context()
		if _, ok := ctx.Deadline(); !ok && r.Header.Get("Grpc-Timeout") == "" {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.opts.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		// The deadline holds while the body is read, too: a client that stalls in its body
		// gets 504 at the deadline (httpError), not a handler that waits for it.
		if d, ok := ctx.Deadline(); ok {
			_ = http.NewResponseController(w).SetReadDeadline(d)
		}
		n := r.ContentLength
		if n < 0 { // chunked
			var err error
			if n, err = body.sizeUnknown(limit); err != nil {
				s.httpError(ctx, nil, nil, w, r, invalidf("read the request body: %v", err))
				return
			}
		}
		if n >= largeRequestBytes {
			release, err := s.gate.admit(ctx, n)
			if err != nil {
				st, _ := statusOf(ctx, err)
				writeHTTPError(w, httpStatus(st.Code()), st.Code(), st.Message())
				return
			}
			defer release()
			if h := s.hooks.admitted; h != nil {
				h(n)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// httpError writes a handler's (or the gateway's) error with the HTTP status of its code. A
// body cut at the size limit is 413 RESOURCE_EXHAUSTED, and any error once the request's
// deadline passed (a body still unread, say) is 504 DEADLINE_EXCEEDED, whatever the decoder
// made of them.
func (s *Server) httpError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if b, ok := r.Body.(*bodyLimit); ok && b.exceeded {
		writeHTTPError(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, bodyTooLarge(r.ContentLength, s.opts.MaxRecvMsgBytes))
		return
	}
	st, _ := statusOf(ctx, err)
	if st.Code() != codes.DeadlineExceeded && deadlinePassed(ctx) {
		st = status.New(codes.DeadlineExceeded, "the request's deadline passed before it was answered: "+st.Message())
	}
	writeHTTPError(w, httpStatus(st.Code()), st.Code(), st.Message())
}

func writeHTTPError(w http.ResponseWriter, status int, code codes.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{codeName(code), msg})
}

func (s *Server) httpHealth(w http.ResponseWriter, r *http.Request) {
	resp, err := s.health.Check(r.Context(), &healthpb.HealthCheckRequest{})
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if err == nil {
		st = resp.GetStatus()
	}
	code := http.StatusOK
	if st != healthpb.HealthCheckResponse_SERVING {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": st.String()})
}
