package ui

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/serving/auth/authtest"
)

// offsetClock is the time now, moved by an offset a test sets (to expire sessions).
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// Tokens of the signed-in tests and what the policy grants them.
const (
	readerToken  = "reader-secret"  // token:reader — the whole project
	viewerToken  = "viewer-secret"  // token:viewer — ui only
	analystToken = "analyst-secret" // token:analyst — ui and the feature view user_stats
	narrowToken  = "narrow-secret"  // token:narrow — the feature view user_stats, no ui
)

// authServer is the fixture's UI with a Guard (API tokens, optionally JWTs and OpenID Connect
// against a real in-process provider), served on a loopback port.
type authServer struct {
	*fixture
	srv    *Server
	ts     *httptest.Server
	clock  *offsetClock
	idp    *mockoidc.MockOIDC // nil without OIDC
	client *http.Client       // the UI's client to the provider
	jwt    *authtest.Signer
	logs   *strings.Builder
}

type authOpts struct {
	oidc bool
	jwt  bool
	key  string // the session key; empty: generated
}

func newAuthServer(t *testing.T, o authOpts) *authServer {
	t.Helper()
	a := &authServer{fixture: newFixture(t), clock: &offsetClock{}, logs: &strings.Builder{}}
	sum := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	cfg := &auth.Config{
		APITokens: []auth.APIToken{{Name: "reader", SHA256: sum(readerToken)}, {Name: "viewer", SHA256: sum(viewerToken)},
			{Name: "analyst", SHA256: sum(analystToken)}, {Name: "narrow", SHA256: sum(narrowToken)}},
		Policy: &auth.Policy{Grants: []auth.Grant{
			{Principals: []string{"token:reader"}, Projects: []string{project}},
			{Principals: []string{"token:viewer", "token:analyst", "group:data-eng"}, UI: []string{project}},
			{Principals: []string{"token:analyst", "token:narrow"}, FeatureViews: []string{"user_stats"}},
		}},
	}
	if o.jwt {
		a.jwt = authtest.NewEC(t, "k1")
		jwks := filepath.Join(t.TempDir(), "jwks.json")
		authtest.WriteFile(t, jwks, authtest.JWKS(t, a.jwt))
		cfg.JWT = &auth.JWTConfig{JWKSFile: jwks, Issuer: "https://idp.test/", Audiences: []string{"quiver"}}
		cfg.Policy.Grants = append(cfg.Policy.Grants, auth.Grant{Principals: []string{"subject:jwt-user"}, UI: []string{project}})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	if o.oidc {
		a.idp, err = mockoidc.Run()
		require.NoError(t, err, "start the OpenID Connect test provider")
		t.Cleanup(func() { require.NoError(t, a.idp.Shutdown()) })
		cfg.UI.OIDC = &auth.OIDCConfig{Issuer: a.idp.Issuer(), ClientID: a.idp.ClientID, ClientSecret: auth.NewSecret(a.idp.ClientSecret),
			RedirectURL: base + "/signin/oidc/callback", Scopes: []string{"email", "groups"}, SubjectClaim: "email", GroupsClaim: "groups", Name: "Test IdP"}
	}
	cfg.UI.SessionKey = auth.NewSecret(o.key)
	cfg.UI.SessionTTL = 8 * time.Hour
	g, err := auth.New(context.Background(), cfg, auth.Options{Project: project, Resources: Resources, OpenHTTPPaths: OpenPaths, Now: a.clock.Now})
	require.NoError(t, err)
	a.client = &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(a.client.CloseIdleConnections)
	a.srv, err = New(Options{Project: project, Registry: a.reg, Warehouse: a.warehouse, Guard: g, SignIn: cfg.UI,
		HTTPClient: a.client, Now: a.clock.Now, Logger: slog.New(slog.NewTextHandler(a.logs, nil))})
	require.NoError(t, err)
	a.ts = &httptest.Server{Listener: ln, Config: &http.Server{Handler: a.srv}}
	a.ts.Start()
	t.Cleanup(a.ts.Close)
	return a
}

func newJar() (http.CookieJar, error) { return cookiejar.New(nil) }

// s256 is the PKCE S256 challenge of verifier.
func s256(verifier string) string { return oauth2.S256ChallengeFromVerifier(verifier) }

// browserClient is an HTTP client that keeps cookies and does not follow redirects.
func browserClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := newJar()
	require.NoError(t, err)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 20 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

type response struct {
	code int
	body string
	loc  string
	hdr  http.Header
}

func send(t *testing.T, c *http.Client, method, u string, form url.Values, header map[string]string) response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{code: resp.StatusCode, body: string(b), loc: resp.Header.Get("Location"), hdr: resp.Header}
}

var browserAccept = map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signInWith loads the sign-in page in c (for its CSRF cookie and field) and posts token.
func (a *authServer) signInWith(t *testing.T, c *http.Client, token string) response {
	t.Helper()
	page := send(t, c, http.MethodGet, a.ts.URL+"/signin?next=%2Fdatasets", nil, browserAccept)
	require.Equal(t, http.StatusOK, page.code)
	m := csrfField.FindStringSubmatch(page.body)
	require.NotNil(t, m, "the sign-in form has a CSRF field")
	return send(t, c, http.MethodPost, a.ts.URL+"/signin", url.Values{"csrf": {m[1]}, "token": {token}, "next": {"/datasets"}}, nil)
}

// TestSignInAnswersBrowsersAndAPIClients: without credentials, a browser is redirected to the
// sign-in page (which needs no JavaScript and carries the UI's CSP), and an API client gets
// the JSON 401 of the serving surfaces; headers and certificates work as before.
func TestSignInAnswersBrowsersAndAPIClients(t *testing.T) {
	a := newAuthServer(t, authOpts{jwt: true})
	c := browserClient(t)

	r := send(t, c, http.MethodGet, a.ts.URL+"/views/user_stats?x=1", nil, browserAccept)
	require.Equal(t, http.StatusSeeOther, r.code)
	require.Equal(t, "/signin?next=%2Fviews%2Fuser_stats%3Fx%3D1", r.loc)
	r = send(t, c, http.MethodGet, a.ts.URL+r.loc, nil, browserAccept)
	require.Equal(t, http.StatusOK, r.code)
	require.Contains(t, r.body, `<form method="post" action="/signin"`)
	require.Contains(t, r.body, `name="next" value="/views/user_stats?x=1"`)
	require.NotContains(t, r.body, "<script")
	require.Contains(t, r.hdr.Get("Content-Security-Policy"), "script-src 'self'")
	require.Equal(t, "no-store", r.hdr.Get("Cache-Control"))

	for _, h := range []map[string]string{nil, {"Accept": "application/json"}, {"Accept": "*/*"}} {
		r = send(t, http.DefaultClient, http.MethodGet, a.ts.URL+"/", nil, h)
		require.Equal(t, http.StatusUnauthorized, r.code, "%v", h)
		require.Contains(t, r.body, `"code":"unauthenticated"`)
		require.Equal(t, "application/json", r.hdr.Get("Content-Type"))
	}
	// A bad bearer header is refused, not sent to sign in, even from a browser.
	r = send(t, c, http.MethodGet, a.ts.URL+"/", nil, map[string]string{"Accept": "text/html", "Authorization": "Bearer nope"})
	require.Equal(t, http.StatusUnauthorized, r.code)

	// Bearer headers (an API token, a JWT from a proxy) work as before, with the ui grant.
	r = send(t, http.DefaultClient, http.MethodGet, a.ts.URL+"/", nil, map[string]string{"Authorization": "Bearer " + viewerToken})
	require.Equal(t, http.StatusOK, r.code)
	jwt := a.jwt.Token(t, authtest.Claims{Issuer: "https://idp.test/", Subject: "jwt-user", Audience: []string{"quiver"}, Expiry: time.Now().Add(time.Hour)})
	r = send(t, http.DefaultClient, http.MethodGet, a.ts.URL+"/models", nil, map[string]string{"Authorization": "Bearer " + jwt})
	require.Equal(t, http.StatusOK, r.code)
	require.Contains(t, r.body, "Signed in as <strong>subject:jwt-user</strong>")
	require.NotContains(t, r.body, `id="sign-out"`, "a header has no session to end")
	// A token without ui: 403, JSON for API clients and a page for a browser.
	r = send(t, http.DefaultClient, http.MethodGet, a.ts.URL+"/", nil, map[string]string{"Authorization": "Bearer " + narrowToken})
	require.Equal(t, http.StatusForbidden, r.code)
	require.Contains(t, r.body, `"code":"permission_denied"`)
	r = send(t, http.DefaultClient, http.MethodGet, a.ts.URL+"/", nil, map[string]string{"Authorization": "Bearer " + narrowToken, "Accept": "text/html"})
	require.Equal(t, http.StatusForbidden, r.code)
	require.Contains(t, r.body, "does not grant the UI of project shop")

	// Open paths stay open.
	require.Equal(t, http.StatusOK, send(t, http.DefaultClient, http.MethodGet, a.ts.URL+"/healthz", nil, nil).code)
	require.Equal(t, http.StatusOK, send(t, http.DefaultClient, http.MethodGet, a.ts.URL+"/static/style.css", nil, nil).code)
}

// TestSignInCSRF: the sign-in POST needs the CSRF field bound to the browser's CSRF cookie,
// and is refused from another site.
func TestSignInCSRF(t *testing.T) {
	a := newAuthServer(t, authOpts{})
	c := browserClient(t)
	page := send(t, c, http.MethodGet, a.ts.URL+"/signin", nil, browserAccept)
	field := csrfField.FindStringSubmatch(page.body)[1]
	post := func(c *http.Client, form url.Values, h map[string]string) response {
		return send(t, c, http.MethodPost, a.ts.URL+"/signin", form, h)
	}

	// No field, a wrong field, no cookie (another browser): refused, no session.
	for name, r := range map[string]response{
		"no field":    post(c, url.Values{"token": {readerToken}}, nil),
		"wrong field": post(c, url.Values{"token": {readerToken}, "csrf": {field[:len(field)-2] + "AA"}}, nil),
		"no cookie":   post(browserClient(t), url.Values{"token": {readerToken}, "csrf": {field}}, nil),
	} {
		require.Equal(t, http.StatusForbidden, r.code, name)
		require.Contains(t, r.body, "CSRF check", name)
		require.Empty(t, sessionCookie(r.hdr), name)
	}
	// A cross-site post, even with the right field and cookie.
	r := post(c, url.Values{"token": {readerToken}, "csrf": {field}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	require.Equal(t, http.StatusForbidden, r.code)
	require.Contains(t, r.body, "posted from another site")
	r = post(c, url.Values{"token": {readerToken}, "csrf": {field}}, map[string]string{"Origin": "https://evil.example"})
	require.Equal(t, http.StatusForbidden, r.code)

	// The right field and cookie sign in.
	r = post(c, url.Values{"token": {readerToken}, "csrf": {field}, "next": {"/runs"}}, map[string]string{"Origin": a.ts.URL})
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Equal(t, "/runs", r.loc)
	sc := sessionCookie(r.hdr)
	require.NotNil(t, sc)
	require.True(t, sc.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, sc.SameSite)
	require.False(t, sc.Secure, "plain HTTP; under TLS it is Secure (TestSignInOverTLS)")
	require.InDelta(t, (8 * time.Hour).Seconds(), sc.MaxAge, 5)
	require.NotContains(t, sc.Value, "reader", "the cookie is encrypted")
}

func sessionCookie(h http.Header) *http.Cookie {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if strings.HasSuffix(c.Name, cookieSession) && c.MaxAge >= 0 {
			return c
		}
	}
	return nil
}

// TestSignInWrongTokenAndNoGrant: a wrong token and a token without ui are refused on the
// sign-in page with a message; neither gets a session.
func TestSignInWrongTokenAndNoGrant(t *testing.T) {
	a := newAuthServer(t, authOpts{})
	c := browserClient(t)
	r := a.signInWith(t, c, "guess")
	require.Equal(t, http.StatusUnauthorized, r.code)
	require.Contains(t, r.body, "Sign-in failed: unknown API token.")
	require.Nil(t, sessionCookie(r.hdr))
	r = a.signInWith(t, c, narrowToken)
	require.Equal(t, http.StatusForbidden, r.code)
	require.Contains(t, r.body, `token:narrow is not granted the UI of project shop`)
	require.Nil(t, sessionCookie(r.hdr))
	require.NotContains(t, a.logs.String(), `msg="ui sign-in"`)
}

// TestSessionLifecycle: a session reaches every page; sign-out ends it, also for a copy of
// the cookie replayed later; an expired, tampered or foreign cookie is refused and the
// browser is sent to sign in again with the reason; a session of a removed token ends.
func TestSessionLifecycle(t *testing.T) {
	key := strings.Repeat("s", 32)
	a := newAuthServer(t, authOpts{key: key})
	c := browserClient(t)
	r := a.signInWith(t, c, readerToken)
	require.Equal(t, http.StatusSeeOther, r.code)
	require.Equal(t, "/datasets", r.loc)
	stolen := sessionCookie(r.hdr)

	r = send(t, c, http.MethodGet, a.ts.URL+"/", nil, browserAccept)
	require.Equal(t, http.StatusOK, r.code)
	require.Contains(t, r.body, "Signed in as <strong>token:reader</strong>")
	require.Equal(t, "no-store", r.hdr.Get("Cache-Control"), "the back button must not show a page from the cache")
	signOut := regexp.MustCompile(`action="/signout"><input type="hidden" name="csrf" value="([^"]+)"`).FindStringSubmatch(r.body)
	require.NotNil(t, signOut)

	// Sign-out needs its CSRF field too.
	r = send(t, c, http.MethodPost, a.ts.URL+"/signout", url.Values{}, nil)
	require.Equal(t, http.StatusForbidden, r.code)
	r = send(t, c, http.MethodPost, a.ts.URL+"/signout", url.Values{"csrf": {signOut[1]}}, nil)
	require.Equal(t, http.StatusSeeOther, r.code)
	require.Equal(t, "/signin?reason=signed_out", r.loc)
	r = send(t, c, http.MethodGet, a.ts.URL+"/", nil, browserAccept)
	require.Equal(t, http.StatusSeeOther, r.code, "the cookie is gone")
	// The cookie copied before sign-out no longer works.
	replay := browserClient(t)
	r = send(t, replay, http.MethodGet, a.ts.URL+"/", nil, map[string]string{"Accept": "text/html", "Cookie": stolen.Name + "=" + stolen.Value})
	require.Equal(t, http.StatusSeeOther, r.code)
	require.Equal(t, "/signin?next=%2F&reason=revoked", r.loc)

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cookieGet := func(value string) response {
		return send(t, noFollow, http.MethodGet, a.ts.URL+"/", nil, map[string]string{"Accept": "text/html", "Cookie": cookieSession + "=" + value})
	}
	// Tampered: one character changed, truncated, garbage; and sealed under another key.
	r = a.signInWith(t, c, readerToken)
	good := sessionCookie(r.hdr).Value
	require.Equal(t, http.StatusOK, cookieGet(good).code)
	raw, err := base64.RawURLEncoding.DecodeString(good)
	require.NoError(t, err)
	raw[len(raw)/2] ^= 1 // one bit of the ciphertext
	flip := base64.RawURLEncoding.EncodeToString(raw)
	other, err := newSealer([]byte(strings.Repeat("o", 32)))
	require.NoError(t, err)
	forged, err := other.seal(cookieSession, &session{ID: "x", Method: methodToken, Token: "reader", Expires: time.Now().Add(time.Hour).Unix()})
	require.NoError(t, err)
	for _, bad := range []string{flip, good[:len(good)-4], "garbage", forged} {
		r = cookieGet(bad)
		require.Equal(t, http.StatusSeeOther, r.code, bad)
		require.Equal(t, "/signin?next=%2F&reason=invalid", r.loc)
		require.Contains(t, r.hdr.Get("Set-Cookie"), "Max-Age=0", "the bad cookie is deleted")
	}
	// An API client with a bad cookie gets the JSON 401 naming it.
	r = send(t, http.DefaultClient, http.MethodGet, a.ts.URL+"/", nil, map[string]string{"Cookie": cookieSession + "=" + flip})
	require.Equal(t, http.StatusUnauthorized, r.code)
	require.Contains(t, r.body, "session cookie is not valid")

	// The same key in another process accepts the session (a restart, a replica).
	twin := newAuthServer(t, authOpts{key: key})
	r = send(t, http.DefaultClient, http.MethodGet, twin.ts.URL+"/", nil, map[string]string{"Accept": "text/html", "Cookie": cookieSession + "=" + good})
	require.Equal(t, http.StatusOK, r.code)
	// Expired: eight hours later.
	a.clock.Advance(8*time.Hour + time.Second)
	r = cookieGet(good)
	require.Equal(t, http.StatusSeeOther, r.code)
	require.Equal(t, "/signin?next=%2F&reason=expired", r.loc)
	r = send(t, http.DefaultClient, http.MethodGet, a.ts.URL+"/signin?reason=expired", nil, browserAccept)
	require.Contains(t, r.body, "Your session expired. Sign in again.")
}

// TestSignInNextStaysOnTheServer: the redirect after sign-in never leaves the UI.
func TestSignInNextStaysOnTheServer(t *testing.T) {
	for in, want := range map[string]string{
		"/views/user_stats?x=1": "/views/user_stats?x=1",
		"":                      "/",
		"https://evil.example/": "/",
		"//evil.example/":       "/",
		"/\\evil.example":       "/",
		"javascript:alert(1)":   "/",
		"/signin":               "/",
		"/signout":              "/",
		"/signin/oidc/callback": "/",
		"/ok\r\nSet-Cookie: x":  "/",
		"runs":                  "/",
	} {
		require.Equal(t, want, safeNext(in), "%q", in)
	}
}

// TestSignInOverTLS: under TLS the cookies are Secure, with the __Host- prefix; a client
// certificate still works alone, and together with a session it adds its identity.
func TestSignInOverTLS(t *testing.T) {
	f := newFixture(t)
	ca := authtest.NewCA(t, "test CA")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	authtest.WriteFile(t, caFile, ca.PEM)
	cfg := &auth.Config{
		TLS:       auth.TLSConfig{ClientCAFile: caFile, ClientAuth: auth.ClientAuthVerifyIfGiven},
		APITokens: []auth.APIToken{{Name: "viewer", SHA256: sha256.Sum256([]byte(viewerToken))}},
		Policy: &auth.Policy{Grants: []auth.Grant{
			{Principals: []string{"token:viewer"}, UI: []string{project}},
			{Principals: []string{"cert:CN=ops,O=Acme"}, UI: []string{project}},
		}},
	}
	cfg.TLS.CertFile, cfg.TLS.KeyFile = ca.Server(t).Write(t, dir, "server")
	g, err := auth.New(context.Background(), cfg, auth.Options{Project: project, Resources: Resources, OpenHTTPPaths: OpenPaths})
	require.NoError(t, err)
	s, err := New(Options{Project: project, Registry: f.reg, Warehouse: f.warehouse, Guard: g, SignIn: cfg.UI})
	require.NoError(t, err)
	tlsCfg, err := auth.ServerTLS(cfg.TLS)
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(s)
	ts.TLS = tlsCfg
	ts.StartTLS()
	t.Cleanup(ts.Close)
	client := func(cert *tls.Certificate) *http.Client {
		c := browserClient(t)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		c.Transport = tr
		t.Cleanup(tr.CloseIdleConnections)
		return c
	}
	c := client(nil)
	page := send(t, c, http.MethodGet, ts.URL+"/signin", nil, browserAccept)
	require.Contains(t, page.hdr.Get("Set-Cookie"), "__Host-quiver_csrf=")
	field := csrfField.FindStringSubmatch(page.body)[1]
	r := send(t, c, http.MethodPost, ts.URL+"/signin", url.Values{"csrf": {field}, "token": {viewerToken}}, nil)
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	sc := sessionCookie(r.hdr)
	require.Equal(t, "__Host-quiver_session", sc.Name)
	require.True(t, sc.Secure)
	require.Equal(t, "/", sc.Path)
	require.Equal(t, http.StatusOK, send(t, c, http.MethodGet, ts.URL+"/", nil, browserAccept).code)
	// The prefix-less name is not read under TLS.
	r = send(t, client(nil), http.MethodGet, ts.URL+"/", nil, map[string]string{"Accept": "text/html", "Cookie": "quiver_session=" + sc.Value})
	require.Equal(t, http.StatusSeeOther, r.code)

	// A client certificate alone, and with the session: both identities.
	leaf := ca.Client(t, "ops", "Acme").TLS(t)
	r = send(t, client(&leaf), http.MethodGet, ts.URL+"/", nil, browserAccept)
	require.Equal(t, http.StatusOK, r.code)
	require.Contains(t, r.body, "Signed in as <strong>cert:CN=ops,O=Acme</strong>")
	r = send(t, client(&leaf), http.MethodGet, ts.URL+"/", nil, map[string]string{"Accept": "text/html", "Cookie": sc.Name + "=" + sc.Value})
	require.Equal(t, http.StatusOK, r.code)
	require.Contains(t, r.body, "Signed in as <strong>cert:CN=ops,O=Acme,token:viewer</strong>")
}

// TestOIDCStateAndNonce: the callback refuses a state that is not the flow cookie's, a flow
// cookie that is missing or expired, and an ID token whose nonce is not the flow's — each
// against the real provider, with a code it issued.
func TestOIDCStateAndNonce(t *testing.T) {
	a := newAuthServer(t, authOpts{oidc: true})
	seal := a.srv.signin.seal
	callback := a.ts.URL + "/signin/oidc/callback"
	noRedirect := browserClient(t)

	// authorize asks the provider for a code as the browser would, with nonce, and returns it.
	authorize := func(flow *oidcFlow, nonce string) string {
		u, err := url.Parse(a.idp.AuthorizationEndpoint())
		require.NoError(t, err)
		q := url.Values{"scope": {"openid email groups"}, "state": {flow.State}, "client_id": {a.idp.ClientID}, "response_type": {"code"},
			"redirect_uri": {callback}, "nonce": {nonce}, "code_challenge": {s256(flow.Verifier)}, "code_challenge_method": {"S256"}}
		u.RawQuery = q.Encode()
		a.idp.QueueUser(&mockoidc.MockUser{Subject: "u1", Email: "alice@example.com", EmailVerified: true, Groups: []string{"data-eng"}})
		r := send(t, noRedirect, http.MethodGet, u.String(), nil, nil)
		require.Equal(t, http.StatusFound, r.code, r.body)
		loc, err := url.Parse(r.loc)
		require.NoError(t, err)
		return loc.Query().Get("code")
	}
	newFlow := func() *oidcFlow {
		return &oidcFlow{State: randomID(), Nonce: randomID(), Verifier: randomID() + "abcdefghij", Next: "/runs", Expires: a.clock.Now().Add(time.Minute).Unix()}
	}
	callbackWith := func(flow *oidcFlow, state, code string) response {
		v, err := seal.seal(cookieFlow, flow)
		require.NoError(t, err)
		q := url.Values{"state": {state}, "code": {code}}
		return send(t, browserClient(t), http.MethodGet, callback+"?"+q.Encode(), nil, map[string]string{"Accept": "text/html", "Cookie": cookieFlow + "=" + v})
	}

	// The happy path first, so the refusals below are refusals of what they change.
	flow := newFlow()
	r := callbackWith(flow, flow.State, authorize(flow, flow.Nonce))
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Equal(t, "/runs", r.loc)
	require.NotNil(t, sessionCookie(r.hdr))

	// State mismatch.
	flow = newFlow()
	r = callbackWith(flow, "not-"+flow.State, authorize(flow, flow.Nonce))
	require.Equal(t, http.StatusBadRequest, r.code)
	require.Contains(t, r.body, "state mismatch")
	require.Nil(t, sessionCookie(r.hdr))

	// Nonce mismatch: the provider signed a token for another nonce.
	flow = newFlow()
	r = callbackWith(flow, flow.State, authorize(flow, "another-nonce"))
	require.Equal(t, http.StatusBadRequest, r.code)
	require.Contains(t, r.body, "nonce mismatch")
	require.Nil(t, sessionCookie(r.hdr))

	// PKCE: a verifier that is not the challenge's is refused by the provider.
	flow = newFlow()
	code := authorize(flow, flow.Nonce)
	flow.Verifier = randomID() + "zzzzzzzzzz"
	r = callbackWith(flow, flow.State, code)
	require.Equal(t, http.StatusUnauthorized, r.code)
	require.Contains(t, r.body, "exchange the authorization code")

	// No flow cookie; an expired flow.
	r = send(t, browserClient(t), http.MethodGet, callback+"?state=x&code=y", nil, browserAccept)
	require.Equal(t, http.StatusBadRequest, r.code)
	require.Contains(t, r.body, "no sign-in in progress")
	flow = newFlow()
	flow.Expires = a.clock.Now().Add(-time.Second).Unix()
	r = callbackWith(flow, flow.State, "whatever")
	require.Equal(t, http.StatusBadRequest, r.code)
	require.Contains(t, r.body, "took longer than 10m0s")

	// The provider's error is shown, escaped.
	flow = newFlow()
	v, err := seal.seal(cookieFlow, flow)
	require.NoError(t, err)
	r = send(t, browserClient(t), http.MethodGet, callback+"?"+url.Values{"state": {flow.State}, "error": {"access_denied"}, "error_description": {"<b>no</b>"}}.Encode(), nil,
		map[string]string{"Cookie": cookieFlow + "=" + v})
	require.Equal(t, http.StatusUnauthorized, r.code)
	require.Contains(t, r.body, "access_denied: &lt;b&gt;no&lt;/b&gt;")

	// The client secret never reaches a page or a log line.
	require.NotContains(t, a.logs.String(), a.idp.ClientSecret)
}

// TestValuesHiddenWithoutGrant: a ui-only viewer sees a dataset's schema and lineage but no
// column statistics; a feature view grant shows that view's columns; a project grant shows
// everything, as does the diff page.
func TestValuesHiddenWithoutGrant(t *testing.T) {
	a := newAuthServer(t, authOpts{})
	pageAs := func(token, path string) string {
		r := send(t, http.DefaultClient, http.MethodGet, a.ts.URL+path, nil, map[string]string{"Authorization": "Bearer " + token})
		require.Equal(t, http.StatusOK, r.code, r.body)
		return r.body
	}
	reader := pageAs(readerToken, "/datasets/churn_training")
	require.Contains(t, reader, `class="spark"`)
	require.NotContains(t, reader, "hidden: values need a grant")

	viewer := pageAs(viewerToken, "/datasets/churn_training")
	require.Contains(t, viewer, "user_stats__spend_30d", "the schema is metadata")
	require.Contains(t, viewer, "churn_v1", "the lineage is metadata")
	require.NotContains(t, viewer, `class="spark"`)
	require.Contains(t, viewer, `hidden: values need a grant of feature view &#34;user_stats&#34; in project &#34;shop&#34;`)
	require.Contains(t, viewer, `hidden: values need a grant of project &#34;shop&#34;`, "labels and keys need the project")

	analyst := pageAs(analystToken, "/datasets/churn_training")
	require.NotContains(t, analyst, `hidden: values need a grant of feature view`)
	require.Contains(t, analyst, `hidden: values need a grant of project`)
	require.Contains(t, analyst, `class="spark"`)

	diff := pageAs(viewerToken, "/datasets/churn_training/diff?a=1&b=2")
	require.Contains(t, diff, "hidden: values need a grant")
	require.NotContains(t, pageAs(readerToken, "/datasets/churn_training/diff?a=1&b=2"), "hidden: values need a grant")
}

// TestSignInRefusesACallbackOnAUIPage: a redirect URL whose path is one of the UI's own pages
// is a startup error, not a routing conflict.
func TestSignInRefusesACallbackOnAUIPage(t *testing.T) {
	f := newFixture(t)
	cfg := &auth.Config{APITokens: []auth.APIToken{{Name: "viewer", SHA256: sha256.Sum256([]byte(viewerToken))}}}
	g, err := auth.New(context.Background(), cfg, auth.Options{Project: project, Resources: Resources, OpenHTTPPaths: OpenPaths})
	require.NoError(t, err)
	for _, p := range []string{"/signin", "/signin/oidc", "/signout", "/healthz", "/static/x"} {
		ui := auth.UIConfig{OIDC: &auth.OIDCConfig{Issuer: "https://idp.example.com", ClientID: "q", RedirectURL: "https://q.example.com" + p}}
		_, err := New(Options{Project: project, Registry: f.reg, Guard: g, SignIn: ui})
		require.ErrorContains(t, err, "is one of the UI's own pages", p)
	}
}
