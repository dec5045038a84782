package auth_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/serving/auth/authtest"
)

const (
	issuer   = "https://idp.test/"
	audience = "quiver"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jwksServer serves a JWKS that the test can replace, counting the requests.
type jwksServer struct {
	*httptest.Server
	mu    sync.Mutex
	body  []byte
	count int
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.count++
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body []byte) { s.mu.Lock(); s.body = body; s.mu.Unlock() }
func (s *jwksServer) requests() int   { s.mu.Lock(); defer s.mu.Unlock(); return s.count }

type fixture struct {
	guard *auth.Guard
	reg   *prometheus.Registry
	logs  *bytes.Buffer
	clock *clock
}

func newGuard(t *testing.T, cfg *auth.Config) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}, clock: &clock{t: time.Now()}}
	g, err := auth.New(context.Background(), cfg, auth.Options{
		Project:    "shop",
		Logger:     slog.New(slog.NewJSONHandler(f.logs, nil)),
		Registerer: f.reg,
		Now:        f.clock.Now,
	})
	require.NoError(t, err)
	f.guard = g
	return f
}

func bearer(tok string) []string { return []string{"Bearer " + tok} }

func claims(sub string, exp time.Time, extra map[string]any) authtest.Claims {
	return authtest.Claims{Issuer: issuer, Subject: sub, Audience: []string{audience}, Expiry: exp, IssuedAt: time.Now(), Extra: extra}
}

func TestJWTVerification(t *testing.T) {
	rsaKey, ecKey := authtest.NewRSA(t, "rsa-1"), authtest.NewEC(t, "ec-1")
	other := authtest.NewEC(t, "ec-1") // same kid, a key the server does not hold
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	authtest.WriteFile(t, jwksFile, authtest.JWKS(t, rsaKey, ecKey))
	url := newJWKSServer(t, authtest.JWKS(t, rsaKey, ecKey))

	for _, source := range []struct {
		name string
		jwt  auth.JWTConfig
	}{
		{"file", auth.JWTConfig{JWKSFile: jwksFile}},
		{"url", auth.JWTConfig{JWKSURL: url.URL}},
	} {
		t.Run(source.name, func(t *testing.T) {
			jc := source.jwt
			jc.Issuer, jc.Audiences = issuer, []string{audience, "other-aud"}
			f := newGuard(t, &auth.Config{JWT: &jc})
			now := f.clock.Now()
			hour := now.Add(time.Hour)
			ctx := context.Background()
			for _, tc := range []struct {
				name   string
				token  string
				want   string // error substring; empty: accepted
				reason string
			}{
				{"rsa", rsaKey.Token(t, claims("svc-a", hour, map[string]any{"groups": []string{"growth", "ml"}})), "", ""},
				{"ec", ecKey.Token(t, claims("svc-b", hour, map[string]any{"groups": "growth"})), "", ""},
				{"expired", ecKey.Token(t, claims("svc-a", now.Add(-time.Minute), nil)), "token expired at", "expired_credentials"},
				{"expired within skew", ecKey.Token(t, claims("svc-a", now.Add(-10*time.Second), nil)), "", ""},
				{"no exp", ecKey.Token(t, claims("svc-a", time.Time{}, nil)), "token has no expiry", "invalid_credentials"},
				{"no sub", ecKey.Token(t, claims("", hour, nil)), "token has no subject", "invalid_credentials"},
				{"wrong issuer", ecKey.Token(t, authtest.Claims{Issuer: "https://evil/", Subject: "svc-a", Audience: []string{audience}, Expiry: hour}), `token issuer "https://evil/" is not the issuer`, "invalid_credentials"},
				{"wrong audience", ecKey.Token(t, authtest.Claims{Issuer: issuer, Subject: "svc-a", Audience: []string{"billing"}, Expiry: hour}), `token audience ["billing"] does not include`, "invalid_credentials"},
				{"not yet valid", ecKey.Token(t, authtest.Claims{Issuer: issuer, Subject: "svc-a", Audience: []string{audience}, Expiry: hour, NotBefore: now.Add(10 * time.Minute)}), "token is not valid before", "invalid_credentials"},
				{"foreign key", other.Token(t, claims("svc-a", hour, nil)), "token signature does not verify", "invalid_credentials"},
				{"garbage", "not.a.jwt", "bearer token is not a JWT", "invalid_credentials"},
				{"alg none", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzdmMtYSJ9.", "bearer token is not a JWT signed with an accepted algorithm", "invalid_credentials"},
			} {
				p, err := f.guard.Authenticate(ctx, nil, bearer(tc.token))
				if tc.want == "" {
					require.NoError(t, err, tc.name)
					require.NotEmpty(t, p.Subject, tc.name)
					continue
				}
				require.ErrorIs(t, err, auth.ErrUnauthenticated, tc.name)
				require.ErrorContains(t, err, tc.want, tc.name)
				require.NotContains(t, err.Error(), tc.token, "the token never appears in an error")
			}
			p, err := f.guard.Authenticate(ctx, nil, bearer(rsaKey.Token(t, claims("svc-a", hour, map[string]any{"groups": []string{"growth", "ml"}}))))
			require.NoError(t, err)
			require.Equal(t, []string{"subject:svc-a", "group:growth", "group:ml"}, p.IDs())

			// A cached token still expires.
			tok := ecKey.Token(t, claims("svc-c", now.Add(2*time.Minute), nil))
			_, err = f.guard.Authenticate(ctx, nil, bearer(tok))
			require.NoError(t, err)
			f.clock.Add(3 * time.Minute)
			_, err = f.guard.Authenticate(ctx, nil, bearer(tok))
			require.ErrorContains(t, err, "token expired at")
		})
	}
}

func TestJWKSRotationFromURL(t *testing.T) {
	old, rotated := authtest.NewEC(t, "k1"), authtest.NewRSA(t, "k2")
	srv := newJWKSServer(t, authtest.JWKS(t, old))
	f := newGuard(t, &auth.Config{JWT: &auth.JWTConfig{JWKSURL: srv.URL, Issuer: issuer, Audiences: []string{audience}}})
	require.Equal(t, 1, srv.requests(), "read at startup")
	hour := f.clock.Now().Add(time.Hour)
	tok := rotated.Token(t, claims("svc-a", hour, nil))

	_, err := f.guard.Authenticate(context.Background(), nil, bearer(tok))
	require.ErrorContains(t, err, `token key id "k2" is not in the server's key set`)
	require.Equal(t, 1, srv.requests(), "an unknown kid right after a read does not read again")

	srv.set(authtest.JWKS(t, old, rotated))
	f.clock.Add(time.Minute)
	_, err = f.guard.Authenticate(context.Background(), nil, bearer(tok))
	require.NoError(t, err, "the new key is fetched when a token names it")
	require.Equal(t, 2, srv.requests())

	for range 5 { // a flood of unknown kids reads the set at most once per 30s
		_, err = f.guard.Authenticate(context.Background(), nil, bearer(authtest.NewEC(t, "junk").Token(t, claims("x", hour, nil))))
		require.ErrorIs(t, err, auth.ErrUnauthenticated)
	}
	require.Equal(t, 2, srv.requests())
}

func TestNewNamesTheJWKSSource(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		jwt  auth.JWTConfig
		want string
	}{
		{auth.JWTConfig{JWKSFile: filepath.Join(dir, "missing.json")}, "read jwks_file " + filepath.Join(dir, "missing.json")},
		{auth.JWTConfig{JWKSFile: writeTemp(t, dir, "junk.json", "{")}, "jwks_file " + filepath.Join(dir, "junk.json") + " is not a JSON Web Key Set"},
		{auth.JWTConfig{JWKSFile: writeTemp(t, dir, "hmac.json", `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}`)}, "holds no public signature keys"},
		{auth.JWTConfig{JWKSURL: newJWKSServer(t, []byte("<html>")).URL + "/jwks"}, "is not a JSON Web Key Set"},
		{auth.JWTConfig{JWKSURL: "http://127.0.0.1:1/jwks.json"}, "read jwks_url http://127.0.0.1:1/jwks.json"},
	} {
		tc.jwt.Issuer, tc.jwt.Audiences = issuer, []string{audience}
		_, err := auth.New(context.Background(), &auth.Config{JWT: &tc.jwt}, auth.Options{Project: "shop"})
		require.ErrorIs(t, err, auth.ErrConfig)
		require.ErrorContains(t, err, tc.want)
	}
}

func writeTemp(t *testing.T, dir, name, content string) string {
	p := filepath.Join(dir, name)
	authtest.WriteFile(t, p, []byte(content))
	return p
}

func TestAPITokensAndHeaders(t *testing.T) {
	f := newGuard(t, &auth.Config{APITokens: []auth.APIToken{{Name: "nightly", SHA256: sum("s3cret-token")}}})
	ctx := context.Background()
	p, err := f.guard.Authenticate(ctx, nil, bearer("s3cret-token"))
	require.NoError(t, err)
	require.Equal(t, "token:nightly", p.String())
	p, err = f.guard.Authenticate(ctx, nil, []string{"bearer s3cret-token"})
	require.NoError(t, err, "the scheme is case-insensitive")
	require.Equal(t, "nightly", p.Token)

	for _, tc := range []struct {
		header []string
		want   string
	}{
		{nil, "no credentials: send the header authorization: Bearer TOKEN"},
		{bearer("wrong"), "unknown API token"},
		{[]string{"Basic czNjcmV0"}, `the authorization header must be "Bearer TOKEN"`},
		{[]string{"Bearer "}, `the authorization header must be "Bearer TOKEN"`},
		{[]string{"Bearer a", "Bearer b"}, "more than one authorization header"},
	} {
		_, err := f.guard.Authenticate(ctx, nil, tc.header)
		require.ErrorIs(t, err, auth.ErrUnauthenticated)
		require.ErrorContains(t, err, tc.want)
	}
}

func sum(s string) [32]byte {
	var out [32]byte
	b, _ := hexDecode(authtest.SHA256(s))
	copy(out[:], b)
	return out
}

func TestPolicy(t *testing.T) {
	policy := &auth.Policy{Grants: []auth.Grant{
		{Principals: []string{"subject:svc-a"}, FeatureServices: []string{"churn_v1"}, Models: []string{"churn"}},
		{Principals: []string{"group:analysts"}, FeatureViews: []string{"user_stats", "other/merchant_stats"}},
		{Principals: []string{"cert:CN=scorer,O=Acme"}, Projects: []string{"shop"}},
		{Principals: []string{"token:nightly"}, Models: []string{"*"}},
		{Principals: []string{"*"}, FeatureServices: []string{"public_v1"}},
		{Principals: []string{"subject:admin"}, Projects: []string{"*"}},
		{Principals: []string{"subject:writer"}, PushViews: []string{"user_live"}},
	}}
	tokens := []auth.APIToken{{Name: "nightly", SHA256: sum("n")}}
	f := newGuard(t, &auth.Config{APITokens: tokens, Policy: policy})
	svc := func(name string) *pb.GetOnlineFeaturesRequest {
		return &pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: name}}
	}
	refs := func(r ...string) *pb.GetOnlineFeaturesRequest {
		return &pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: r}}}
	}
	predict := func(m string) *pb.PredictRequest { return &pb.PredictRequest{Model: &pb.ModelRef{Name: m}} }
	push := func(v string) *pb.PushFeaturesRequest { return &pb.PushFeaturesRequest{FeatureView: v} }
	for _, tc := range []struct {
		p      *auth.Principal
		method string
		req    any
		denied string // the resource named in the denial; empty: allowed
	}{
		{&auth.Principal{Subject: "svc-a"}, auth.MethodGetOnlineFeatures, svc("churn_v1"), ""},
		{&auth.Principal{Subject: "svc-a"}, auth.MethodGetOnlineFeatures, svc("fraud_v1"), `feature service "fraud_v1" in project "shop"`},
		{&auth.Principal{Subject: "svc-a"}, auth.MethodGetOnlineFeatures, refs("user_stats:clicks_7d"), `feature view "user_stats" in project "shop"`},
		{&auth.Principal{Subject: "svc-a"}, auth.MethodPredict, predict("churn"), ""},
		{&auth.Principal{Subject: "svc-a"}, auth.MethodPredict, predict("fraud"), `model "fraud" in project "shop"`},
		{&auth.Principal{Subject: "svc-b", Groups: []string{"analysts"}}, auth.MethodGetOnlineFeatures, refs("user_stats:clicks_7d", "user_stats:*"), ""},
		{&auth.Principal{Subject: "svc-b", Groups: []string{"analysts"}}, auth.MethodGetOnlineFeatures, refs("user_stats:clicks_7d", "merchant_stats:risk"), `feature view "merchant_stats" in project "shop"`},
		{&auth.Principal{Subject: "svc-b", Groups: []string{"analysts"}}, auth.MethodGetOnlineFeatures, svc("churn_v1"), `feature service "churn_v1"`},
		{&auth.Principal{Subject: "svc-b"}, auth.MethodGetOnlineFeatures, svc("public_v1"), ""},
		{&auth.Principal{CertSubject: "CN=scorer,O=Acme"}, auth.MethodPredict, predict("anything"), ""},
		{&auth.Principal{CertSubject: "CN=scorer,O=Evil"}, auth.MethodPredict, predict("anything"), `model "anything"`},
		{&auth.Principal{Token: "nightly"}, auth.MethodPredict, predict("fraud"), ""},
		{&auth.Principal{Token: "nightly"}, auth.MethodGetOnlineFeatures, svc("churn_v1"), `feature service "churn_v1"`},
		// Writes are granted only by push_views: not by a project grant, not by reading the view.
		{&auth.Principal{Subject: "writer"}, auth.MethodPushFeatures, push("user_live"), ""},
		{&auth.Principal{Subject: "writer"}, auth.MethodPushFeatures, push("user_stats"), `push to feature view "user_stats" in project "shop"`},
		{&auth.Principal{Subject: "admin"}, auth.MethodPushFeatures, push("user_live"), `push to feature view "user_live" in project "shop"`},
		{&auth.Principal{Subject: "svc-b", Groups: []string{"analysts"}}, auth.MethodPushFeatures, push("user_stats"), `push to feature view "user_stats"`},
		{&auth.Principal{Subject: "admin"}, "/quiver.serving.v1.FeatureServing/PushFeatures", struct{}{}, ""},
		{&auth.Principal{Subject: "svc-a"}, "/quiver.serving.v1.FeatureServing/PushFeatures", struct{}{}, `project "shop"`},
	} {
		ctx := auth.WithPrincipal(context.Background(), tc.p)
		err := f.guard.Authorize(ctx, tc.method, tc.req)
		if tc.denied == "" {
			require.NoError(t, err, "%s %v", tc.p, tc.req)
			continue
		}
		require.ErrorIs(t, err, auth.ErrPermissionDenied)
		require.ErrorContains(t, err, tc.p.String()+" is not granted "+tc.denied)
		require.NotContains(t, err.Error(), "permission denied", "the kind is the code's to say")
	}
	// Every denial is counted and logged.
	require.Equal(t, 11.0, denials(t, f.reg))
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	require.Len(t, lines, 11+1, "one warning about the plaintext tokens, then one line per denial")
	var last map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &last))
	require.Equal(t, "request denied", last["msg"])
	require.Equal(t, "subject:svc-a", last["principal"])
	require.Equal(t, `project "shop"`, last["resource"])
	require.Equal(t, "PermissionDenied", last["code"])
}

// denials is the total of quiver_serving_auth_denials_total.
func denials(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "quiver_serving_auth_denials_total" {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// TestHTTPMiddleware: the same credentials and policy over HTTP, with mTLS on an httptest
// TLS server: 401 without credentials, the principal passed on, 403 from Authorize, health
// open.
func TestHTTPMiddleware(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	authtest.WriteFile(t, caFile, ca.PEM)
	certFile, keyFile := ca.Server(t).Write(t, dir, "server")
	signer := authtest.NewEC(t, "k")
	jwksFile := writeTemp(t, dir, "jwks.json", string(authtest.JWKS(t, signer)))
	cfg := &auth.Config{
		TLS: auth.TLSConfig{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, ClientAuth: auth.ClientAuthVerifyIfGiven},
		JWT: &auth.JWTConfig{JWKSFile: jwksFile, Issuer: issuer, Audiences: []string{audience}},
		Policy: &auth.Policy{Grants: []auth.Grant{
			{Principals: []string{"subject:svc-a", "cert:CN=scorer"}, FeatureServices: []string{"churn_v1"}},
		}},
	}
	f := newGuard(t, cfg)
	tlsCfg, err := auth.ServerTLS(cfg.TLS)
	require.NoError(t, err)

	// The handler stands in for an HTTP/JSON adapter: it decodes the request and calls
	// Authorize before serving it.
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/v1/features", func(w http.ResponseWriter, r *http.Request) {
		req := &pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: r.URL.Query().Get("service")}}
		if err := f.guard.Authorize(r.Context(), auth.MethodGetOnlineFeatures, req); err != nil {
			auth.WriteHTTPError(w, err)
			return
		}
		_, _ = io.WriteString(w, "hello "+auth.FromContext(r.Context()).String())
	})
	srv := httptest.NewUnstartedServer(f.guard.HTTPMiddleware(mux))
	srv.TLS = tlsCfg
	srv.StartTLS()
	defer srv.Close()

	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: certs, MinVersion: tls.VersionTLS12}}}
	}
	get := func(c *http.Client, path, token string) (int, string, http.Header) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	tok := signer.Token(t, claims("svc-a", f.clock.Now().Add(time.Hour), nil))

	code, body, hdr := get(client(), "/v1/features?service=churn_v1", "")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, `Bearer realm="quiver"`, hdr.Get("WWW-Authenticate"))
	var e struct{ Code, Message string }
	require.NoError(t, json.Unmarshal([]byte(body), &e))
	require.Equal(t, "unauthenticated", e.Code)
	require.Contains(t, e.Message, "no credentials")

	code, body, _ = get(client(), "/healthz", "")
	require.Equal(t, http.StatusOK, code, "health needs no credentials")
	require.Equal(t, "ok", body)

	code, body, _ = get(client(), "/v1/features?service=churn_v1", tok)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "hello subject:svc-a", body)

	code, body, _ = get(client(), "/v1/features?service=fraud_v1", tok)
	require.Equal(t, http.StatusForbidden, code)
	require.Contains(t, body, `"code":"permission_denied"`)
	require.Contains(t, body, `is not granted feature service \"fraud_v1\"`)

	// A client certificate from the CA authenticates by itself.
	code, body, _ = get(client(ca.Client(t, "scorer", "").TLS(t)), "/v1/features?service=churn_v1", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "hello cert:CN=scorer", body)

	// One from another CA: a Go client does not even send it (the server names its CA), so
	// the request has no credentials; a client that insists is refused in the handshake.
	foreign := authtest.NewCA(t, "evil").Client(t, "scorer", "").TLS(t)
	code, _, _ = get(client(foreign), "/v1/features?service=churn_v1", "")
	require.Equal(t, http.StatusUnauthorized, code)
	insist := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }}}}
	resp, err := insist.Get(srv.URL + "/v1/features?service=churn_v1")
	if err == nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err, "the handshake fails (an alert, or a connection closed under TLS 1.3)")

	require.Equal(t, 3.0, denials(t, f.reg), "two 401s and one 403")
}

func hexDecode(s string) ([]byte, error) { return hex.DecodeString(s) }
