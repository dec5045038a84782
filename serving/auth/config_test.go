package auth_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/serving/auth/authtest"
)

// parseServing decodes doc (a quiver.yaml) and hands its serving: node to ParseConfig, as
// quiver serve does.
func parseServing(t *testing.T, dir, doc string) (*auth.Config, error) {
	t.Helper()
	var top struct {
		Serving yaml.Node `yaml:"serving"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(doc), &top))
	var n *yaml.Node
	if top.Serving.Kind != 0 {
		n = &top.Serving
	}
	return auth.ParseConfig("quiver.yaml", dir, n)
}

func TestParseConfigGood(t *testing.T) {
	dir := t.TempDir()
	authtest.WriteFile(t, filepath.Join(dir, "policy.yaml"), []byte(`
grants:
  - principals: [group:growth]
    feature_services: [churn_v1]
`))
	c, err := parseServing(t, dir, `
project: shop
serving:
  reflection: false
  tls: { cert: tls/server.pem, key: tls/server-key.pem, client_ca: /etc/ca.pem, client_auth: verify_if_given }
  jwt:
    jwks_url: https://idp.example.com/jwks.json
    issuer: https://idp.example.com/
    audience: quiver
    clock_skew: 1m
  api_tokens:
    - { name: nightly, sha256: `+authtest.SHA256("s3cret")+` }
  policy_file: policy.yaml
`)
	require.NoError(t, err)
	require.False(t, c.Reflection)
	require.Equal(t, filepath.Join(dir, "tls/server.pem"), c.TLS.CertFile)
	require.Equal(t, "/etc/ca.pem", c.TLS.ClientCAFile)
	require.Equal(t, []string{"quiver"}, c.JWT.Audiences)
	require.Equal(t, "groups", c.JWT.GroupsClaim, "default")
	require.Equal(t, auth.DefaultAlgorithms, c.JWT.Algorithms, "default")
	require.Len(t, c.APITokens, 1)
	require.Equal(t, filepath.Join(dir, "policy.yaml"), c.PolicyFile)
	require.Equal(t, []string{"group:growth"}, c.Policy.Grants[0].Principals)
	require.True(t, c.AuthEnabled())

	c, err = parseServing(t, dir, "project: shop\n")
	require.NoError(t, err)
	require.False(t, c.AuthEnabled())
	require.True(t, c.Reflection, "reflection is on by default")
}

// TestParseConfigBad is the bad-fixture table: each input must fail with an error that
// names the position and says what would be valid.
func TestParseConfigBad(t *testing.T) {
	dir := t.TempDir()
	authtest.WriteFile(t, filepath.Join(dir, "bad-policy.yaml"), []byte("grants:\n  - principals: [subject:a]\n    modles: [churn]\n"))
	authtest.WriteFile(t, filepath.Join(dir, "broken.yaml"), []byte("grants:\n\t- x\n"))
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"unknown key", "serving:\n  polcy: {}\n", []string{`quiver.yaml:2:3: unknown key "polcy" in serving`, `did you mean "policy"?`}},
		{"not a mapping", "serving: [1]\n", []string{"quiver.yaml:1:10: serving must be a mapping"}},
		{"reflection not bool", "serving:\n  reflection: maybe\n", []string{"quiver.yaml:2:15: serving reflection must be true or false"}},
		{"tls half", "serving:\n  tls: { cert: a.pem }\n", []string{"quiver.yaml:2:8: tls needs both cert and key"}},
		{"client_auth bad", "serving:\n  tls: { cert: a, key: b, client_ca: c, client_auth: always }\n", []string{`tls client_auth "always" is not valid; valid values: require, verify_if_given`}},
		{"client_ca without cert", "serving:\n  tls:\n    client_ca: ca.pem\n", []string{"quiver.yaml:3:16: tls client_ca (mTLS) needs the server's cert and key"}},
		{"jwt no source", "serving:\n  jwt: { issuer: x, audience: y }\n", []string{"quiver.yaml:2:8: jwt needs exactly one of jwks_file and jwks_url"}},
		{"jwt both sources", "serving:\n  jwt: { issuer: x, audience: y, jwks_file: a, jwks_url: https://b/ }\n", []string{"jwt needs exactly one of jwks_file and jwks_url"}},
		{"jwt no issuer", "serving:\n  jwt: { jwks_file: a, audience: y }\n", []string{"jwt needs issuer"}},
		{"jwt no audience", "serving:\n  jwt: { jwks_file: a, issuer: x }\n", []string{"jwt needs audience"}},
		{"jwt bad url", "serving:\n  jwt: { jwks_url: 'ftp://x', issuer: x, audience: y }\n", []string{`jwt jwks_url "ftp://x" is not an http(s) URL`}},
		{"jwt bad skew", "serving:\n  jwt: { jwks_file: a, issuer: x, audience: y, clock_skew: 5 }\n", []string{`jwt clock_skew "5" is not a duration`}},
		{"jwt hmac", "serving:\n  jwt: { jwks_file: a, issuer: x, audience: y, algorithms: [HS256] }\n", []string{`jwt algorithm "HS256" is not accepted`}},
		{"token bad hash", "serving:\n  api_tokens: [{ name: a, sha256: abc }]\n", []string{"quiver.yaml:2:35: api token sha256 must be 64 hex digits"}},
		{"token no name", "serving:\n  api_tokens: [{ sha256: " + authtest.SHA256("x") + " }]\n", []string{"api token needs name and sha256"}},
		{"token twice", "serving:\n  api_tokens:\n    - { name: a, sha256: " + authtest.SHA256("x") + " }\n    - { name: a, sha256: " + authtest.SHA256("y") + " }\n", []string{`quiver.yaml:4:15: api token "a" is defined twice`}},
		{"grants not list", "serving:\n  policy: { grants: yes }\n", []string{"grants must be a list"}},
		{"policy empty", "serving:\n  api_tokens: [{ name: a, sha256: " + authtest.SHA256("x") + " }]\n  policy: {}\n", []string{"serving policy needs grants"}},
		{"grant unknown key", "serving:\n  policy:\n    grants:\n      - { principals: ['*'], model: [churn] }\n", []string{`quiver.yaml:4:30: unknown key "model" in grant`, `did you mean "models"?`}},
		{"grant no principals", "serving:\n  policy:\n    grants:\n      - { models: [churn] }\n", []string{"quiver.yaml:4:9: grant needs principals"}},
		{"grant nothing", "serving:\n  policy:\n    grants:\n      - { principals: ['*'] }\n", []string{"grant grants nothing"}},
		{"bad principal", "serving:\n  policy:\n    grants:\n      - { principals: [user:alice], models: [churn] }\n", []string{`quiver.yaml:4:24: principal "user:alice" must start with subject:, group:, cert: or token:`}},
		{"empty principal", "serving:\n  policy:\n    grants:\n      - { principals: ['subject:'], models: [churn] }\n", []string{`principal "subject:" names nobody`}},
		{"bad project", "serving:\n  policy:\n    grants:\n      - { principals: ['*'], projects: [shop-eu] }\n", []string{`grant project "shop-eu" is not a project name`}},
		{"bad view name", "serving:\n  policy:\n    grants:\n      - { principals: ['*'], feature_views: ['user stats'] }\n", []string{`grant feature_view: "user stats" is not a valid name`}},
		{"bad qualified", "serving:\n  policy:\n    grants:\n      - { principals: ['*'], models: ['a-b/churn'] }\n", []string{`project "a-b" is not a valid name`}},
		{"list of numbers", "serving:\n  policy:\n    grants:\n      - { principals: [[1]], models: [churn] }\n", []string{"must be a list of non-empty strings, got a list in it"}},
		{"unknown token name",
			"serving:\n  api_tokens: [{ name: nightly, sha256: " + authtest.SHA256("x") + " }]\n  policy:\n    grants:\n      - { principals: ['token:nightlx'], models: [churn] }\n", []string{`quiver.yaml:5:9: grant names API token "nightlx"`, `did you mean "nightly"?`}},
		{"policy without auth", "serving:\n  policy:\n    grants:\n      - { principals: ['*'], models: [churn] }\n", []string{"a policy is configured but no authentication method is"}},
		{"inline and file", "serving:\n  policy: { grants: [] }\n  policy_file: p.yaml\n", []string{"quiver.yaml:3:16: give the policy inline (policy:) or in a file (policy_file:), not both"}},
		{"policy file missing", "serving:\n  policy_file: nowhere.yaml\n", []string{"read policy file", filepath.Join(dir, "nowhere.yaml")}},
		{"policy file bad key", "serving:\n  policy_file: bad-policy.yaml\n", []string{filepath.Join(dir, "bad-policy.yaml") + `:3:5: unknown key "modles" in grant`}},
		{"policy file bad yaml", "serving:\n  policy_file: broken.yaml\n", []string{filepath.Join(dir, "broken.yaml") + ":2:1: invalid YAML"}},
		{"several at once", "serving:\n  reflection: 1\n  tls: 2\n", []string{"quiver.yaml:2:15:", "quiver.yaml:3:8:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseServing(t, dir, tc.doc)
			require.Error(t, err)
			require.ErrorIs(t, err, auth.ErrConfig)
			require.ErrorIs(t, err, definitions.ErrInvalid, "the CLI exits 1")
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// FuzzParsePolicy: the policy decoder never panics or hangs, and every failure is an
// ErrConfig.
func FuzzParsePolicy(f *testing.F) {
	for _, seed := range []string{
		"grants:\n  - principals: ['*']\n    models: [churn]\n",
		"grants: [{principals: [subject:a, group:b, 'cert:CN=x,O=y', token:t], projects: ['*'], feature_services: [a/b], feature_views: ['*'], models: [x/*]}]",
		"grants: &a [*a]",
		"grants:\n  - <<: {principals: [x]}\n",
		"", "grants: ~", "[]", "grants:\n - 1\n", "\t", "grants: [{principals: [\"\\u0000\"]}]",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := auth.ParsePolicy("policy.yaml", []byte(doc))
		if err != nil {
			if !errors.Is(err, auth.ErrConfig) {
				t.Fatalf("error is not ErrConfig: %v", err)
			}
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if p == nil {
			t.Fatal("nil policy without an error")
		}
	})
}

func TestServerTLSNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	ca := authtest.NewCA(t, "ca")
	cert, key := ca.Server(t).Write(t, dir, "server")
	caFile := filepath.Join(dir, "ca.pem")
	authtest.WriteFile(t, caFile, ca.PEM)
	junk := filepath.Join(dir, "junk.pem")
	authtest.WriteFile(t, junk, []byte("not pem"))

	cfg, err := auth.ServerTLS(auth.TLSConfig{CertFile: cert, KeyFile: key, ClientCAFile: caFile})
	require.NoError(t, err)
	require.NotNil(t, cfg.ClientCAs)

	for _, tc := range []struct {
		tls  auth.TLSConfig
		want string
	}{
		{auth.TLSConfig{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: key}, filepath.Join(dir, "missing.pem")},
		{auth.TLSConfig{CertFile: cert, KeyFile: filepath.Join(dir, "nokey.pem")}, filepath.Join(dir, "nokey.pem")},
		{auth.TLSConfig{CertFile: junk, KeyFile: key}, junk},
		{auth.TLSConfig{CertFile: cert, KeyFile: key, ClientCAFile: junk}, "TLS client CA " + junk + " holds no PEM certificates"},
		{auth.TLSConfig{CertFile: cert, KeyFile: key, ClientCAFile: filepath.Join(dir, "noca.pem")}, filepath.Join(dir, "noca.pem")},
	} {
		_, err := auth.ServerTLS(tc.tls)
		require.ErrorIs(t, err, auth.ErrConfig)
		require.ErrorContains(t, err, tc.want)
	}
	require.NoError(t, os.Chmod(key, 0o000))
	if _, err := os.ReadFile(key); err != nil { // not root: the file is unreadable
		_, err := auth.ServerTLS(auth.TLSConfig{CertFile: cert, KeyFile: key})
		require.ErrorContains(t, err, key)
	}
}

func TestCheckBind(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:6566", "localhost:6566", "[::1]:6566", "127.1.2.3:0"} {
		require.NoError(t, auth.CheckBind(ok), ok)
	}
	for _, bad := range []string{"0.0.0.0:6566", ":6566", "[::]:6566", "10.0.0.5:6566", "example.com:6566"} {
		err := auth.CheckBind(bad)
		require.ErrorIs(t, err, auth.ErrInsecureBind, bad)
		require.ErrorIs(t, err, definitions.ErrInvalid)
		require.ErrorContains(t, err, "--allow-unauthenticated")
	}
}
