package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/internal/testenv"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving/auth/authtest"
	"github.com/quiverfs/quiver/serving/model/onnx/onnxtest"
)

const (
	testIssuer   = "https://idp.quiver.test/"
	testAudience = "quiver-serving"
)

// authRepo is a feature repo with two feature services over materialized rows (user 1
// fresh), a model, and the key material of a CA, a foreign CA and two JWT signers.
type authRepo struct {
	dir      string
	env      map[string]string
	ca, evil *authtest.CA
	fileKey  *authtest.Signer // published in jwks.json
	urlKey   *authtest.Signer // published by the httptest JWKS server
	jwksURL  string
	onnx     bool // a runnable model is installed (QUIVER_ONNXRUNTIME_LIB is set)
}

func newAuthRepo(t *testing.T) *authRepo {
	r := &authRepo{dir: filepath.Join(t.TempDir(), "shop"), env: map[string]string{}}
	require.Equal(t, exitOK, quiver(t, nil, "init", r.dir, "--project", "shop").code)
	now := time.Now().UTC().Truncate(time.Second)
	writeActivity(t, filepath.Join(r.dir, "data", "user_activity.parquet"), now)
	writeFile(t, filepath.Join(r.dir, "features", "profile.yaml"), "feature_services:\n  - name: profile_v1\n    features: [user_stats:clicks_7d]\n")
	if lib := os.Getenv("QUIVER_ONNXRUNTIME_LIB"); lib != "" {
		r.env["QUIVER_ONNXRUNTIME_LIB"], r.onnx = lib, true
		writeFileBytes(t, filepath.Join(r.dir, "models", "churn.onnx"), onnxtest.NewMLP(3, 4, 11).Model())
		churn := filepath.Join(r.dir, "features", "churn.yaml")
		b, err := os.ReadFile(churn)
		require.NoError(t, err)
		writeFile(t, churn, strings.Replace(string(b), "    runtime: onnx\n", "    runtime: onnx\n    path: models/churn.onnx\n", 1))
	}
	res := quiver(t, r.env, "-C", r.dir, "apply")
	require.Equal(t, exitOK, res.code, res.stderr)
	res = quiver(t, r.env, "-C", r.dir, "materialize", "--start", now.Add(-30*24*time.Hour).Format(time.RFC3339), "--end", now.Add(time.Minute).Format(time.RFC3339))
	require.Equal(t, exitOK, res.code, res.stderr)

	r.ca, r.evil = authtest.NewCA(t, "quiver-ca"), authtest.NewCA(t, "evil-ca")
	tlsDir := filepath.Join(r.dir, "tls")
	r.ca.Server(t).Write(t, tlsDir, "server")
	authtest.WriteFile(t, filepath.Join(tlsDir, "ca.pem"), r.ca.PEM)
	r.fileKey, r.urlKey = authtest.NewEC(t, "file-ec"), authtest.NewRSA(t, "url-rsa")
	authtest.WriteFile(t, filepath.Join(r.dir, "jwks.json"), authtest.JWKS(t, r.fileKey))
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(authtest.JWKS(t, r.urlKey))
	}))
	t.Cleanup(jwks.Close)
	r.jwksURL = jwks.URL + "/.well-known/jwks.json"
	writeFile(t, filepath.Join(r.dir, "policy.yaml"), `grants:
  - principals: [subject:svc-a]
    feature_services: [churn_v1]
  - principals: ["cert:CN=scorer,O=Quiver tests"]
    models: [churn]
  - principals: [token:nightly]
    feature_views: [user_stats]
  - principals: [group:ml]
    models: [churn]
`)
	return r
}

func writeFileBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// setServing rewrites quiver.yaml with the given serving: section.
func (r *authRepo) setServing(t *testing.T, section string) {
	path := filepath.Join(r.dir, "quiver.yaml")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	base, _, _ := strings.Cut(string(b), "\nserving:\n")
	writeFile(t, path, strings.TrimRight(base, "\n")+"\nserving:\n"+section)
}

func (r *authRepo) token(t *testing.T, s *authtest.Signer, sub string, mod func(*authtest.Claims)) string {
	c := authtest.Claims{Issuer: testIssuer, Subject: sub, Audience: []string{testAudience}, Expiry: time.Now().Add(time.Hour), IssuedAt: time.Now()}
	if mod != nil {
		mod(&c)
	}
	return s.Token(t, c)
}

// servingProc is a quiver serve running in-process on TCP, as the binary runs it.
type servingProc struct {
	addr, metrics string
	cancel        context.CancelFunc
	done          chan result
	once          sync.Once
	res           result
}

func (p *servingProc) stop(t *testing.T) result {
	p.once.Do(func() {
		p.cancel()
		p.res = <-p.done
	})
	return p.res
}

func startAuthServe(t *testing.T, r *authRepo, args ...string) *servingProc {
	return startServeOn(t, r, "127.0.0.1", args...)
}

// startServeOn is startAuthServe listening on host (clients still dial 127.0.0.1).
func startServeOn(t *testing.T, r *authRepo, host string, args ...string) *servingProc {
	port, err := testenv.FreePort()
	require.NoError(t, err)
	mport, err := testenv.FreePort()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	p := &servingProc{addr: "127.0.0.1:" + strconv.Itoa(port), metrics: "127.0.0.1:" + strconv.Itoa(mport), cancel: cancel, done: make(chan result, 1)}
	go func() {
		var out, errOut strings.Builder
		listen := host + ":" + strconv.Itoa(port)
		code := run(ctx, append([]string{"-C", r.dir, "serve", "--addr", listen, "--metrics-addr", p.metrics}, args...), &out, &errOut, func(k string) string { return r.env[k] })
		p.done <- result{code: code, stdout: out.String(), stderr: errOut.String()}
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// dial connects to p with TLS (trusting the repo's CA) and the client certificate given, or
// in plaintext when tlsOn is false; it waits until health answers SERVING, which needs no
// credentials.
func dial(t *testing.T, p *servingProc, r *authRepo, tlsOn bool, cert *tls.Certificate) *grpc.ClientConn {
	creds := insecure.NewCredentials()
	if tlsOn {
		cfg := &tls.Config{RootCAs: r.ca.Pool(), MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func waitHealthy(t *testing.T, p *servingProc, conn *grpc.ClientConn) {
	var exited *result
	require.Eventually(t, func() bool {
		select {
		case res := <-p.done:
			p.done <- res
			exited = &res
			return true
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && h.Status == healthpb.HealthCheckResponse_SERVING
	}, 20*time.Second, 20*time.Millisecond)
	if exited != nil {
		t.Fatalf("quiver serve exited %d: %s", exited.code, exited.stderr)
	}
}

func withToken(tok string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
}

func userEntities() map[string]*pb.RepeatedValue {
	return map[string]*pb.RepeatedValue{"user_id": {Val: []*pb.Value{{Kind: &pb.Value_Int64Val{Int64Val: 1}}}}}
}

func getService(ctx context.Context, c pb.FeatureServingClient, service string) (*pb.GetOnlineFeaturesResponse, error) {
	return c.GetOnlineFeatures(ctx, &pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: service}, Entities: userEntities()})
}

func requireCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	require.Equal(t, code, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), msg)
}

// TestServeAuthMatrix is issue 12's authentication acceptance through quiver serve on TCP,
// with TLS, mTLS (verify_if_given), JWTs from a JWKS file, an API token and a policy file.
func TestServeAuthMatrix(t *testing.T) {
	r := newAuthRepo(t)
	r.setServing(t, fmt.Sprintf(`  tls: { cert: tls/server.pem, key: tls/server-key.pem, client_ca: tls/ca.pem, client_auth: verify_if_given }
  jwt: { jwks_file: jwks.json, issuer: %q, audience: %q }
  api_tokens:
    - { name: nightly, sha256: %s }
  policy_file: policy.yaml
`, testIssuer, testAudience, authtest.SHA256("nightly-secret")))
	p := startAuthServe(t, r)
	conn := dial(t, p, r, true, nil)
	waitHealthy(t, p, conn)
	c := pb.NewFeatureServingClient(conn)
	svcA := r.token(t, r.fileKey, "svc-a", nil)

	// No token.
	_, err := getService(context.Background(), c, "churn_v1")
	requireCode(t, err, codes.Unauthenticated, "no credentials")

	// A valid JWT for service A: A's features.
	resp, err := getService(withToken(svcA), c, "churn_v1")
	require.NoError(t, err)
	require.Len(t, resp.Features, 3)
	require.EqualValues(t, 42, resp.Features[0].GetValues().GetInt64Values().GetVal()[0])

	// The same token for service B.
	_, err = getService(withToken(svcA), c, "profile_v1")
	requireCode(t, err, codes.PermissionDenied, `subject:svc-a is not granted feature service "profile_v1" in project "shop"`)
	// ...nor a view by reference, nor a model.
	_, err = c.GetOnlineFeatures(withToken(svcA), &pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: []string{"user_stats:clicks_7d"}}}, Entities: userEntities()})
	requireCode(t, err, codes.PermissionDenied, `feature view "user_stats"`)
	_, err = c.Predict(withToken(svcA), &pb.PredictRequest{Model: &pb.ModelRef{Name: "churn"}, Entities: userEntities()})
	requireCode(t, err, codes.PermissionDenied, `model "churn"`)

	// Expired, wrong audience, wrong issuer, signed by the URL's key (not in the file).
	for _, tc := range []struct {
		tok, msg string
	}{
		{r.token(t, r.fileKey, "svc-a", func(c *authtest.Claims) { c.Expiry = time.Now().Add(-time.Hour) }), "token expired at"},
		{r.token(t, r.fileKey, "svc-a", func(c *authtest.Claims) { c.Audience = []string{"billing"} }), "token audience"},
		{r.token(t, r.fileKey, "svc-a", func(c *authtest.Claims) { c.Issuer = "https://other-idp/" }), "token issuer"},
		{r.token(t, r.urlKey, "svc-a", nil), `token key id "url-rsa" is not in the server's key set`},
		{"nightly-secret-but-wrong", "bearer token is not a JWT"},
	} {
		_, err = getService(withToken(tc.tok), c, "churn_v1")
		requireCode(t, err, codes.Unauthenticated, tc.msg)
	}

	// The static API token: granted the user_stats view, by reference.
	resp, err = c.GetOnlineFeatures(withToken("nightly-secret"), &pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: []string{"user_stats:clicks_7d", "user_stats:spend_30d"}}}, Entities: userEntities()})
	require.NoError(t, err)
	require.Len(t, resp.Features, 2)

	// mTLS: a certificate from the CA authenticates by itself (granted the model only); one
	// from another CA is refused in the handshake.
	scorer := r.ca.Client(t, "scorer", "Quiver tests").TLS(t)
	mc := pb.NewFeatureServingClient(dial(t, p, r, true, &scorer))
	_, err = getService(context.Background(), mc, "churn_v1")
	requireCode(t, err, codes.PermissionDenied, `cert:CN=scorer,O=Quiver tests is not granted feature service "churn_v1"`)
	pred, err := mc.Predict(context.Background(), &pb.PredictRequest{Model: &pb.ModelRef{Name: "churn"}, Entities: userEntities()})
	checkGrantedPredict(t, r, pred, err)
	// A JWT whose groups claim is granted the model.
	pred, err = c.Predict(withToken(r.token(t, r.fileKey, "svc-ml", func(c *authtest.Claims) { c.Extra = map[string]any{"groups": []string{"ml"}} })), &pb.PredictRequest{Model: &pb.ModelRef{Name: "churn"}, Entities: userEntities()})
	checkGrantedPredict(t, r, pred, err)

	foreign := r.evil.Client(t, "scorer", "Quiver tests").TLS(t)
	_, err = getService(withToken(svcA), pb.NewFeatureServingClient(dial(t, p, r, true, &foreign)), "churn_v1")
	// The handshake fails: the client reads the server's "bad certificate" alert, or (TLS 1.3,
	// where the client finishes first) a connection the server closed.
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	_, err = getService(withToken(svcA), c, "churn_v1")
	require.NoError(t, err, "the server itself is up")
	_, err = getService(context.Background(), pb.NewFeatureServingClient(dial(t, p, r, false, nil)), "churn_v1")
	require.Equal(t, codes.Unavailable, status.Code(err), "plaintext is refused by a TLS server: %v", err)

	// Reflection needs credentials, but no grant.
	requireReflection(t, context.Background(), conn, codes.Unauthenticated)
	requireReflection(t, withToken(svcA), conn, codes.OK)

	// Every denial is counted in Prometheus and logged.
	metrics := scrape(t, p.metrics)
	require.Contains(t, metrics, `quiver_serving_auth_denials_total{code="PermissionDenied",method="/quiver.serving.v1.FeatureServing/GetOnlineFeatures",reason="not_granted"} 3`)
	require.Contains(t, metrics, `quiver_serving_auth_denials_total{code="PermissionDenied",method="/quiver.serving.v1.FeatureServing/Predict",reason="not_granted"} 1`)
	require.Contains(t, metrics, `quiver_serving_auth_denials_total{code="Unauthenticated",method="/quiver.serving.v1.FeatureServing/GetOnlineFeatures",reason="expired_credentials"} 1`)
	require.Contains(t, metrics, `quiver_serving_auth_denials_total{code="Unauthenticated",method="/quiver.serving.v1.FeatureServing/GetOnlineFeatures",reason="invalid_credentials"} 4`)
	require.Contains(t, metrics, `quiver_serving_auth_denials_total{code="Unauthenticated",method="/quiver.serving.v1.FeatureServing/GetOnlineFeatures",reason="no_credentials"} 1`)

	res := p.stop(t)
	require.Equal(t, exitOK, res.code, res.stderr)
	require.Contains(t, res.stderr, `"msg":"request denied","method":"/quiver.serving.v1.FeatureServing/GetOnlineFeatures","resource":"feature service \"profile_v1\" in project \"shop\"","principal":"subject:svc-a"`)
	require.NotContains(t, res.stderr, svcA, "tokens are never logged")
	require.NotContains(t, res.stderr, "nightly-secret")
}

// checkGrantedPredict: a granted Predict gets past authorization. With ONNX Runtime
// installed it answers; without, it fails in the model runtime, never in auth.
func checkGrantedPredict(t *testing.T, r *authRepo, pred *pb.PredictResponse, err error) {
	t.Helper()
	if r.onnx {
		require.NoError(t, err)
		require.EqualValues(t, 1, pred.Rows)
		return
	}
	require.Error(t, err, "no ONNX Runtime library: the model cannot run")
	require.NotContains(t, []codes.Code{codes.PermissionDenied, codes.Unauthenticated}, status.Code(err), "%v", err)
}

func requireReflection(t *testing.T, ctx context.Context, conn *grpc.ClientConn, want codes.Code) {
	t.Helper()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	// A stream the server refuses may end before the request is sent (io.EOF); Recv says why.
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		require.ErrorIs(t, err, io.EOF)
	}
	resp, err := stream.Recv()
	require.Equal(t, want, status.Code(err), "%v", err)
	if want == codes.OK {
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		require.Contains(t, names, "quiver.serving.v1.FeatureServing")
	}
	_ = stream.CloseSend()
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestServeAuthJWKSURL: keys from a JWKS URL (an httptest server), plaintext on loopback,
// an inline policy, reflection turned off.
func TestServeAuthJWKSURL(t *testing.T) {
	r := newAuthRepo(t)
	r.setServing(t, fmt.Sprintf(`  reflection: false
  jwt: { jwks_url: %q, issuer: %q, audience: [other, %q] }
  policy:
    grants:
      - { principals: [subject:svc-a], feature_services: [churn_v1] }
      - { principals: [subject:svc-od], feature_views: [cart_features] }
      - { principals: [subject:svc-od-in], feature_views: [cart_features, user_stats] }
`, r.jwksURL, testIssuer, testAudience))
	p := startAuthServe(t, r)
	conn := dial(t, p, r, false, nil)
	waitHealthy(t, p, conn)
	c := pb.NewFeatureServingClient(conn)
	svcA := r.token(t, r.urlKey, "svc-a", nil)

	_, err := getService(context.Background(), c, "churn_v1")
	requireCode(t, err, codes.Unauthenticated, "no credentials")
	resp, err := getService(withToken(svcA), c, "churn_v1")
	require.NoError(t, err)
	require.EqualValues(t, 42, resp.Features[0].GetValues().GetInt64Values().GetVal()[0])
	_, err = getService(withToken(svcA), c, "profile_v1")
	requireCode(t, err, codes.PermissionDenied, `feature service "profile_v1"`)
	_, err = getService(withToken(r.token(t, r.urlKey, "svc-a", func(c *authtest.Claims) { c.Expiry = time.Now().Add(-time.Minute) })), c, "churn_v1")
	requireCode(t, err, codes.Unauthenticated, "token expired")
	_, err = getService(withToken(r.token(t, r.fileKey, "svc-a", nil)), c, "churn_v1")
	requireCode(t, err, codes.Unauthenticated, "not in the server's key set")

	requireReflection(t, withToken(svcA), conn, codes.Unimplemented)
	require.Contains(t, scrape(t, p.metrics), `quiver_serving_auth_denials_total{code="PermissionDenied",method="/quiver.serving.v1.FeatureServing/GetOnlineFeatures",reason="not_granted"} 1`)

	// Issue 22 item 2, as seen: a grant on the on-demand view cart_features alone must not
	// read user_stats through it (cart_value=1 gave exactly 1/spend_30d).
	cart := &pb.GetOnlineFeaturesRequest{
		Kind:           &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: []string{"cart_features:cart_over_spend"}}},
		Entities:       userEntities(),
		RequestContext: map[string]*pb.RepeatedValue{"cart_value": {Val: []*pb.Value{{Kind: &pb.Value_DoubleVal{DoubleVal: 1}}}}},
	}
	_, err = c.GetOnlineFeatures(withToken(r.token(t, r.urlKey, "svc-od", nil)), cart)
	requireCode(t, err, codes.PermissionDenied, `subject:svc-od is not granted feature view "user_stats" in project "shop", which on-demand view "cart_features" reads`)
	resp, err = c.GetOnlineFeatures(withToken(r.token(t, r.urlKey, "svc-od-in", nil)), cart)
	require.NoError(t, err)
	require.Len(t, resp.Features, 1)

	// Issue 22 item 16: the CLI says a refusal's kind once ("unauthenticated: unauthenticated:
	// ..." was seen), in text and in -o json.
	var out strings.Builder
	for _, tc := range []struct {
		name  string
		token string
		args  []string
	}{
		{"no token", "", []string{"get-online", "--service", "churn_v1", "--entity", "user_id=1"}},
		{"not granted", svcA, []string{"get-online", "--service", "profile_v1", "--entity", "user_id=1"}},
		{"not granted, json", svcA, []string{"-o", "json", "predict", "--model", "churn", "--entity", "user_id=1"}},
		{"no token, json", "", []string{"-o", "json", "get-online", "--feature", "user_stats:clicks_7d", "--entity", "user_id=1"}},
	} {
		res := quiver(t, map[string]string{"QUIVER_TOKEN": tc.token}, append(tc.args, "--server", p.addr)...)
		fmt.Fprintf(&out, "# %s: quiver %s\nexit %d\n%s\n", tc.name, strings.Join(tc.args, " "), res.code, res.stderr)
	}
	golden(t, "remote_refusals.txt", out.String())
}

// TestServeRefusesToStart: every bad serving setup fails at startup with exit code 1 and a
// message naming its cause, quickly.
func TestServeRefusesToStart(t *testing.T) {
	r := newAuthRepo(t)
	port, err := testenv.FreePort()
	require.NoError(t, err)
	anyAddr := "0.0.0.0:" + strconv.Itoa(port)
	for _, tc := range []struct {
		name, serving string
		args          []string
		want          []string
	}{
		{"no auth on every interface", "", []string{"--addr", anyAddr}, []string{"refusing to serve without authentication on a non-loopback address: " + anyAddr, "--allow-unauthenticated"}},
		{"bad policy", "  jwt: { jwks_file: jwks.json, issuer: i, audience: a }\n  policy:\n    grants:\n      - { principals: [svc-a], modles: [churn] }\n", nil,
			[]string{`quiver.yaml:`, `principal "svc-a" must start with subject:`, `unknown key "modles" in grant`, `did you mean "models"?`}},
		{"bad policy file", "  jwt: { jwks_file: jwks.json, issuer: i, audience: a }\n  policy_file: missing-policy.yaml\n", nil, []string{"read policy file", filepath.Join(r.dir, "missing-policy.yaml")}},
		{"missing TLS key", "  tls: { cert: tls/server.pem, key: tls/nope.pem }\n", nil, []string{"read TLS key", filepath.Join(r.dir, "tls", "nope.pem")}},
		{"missing client CA", "  tls: { cert: tls/server.pem, key: tls/server-key.pem, client_ca: tls/noca.pem }\n", nil, []string{"read TLS client CA", filepath.Join(r.dir, "tls", "noca.pem")}},
		{"missing JWKS file", "  jwt: { jwks_file: keys/none.json, issuer: i, audience: a }\n", nil, []string{"read jwks_file " + filepath.Join(r.dir, "keys", "none.json")}},
		{"metrics on every interface, with authentication", "  jwt: { jwks_file: jwks.json, issuer: i, audience: a }\n", []string{"--addr", anyAddr, "--metrics-addr", anyAddr},
			[]string{"--metrics-addr " + anyAddr + " (every interface): /metrics is never authenticated", "--allow-unauthenticated-metrics"}},
		{"JWKS URL down", "  jwt: { jwks_url: 'http://127.0.0.1:1/jwks.json', issuer: i, audience: a }\n", nil, []string{"read jwks_url http://127.0.0.1:1/jwks.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.setServing(t, tc.serving)
			start := time.Now()
			res := quiver(t, r.env, append([]string{"-C", r.dir, "serve", "--metrics-addr", ""}, tc.args...)...)
			require.Equal(t, exitInvalid, res.code, res.stderr)
			for _, w := range tc.want {
				require.Contains(t, res.stderr, w)
			}
			require.Less(t, time.Since(start), 10*time.Second, "fails at startup, not after a hang")
		})
	}

	// --allow-unauthenticated is the explicit way out.
	r.setServing(t, "")
	p := startServeOn(t, r, "0.0.0.0", "--allow-unauthenticated")
	waitHealthy(t, p, dial(t, p, r, false, nil))
	res := p.stop(t)
	require.Equal(t, exitOK, res.code, res.stderr)
	// ...and --allow-unauthenticated-metrics the one for metrics alone.
	r.setServing(t, "  jwt: { jwks_file: jwks.json, issuer: i, audience: a }\n")
	mport, err := testenv.FreePort()
	require.NoError(t, err)
	p = startServeOn(t, r, "0.0.0.0", "--metrics-addr", "0.0.0.0:"+strconv.Itoa(mport), "--allow-unauthenticated-metrics")
	waitHealthy(t, p, dial(t, p, r, false, nil))
	require.Contains(t, scrape(t, "127.0.0.1:"+strconv.Itoa(mport)), "quiver_serving_in_flight_requests")
	res = p.stop(t)
	require.Equal(t, exitOK, res.code, res.stderr)
}

// TestServeMTLSRequired: with client_ca and the default client_auth (require), a client
// without a certificate from the CA never gets a connection, even with a valid token.
func TestServeMTLSRequired(t *testing.T) {
	r := newAuthRepo(t)
	r.setServing(t, fmt.Sprintf(`  tls: { cert: tls/server.pem, key: tls/server-key.pem, client_ca: tls/ca.pem }
  jwt: { jwks_file: jwks.json, issuer: %q, audience: %q }
  api_tokens: [{ name: nightly, sha256: %s }]
  policy_file: policy.yaml
`, testIssuer, testAudience, authtest.SHA256("nightly-secret")))
	hport, err := testenv.FreePort()
	require.NoError(t, err)
	p := startAuthServe(t, r, "--health-addr", "0.0.0.0:"+strconv.Itoa(hport))
	scorer := r.ca.Client(t, "scorer", "Quiver tests").TLS(t)
	conn := dial(t, p, r, true, &scorer)
	waitHealthy(t, p, conn)
	c := pb.NewFeatureServingClient(conn)

	// Issue 22 item 24: a probe without a client certificate (a Kubernetes httpGet probe)
	// cannot check health on the gRPC port, whose handshake needs one; --health-addr answers
	// it in plain HTTP.
	hctx, hcancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = healthpb.NewHealthClient(dial(t, p, r, true, nil)).Check(hctx, &healthpb.HealthCheckRequest{})
	hcancel()
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	probe := curl(t, "http://127.0.0.1:"+strconv.Itoa(hport)+"/healthz")
	require.Equal(t, 200, probe.status, "%s %s", probe.body, probe.err)
	require.JSONEq(t, `{"status":"SERVING"}`, probe.body)

	_, err = getService(context.Background(), c, "churn_v1")
	requireCode(t, err, codes.PermissionDenied, `cert:CN=scorer,O=Quiver tests is not granted feature service "churn_v1"`)
	// Certificate and token together: the caller holds both identities.
	resp, err := getService(withToken(r.token(t, r.fileKey, "svc-a", nil)), c, "churn_v1")
	require.NoError(t, err)
	require.Len(t, resp.Features, 3)

	svcA := r.token(t, r.fileKey, "svc-a", nil)
	_, err = getService(withToken(svcA), pb.NewFeatureServingClient(dial(t, p, r, true, nil)), "churn_v1")
	require.Equal(t, codes.Unavailable, status.Code(err), "no client certificate: no connection: %v", err)
	foreign := r.evil.Client(t, "scorer", "Quiver tests").TLS(t)
	_, err = getService(withToken(svcA), pb.NewFeatureServingClient(dial(t, p, r, true, &foreign)), "churn_v1")
	require.Equal(t, codes.Unavailable, status.Code(err), "a certificate from another CA: no connection: %v", err)
}
