package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/serving/auth/authtest"
)

// curlResult is what curl got: the HTTP status (0 when no HTTP exchange happened, e.g. a
// refused TLS handshake) and the body.
type curlResult struct {
	status int
	body   string
	err    string
}

// curl calls the HTTP/JSON API with the real curl binary, as the docs' examples do.
func curl(t *testing.T, args ...string) curlResult {
	t.Helper()
	path, err := exec.LookPath("curl")
	require.NoError(t, err, "curl is needed for the HTTP/JSON acceptance test (Debian package curl)")
	full := append([]string{"-sS", "--max-time", "20", "-w", "\n%{http_code}"}, args...)
	out, err := exec.Command(path, full...).Output()
	res := curlResult{}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.err = string(ee.Stderr)
	}
	s := string(out)
	i := strings.LastIndex(s, "\n")
	require.GreaterOrEqual(t, i, 0, "curl printed %q (%s)", s, res.err)
	res.status, _ = strconv.Atoi(strings.TrimSpace(s[i+1:]))
	res.body = s[:i]
	return res
}

// TestServeAuthMatrixHTTP is issue 12's authentication acceptance over HTTP/JSON with curl:
// the same policy and credentials as over gRPC (TestServeAuthMatrix), through quiver serve
// --http-addr on TCP with TLS.
func TestServeAuthMatrixHTTP(t *testing.T) {
	r := newAuthRepo(t)
	r.setServing(t, fmt.Sprintf(`  tls: { cert: tls/server.pem, key: tls/server-key.pem, client_ca: tls/ca.pem, client_auth: verify_if_given }
  jwt: { jwks_file: jwks.json, issuer: %q, audience: %q }
  api_tokens:
    - { name: nightly, sha256: %s }
  policy_file: policy.yaml
`, testIssuer, testAudience, authtest.SHA256("nightly-secret")))
	port, err := testenv.FreePort()
	require.NoError(t, err)
	httpAddr := "127.0.0.1:" + strconv.Itoa(port)
	p := startAuthServe(t, r, "--http-addr", httpAddr)
	waitHealthy(t, p, dial(t, p, r, true, nil))

	ca := filepath.Join(r.dir, "tls", "ca.pem")
	base := "https://" + httpAddr
	body := func(service string) string {
		return `{"feature_service":"` + service + `","entities":{"user_id":{"val":[{"int64_val":1}]}}}`
	}
	post := func(service string, extra ...string) curlResult {
		args := append([]string{"--cacert", ca, "-H", "Content-Type: application/json", "-d", body(service)}, extra...)
		return curl(t, append(args, base+"/v1/get-online-features")...)
	}
	bearer := func(tok string) []string { return []string{"-H", "Authorization: Bearer " + tok} }

	// Health stays open.
	res := curl(t, "--cacert", ca, base+"/healthz")
	require.Equal(t, 200, res.status, "%s %s", res.body, res.err)

	// No token: 401.
	res = post("churn_v1")
	require.Equal(t, 401, res.status, res.body)
	require.Contains(t, res.body, "unauthenticated")

	// A valid JWT for service A: A's features.
	svcA := r.token(t, r.fileKey, "svc-a", nil)
	res = post("churn_v1", bearer(svcA)...)
	require.Equal(t, 200, res.status, res.body)
	var got struct {
		Features []struct {
			Values struct {
				Int64Values struct {
					Val []string `json:"val"`
				} `json:"int64_values"`
			} `json:"values"`
		} `json:"features"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.body), &got), res.body)
	require.Len(t, got.Features, 3)
	require.Equal(t, []string{"42"}, got.Features[0].Values.Int64Values.Val)

	// The same token for service B: 403 naming what was denied.
	res = post("profile_v1", bearer(svcA)...)
	require.Equal(t, 403, res.status, res.body)
	require.Contains(t, res.body, `feature service \"profile_v1\"`)

	// Expired token: 401.
	expired := r.token(t, r.fileKey, "svc-a", func(c *authtest.Claims) { c.Expiry = time.Now().Add(-time.Hour) })
	res = post("churn_v1", bearer(expired)...)
	require.Equal(t, 401, res.status, res.body)
	require.Contains(t, res.body, "token expired")

	// mTLS: a client certificate from another CA is refused in the handshake (no HTTP status).
	certFile, keyFile := r.evil.Client(t, "scorer", "Quiver tests").Write(t, t.TempDir(), "foreign")
	res = post("churn_v1", append(bearer(svcA), "--cert", certFile, "--key", keyFile)...)
	require.Equal(t, 0, res.status, "a foreign client certificate must fail the handshake: %s", res.body)
	// One from the CA authenticates by itself: granted the model, not the feature service.
	certFile, keyFile = r.ca.Client(t, "scorer", "Quiver tests").Write(t, t.TempDir(), "scorer")
	res = post("churn_v1", "--cert", certFile, "--key", keyFile)
	require.Equal(t, 403, res.status, res.body)
	require.Contains(t, res.body, "cert:CN=scorer,O=Quiver tests")

	metrics := scrape(t, p.metrics)
	require.Contains(t, metrics, `quiver_serving_auth_denials_total{code="Unauthenticated",method="HTTP",reason="no_credentials"} 1`)
}
