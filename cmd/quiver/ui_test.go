package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/serving/auth/authtest"
)

// uiProc is a `quiver ui` running in-process.
type uiProc struct {
	url    string
	cancel context.CancelFunc
	done   chan result
}

// startUI runs quiver ui -o json on a free port and waits for the URL it prints.
func startUI(t *testing.T, dir string, env map[string]string, extra ...string) *uiProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	p := &uiProc{cancel: cancel, done: make(chan result, 1)}
	var errOut strings.Builder
	go func() {
		code := run(ctx, append([]string{"-C", dir, "-o", "json", "ui", "--addr", "127.0.0.1:0"}, extra...), pw, &errOut, func(k string) string { return env[k] })
		pw.Close()
		p.done <- result{code: code, stderr: errOut.String()}
	}()
	dec := json.NewDecoder(pr)
	var v struct {
		Project string `json:"project"`
		URL     string `json:"url"`
	}
	require.NoError(t, dec.Decode(&v), "quiver ui printed no URL")
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	require.Equal(t, "shop", v.Project)
	p.url = v.URL
	t.Cleanup(func() {
		cancel()
		select {
		case r := <-p.done:
			require.Equal(t, exitOK, r.code, r.stderr)
		case <-time.After(20 * time.Second):
			t.Error("quiver ui did not stop")
		}
	})
	return p
}

func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestUICommand: quiver ui serves the project's catalog from the configured registry and
// stops cleanly when cancelled.
func TestUICommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	r := quiver(t, nil, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)

	p := startUI(t, dir, nil)
	code, body := httpGet(t, p.url, "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "user_stats")
	code, body = httpGet(t, p.url+"views/user_stats", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "clicks_7d")
	code, _ = httpGet(t, p.url+"static/style.css", "")
	require.Equal(t, http.StatusOK, code)
}

// TestUICommandRefusesExposure: without authentication, a non-loopback address is a usage
// error (nothing is served), as for quiver serve.
func TestUICommandRefusesExposure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	r := quiver(t, nil, "-C", dir, "-o", "json", "ui", "--addr", "0.0.0.0:0")
	require.Equal(t, exitUsage, r.code, r.stderr)
	e := checkErrorJSON(t, "ui", r)
	require.Equal(t, kindUsage, e.Kind)
	require.Contains(t, r.stderr, "--allow-unauthenticated")

	r = quiver(t, nil, "-C", dir, "ui", "extra")
	require.Equal(t, exitUsage, r.code)

	// A busy port fails the start at once, naming the address.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	r = quiver(t, nil, "-C", dir, "ui", "--addr", busy.Addr().String())
	require.NotEqual(t, exitOK, r.code)
	require.Contains(t, r.stderr, "listen on "+busy.Addr().String())
}

// TestUICommandAuthentication: with api_tokens in serving:, every page but /healthz and the
// static assets needs a valid bearer token.
func TestUICommandAuthentication(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	path := filepath.Join(dir, "quiver.yaml")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	writeFile(t, path, strings.TrimRight(string(b), "\n")+"\nserving:\n  api_tokens:\n    - { name: browser, sha256: "+authtest.SHA256("ui-secret")+" }\n")
	r := quiver(t, nil, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)

	p := startUI(t, dir, nil)
	code, body := httpGet(t, p.url, "")
	require.Equal(t, http.StatusUnauthorized, code, body)
	require.NotContains(t, body, "user_stats")
	code, _ = httpGet(t, p.url+"views/user_stats", "wrong-secret")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body = httpGet(t, p.url+"views/user_stats", "ui-secret")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "clicks_7d")
	code, _ = httpGet(t, p.url+"healthz", "")
	require.Equal(t, http.StatusOK, code)

	// A browser is sent to the sign-in page instead (issue 28).
	req, err := http.NewRequest(http.MethodGet, p.url+"runs", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/signin?next=%2Fruns", resp.Header.Get("Location"))
	code, body = httpGet(t, p.url+"signin", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `id="signin-form"`)
}

// TestUICommandOIDC: serving.ui.oidc needs its client secret, read from the environment (or a
// file) at startup; the error names the variable, and the secret is never printed.
func TestUICommandOIDC(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	path := filepath.Join(dir, "quiver.yaml")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	writeFile(t, path, strings.TrimRight(string(b), "\n")+`
serving:
  ui:
    oidc:
      issuer: https://idp.example.com
      client_id: quiver-ui
      redirect_url: http://127.0.0.1:8484/signin/oidc/callback
      name: Example IdP
  policy:
    grants: [{ principals: ["group:data-eng"], ui: [shop] }]
`)
	r := quiver(t, nil, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)

	r = quiver(t, nil, "-C", dir, "ui", "--addr", "127.0.0.1:0")
	require.Equal(t, exitInvalid, r.code, r.stderr)
	require.Contains(t, r.stderr, "oidc needs the client secret: $QUIVER_UI_OIDC_CLIENT_SECRET is not set")

	const secret = "s3cret-client-value"
	p := startUI(t, dir, map[string]string{"QUIVER_UI_OIDC_CLIENT_SECRET": secret, "QUIVER_UI_SESSION_KEY": strings.Repeat("k", 32)})
	code, body := httpGet(t, p.url+"signin", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "Sign in with Example IdP")
	require.NotContains(t, body, secret)
	code, _ = httpGet(t, p.url, "")
	require.Equal(t, http.StatusUnauthorized, code, "OIDC alone still guards every page")
}

// TestServeWithOIDCOnly: OIDC signs people in to quiver ui only. A serving: section with it as
// the only authentication and a grant on serving surfaces used to start quiver serve
// unauthenticated, the grant silently unenforced; now serve refuses to start (exit 1, naming
// the grant and what would authenticate callers). With UI grants only, serve starts and warns
// that it authenticates nobody.
func TestServeWithOIDCOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	path := filepath.Join(dir, "quiver.yaml")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	base := strings.TrimRight(string(b), "\n") + `
serving:
  ui:
    oidc: { issuer: 'https://idp.example.com', client_id: quiver-ui, redirect_url: 'http://127.0.0.1:8484/cb' }
  policy:
    grants:
      - { principals: ["group:data-eng"], ui: [shop] }
`
	env := map[string]string{"QUIVER_UI_OIDC_CLIENT_SECRET": "s3cret-client-value", "QUIVER_ONNXRUNTIME_LIB": onnxLib(t)}
	writeFile(t, path, base+`      - { principals: ["group:data-eng"], feature_views: [user_stats] }
`)
	require.Equal(t, exitOK, quiver(t, env, "-C", dir, "apply").code)
	r := quiver(t, env, "-C", dir, "serve", "--addr", "127.0.0.1:0", "--metrics-addr", "")
	require.Equal(t, exitInvalid, r.code, r.stderr)
	require.Contains(t, r.stderr, "quiver.yaml:")
	require.Contains(t, r.stderr, "ui.oidc signs people in to quiver ui only")
	require.Contains(t, r.stderr, "add tls.client_ca, jwt or api_tokens")
	require.NotContains(t, r.stderr, "s3cret-client-value")

	writeFile(t, path, base)
	h, res := serveUntilHealthy(t, dir, env)
	require.Equal(t, exitOK, h.code, h.stderr+res.stderr)
	require.Equal(t, exitOK, res.code, res.stderr)
	require.Contains(t, res.stderr, "quiver serve (gRPC, HTTP, Flight, push) authenticates nobody")
}
