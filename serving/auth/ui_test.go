package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/serving/auth/authtest"
)

func TestParseUIConfig(t *testing.T) {
	dir := t.TempDir()
	key := strings.Repeat("k", 44)
	authtest.WriteFile(t, filepath.Join(dir, "ui.key"), []byte(key+"\n"))
	authtest.WriteFile(t, filepath.Join(dir, "oidc.secret"), []byte("file-secret\n"))
	doc := `
serving:
  api_tokens: [{ name: viewer, sha256: ` + authtest.SHA256("v") + ` }]
  ui:
    session_ttl: 2h
    session_key_file: ui.key
    secure_cookies: true
    oidc:
      issuer: https://accounts.example.com
      client_id: quiver-ui
      client_secret_file: oidc.secret
      redirect_url: https://quiver.example.com/auth/callback
      scopes: [openid, groups]
      subject_claim: email
  policy:
    grants:
      - { principals: [token:viewer, group:data-eng], ui: [shop] }
`
	c, err := parseWithEnv(t, dir, doc, nil)
	require.NoError(t, err)
	require.Equal(t, 2*time.Hour, c.UI.SessionTTL)
	require.Equal(t, key, c.UI.SessionKey.Reveal())
	require.Equal(t, filepath.Join(dir, "ui.key"), c.UI.SessionKeyFile)
	require.True(t, c.UI.SecureCookies)
	o := c.UI.OIDC
	require.NotNil(t, o)
	require.Equal(t, "file-secret", o.ClientSecret.Reveal())
	require.Equal(t, []string{"groups"}, o.Scopes, "openid is always requested, not listed")
	require.Equal(t, "email", o.SubjectClaim)
	require.Equal(t, "groups", o.GroupsClaim, "default")
	require.Equal(t, "accounts.example.com", o.Name, "default: the issuer's host")
	require.Equal(t, []string{"shop"}, c.Policy.Grants[0].UI)

	// Secrets never print: not with any verb, not as JSON, not through slog.
	for _, s := range []string{fmt.Sprint(o.ClientSecret), fmt.Sprintf("%v %+v %#v %s %q %x", o, o, o, o.ClientSecret, o.ClientSecret, o.ClientSecret), fmt.Sprintf("%+v", c.UI)} {
		require.NotContains(t, s, "file-secret")
		require.NotContains(t, s, key)
	}
	b, err := json.Marshal(c.UI)
	require.NoError(t, err)
	require.NotContains(t, string(b), "file-secret")
	require.NotContains(t, string(b), key)
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "secret", o.ClientSecret, "ui", c.UI)
	require.NotContains(t, logged.String(), "file-secret")
	require.Contains(t, logged.String(), "[redacted]")

	// The environment: the session key variable wins over the file; client_secret_env names
	// the secret's variable; without either, $QUIVER_UI_OIDC_CLIENT_SECRET.
	envKey := strings.Repeat("e", 32)
	doc2 := strings.Replace(doc, "client_secret_file: oidc.secret", "client_secret_env: MY_SECRET", 1)
	c, err = parseWithEnv(t, dir, doc2, map[string]string{auth.EnvSessionKey: envKey, "MY_SECRET": "env-secret"})
	require.NoError(t, err)
	require.Equal(t, envKey, c.UI.SessionKey.Reveal())
	require.Empty(t, c.UI.SessionKeyFile)
	require.Equal(t, "env-secret", c.UI.OIDC.ClientSecret.Reveal())
	doc3 := strings.Replace(doc, "      client_secret_file: oidc.secret\n", "", 1)
	c, err = parseWithEnv(t, dir, doc3, map[string]string{auth.EnvOIDCClientSecret: "default-env"})
	require.NoError(t, err)
	require.Equal(t, "default-env", c.UI.OIDC.ClientSecret.Reveal())

	// No ui section: the defaults, a generated key (zero here).
	c, err = parseWithEnv(t, dir, "serving:\n  api_tokens: [{ name: a, sha256: "+authtest.SHA256("a")+" }]\n", nil)
	require.NoError(t, err)
	require.Equal(t, auth.DefaultSessionTTL, c.UI.SessionTTL)
	require.True(t, c.UI.SessionKey.IsZero())
	require.Nil(t, c.UI.OIDC)

	// OIDC alone is enough authentication for the UI (and a policy), not for serving.
	c, err = parseWithEnv(t, dir, "serving:\n  ui:\n    oidc: { issuer: 'https://idp.example.com', client_id: q, redirect_url: 'http://127.0.0.1:8484/cb' }\n  policy:\n    grants: [{ principals: ['group:a'], ui: ['*'] }]\n",
		map[string]string{auth.EnvOIDCClientSecret: "s"})
	require.NoError(t, err)
	require.True(t, c.UIAuthEnabled())
	require.False(t, c.AuthEnabled())
}

// parseWithEnv is parseServing with the environment env.
func parseWithEnv(t *testing.T, dir, doc string, env map[string]string) (*auth.Config, error) {
	t.Helper()
	var top struct {
		Serving yaml.Node `yaml:"serving"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(doc), &top))
	var n *yaml.Node
	if top.Serving.Kind != 0 {
		n = &top.Serving
	}
	return auth.ParseConfigEnv("quiver.yaml", dir, n, func(k string) string { return env[k] })
}

func TestParseUIConfigBad(t *testing.T) {
	dir := t.TempDir()
	authtest.WriteFile(t, filepath.Join(dir, "short.key"), []byte("too-short"))
	authtest.WriteFile(t, filepath.Join(dir, "empty.secret"), []byte("\n"))
	tok := "  api_tokens: [{ name: a, sha256: " + authtest.SHA256("a") + " }]\n"
	oidc := func(fields string) string {
		return "serving:\n" + tok + "  ui:\n    oidc: { " + fields + " }\n"
	}
	good := "issuer: 'https://idp.example.com', client_id: q, redirect_url: 'https://q.example.com/cb'"
	for _, tc := range []struct {
		name, doc string
		env       map[string]string
		want      []string
	}{
		{"unknown ui key", "serving:\n" + tok + "  ui:\n    session_tll: 1h\n", nil, []string{`quiver.yaml:4:5: unknown key "session_tll" in serving ui`, `did you mean "session_ttl"?`}},
		{"short ttl", "serving:\n" + tok + "  ui:\n    session_ttl: 10s\n", nil, []string{"ui session_ttl 10s is too short"}},
		{"bad ttl", "serving:\n" + tok + "  ui:\n    session_ttl: forever\n", nil, []string{`ui session_ttl "forever" is not a duration`}},
		{"short key file", "serving:\n" + tok + "  ui:\n    session_key_file: short.key\n", nil, []string{"short.key holds 9 bytes; a session key needs at least 32", "head -c 32 /dev/urandom"}},
		{"missing key file", "serving:\n" + tok + "  ui:\n    session_key_file: nowhere.key\n", nil, []string{"ui session_key_file: open " + filepath.Join(dir, "nowhere.key")}},
		{"short key env", "serving:\n" + tok, map[string]string{auth.EnvSessionKey: "abc"}, []string{"$QUIVER_UI_SESSION_KEY holds 3 bytes"}},
		{"oidc missing fields", oidc("client_id: q"), map[string]string{auth.EnvOIDCClientSecret: "s"}, []string{"oidc needs issuer", "oidc needs redirect_url"}},
		{"oidc no secret", oidc(good), nil, []string{"oidc needs the client secret: $QUIVER_UI_OIDC_CLIENT_SECRET is not set"}},
		{"oidc named env unset", oidc(good + ", client_secret_env: IDP_SECRET"), nil, []string{"$IDP_SECRET is not set"}},
		{"oidc both secrets", oidc(good + ", client_secret_env: X, client_secret_file: y"), map[string]string{"X": "s"}, []string{"give client_secret_file or client_secret_env, not both"}},
		{"oidc empty secret file", oidc(good + ", client_secret_file: empty.secret"), nil, []string{"empty.secret is empty"}},
		{"oidc bad issuer", oidc("issuer: idp.example.com, client_id: q, redirect_url: 'https://q/cb'"), map[string]string{auth.EnvOIDCClientSecret: "s"}, []string{`oidc issuer "idp.example.com" is not an http(s) URL`}},
		{"oidc redirect without path", oidc("issuer: 'https://i', client_id: q, redirect_url: 'https://q.example.com'"), map[string]string{auth.EnvOIDCClientSecret: "s"}, []string{"is not an http(s) URL with a path"}},
		{"oidc unknown key", oidc(good + ", client_secrt: x"), map[string]string{auth.EnvOIDCClientSecret: "s"}, []string{`unknown key "client_secrt" in serving ui oidc`}},
		{"ui grant bad project", "serving:\n" + tok + "  policy:\n    grants:\n      - { principals: ['*'], ui: [shop-eu] }\n", nil, []string{`grant ui project "shop-eu" is not a project name`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseWithEnv(t, dir, tc.doc, tc.env)
			if err == nil {
				err = c.CheckUI()
			}
			require.Error(t, err)
			require.ErrorIs(t, err, auth.ErrConfig)
			require.ErrorIs(t, err, definitions.ErrInvalid, "the CLI exits 1")
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			for _, secret := range tc.env {
				if len(secret) > 2 {
					require.NotContains(t, err.Error(), secret, "no secret in an error")
				}
			}
		})
	}
}

// TestUISecretsDoNotStopServing: the UI's secrets are needed by quiver ui only: a
// configuration whose OIDC client secret and session key file are missing still parses (for
// quiver serve), and CheckUI names both.
func TestUISecretsDoNotStopServing(t *testing.T) {
	doc := "serving:\n  api_tokens: [{ name: a, sha256: " + authtest.SHA256("a") + " }]\n  ui:\n    session_key_file: gone.key\n" +
		"    oidc: { issuer: 'https://idp.example.com', client_id: q, redirect_url: 'https://q.example.com/cb' }\n"
	c, err := parseWithEnv(t, t.TempDir(), doc, nil)
	require.NoError(t, err)
	require.True(t, c.AuthEnabled())
	err = c.CheckUI()
	require.ErrorIs(t, err, auth.ErrConfig)
	require.ErrorContains(t, err, "quiver.yaml:4:23: ui session_key_file: open ")
	require.ErrorContains(t, err, "$QUIVER_UI_OIDC_CLIENT_SECRET is not set")
}

// TestUIGrant: a ui grant lets its principals browse the UI of the projects it names and
// nothing else — no feature service, view, model, push or the whole project; a project grant
// covers the UI too.
func TestUIGrant(t *testing.T) {
	policy := &auth.Policy{Grants: []auth.Grant{
		{Principals: []string{"token:viewer"}, UI: []string{"shop"}},
		{Principals: []string{"group:everyone"}, UI: []string{"*"}},
		{Principals: []string{"token:owner"}, Projects: []string{"shop"}},
		{Principals: []string{"token:analyst"}, FeatureViews: []string{"user_stats"}},
	}}
	tokens := []auth.APIToken{{Name: "viewer", SHA256: sum("v")}, {Name: "owner", SHA256: sum("o")}, {Name: "analyst", SHA256: sum("a")}}
	f := newGuard(t, &auth.Config{APITokens: tokens, Policy: policy})
	g := f.guard
	ui := func(project string) auth.Resource { return auth.Resource{Kind: auth.KindUI, Project: project} }
	view := auth.Resource{Kind: auth.KindFeatureView, Project: "shop", Name: "user_stats"}
	whole := auth.Resource{Kind: auth.KindProject, Project: "shop"}
	viewer, owner, analyst := &auth.Principal{Token: "viewer"}, &auth.Principal{Token: "owner"}, &auth.Principal{Token: "analyst"}
	everyone := &auth.Principal{Subject: "x", Groups: []string{"everyone"}}

	require.True(t, g.Allows(viewer, ui("shop")))
	require.False(t, g.Allows(viewer, ui("other")))
	require.False(t, g.Allows(viewer, view), "ui grants no feature values")
	require.False(t, g.Allows(viewer, whole))
	require.True(t, g.Allows(everyone, ui("shop")))
	require.True(t, g.Allows(everyone, ui("other")))
	require.True(t, g.Allows(owner, ui("shop")), "a project grant covers the ui")
	require.True(t, g.Allows(owner, view))
	require.False(t, g.Allows(analyst, ui("shop")), "a view grant is not the ui")
	require.True(t, g.Allows(analyst, view))
	require.False(t, g.Allows(nil, ui("shop")))

	// On the serving surfaces, a ui grant is nothing.
	ctx := auth.WithPrincipal(context.Background(), viewer)
	err := g.Authorize(ctx, auth.MethodGetOnlineFeatures, nil)
	require.ErrorIs(t, err, auth.ErrPermissionDenied)
	err = g.AuthorizeReads(ctx, auth.MethodGetOnlineFeatures, "", ui("other"))
	require.ErrorContains(t, err, `token:viewer is not granted the ui of project "other"`)

	// Without a policy every authenticated principal may browse.
	open := newGuard(t, &auth.Config{APITokens: tokens})
	require.True(t, open.guard.Allows(viewer, ui("shop"), view))
}

// TestAuthenticateToken: the sign-in form's token is verified like a bearer header: an API
// token (no expiry), or a JWT (with its expiry); anything else is ErrUnauthenticated.
func TestAuthenticateToken(t *testing.T) {
	s := authtest.NewEC(t, "k1")
	dir := t.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	authtest.WriteFile(t, jwks, authtest.JWKS(t, s))
	f := newGuard(t, &auth.Config{
		APITokens: []auth.APIToken{{Name: "viewer", SHA256: sum("viewer-secret")}},
		JWT:       &auth.JWTConfig{JWKSFile: jwks, Issuer: issuer, Audiences: []string{audience}},
	})
	g := f.guard
	require.True(t, g.AcceptsTokens())
	require.True(t, g.HasToken("viewer"))
	require.False(t, g.HasToken("nightly"))

	p, exp, err := g.AuthenticateToken(context.Background(), " viewer-secret\n")
	require.NoError(t, err)
	require.Equal(t, "token:viewer", p.String())
	require.True(t, exp.IsZero())

	want := f.clock.Now().Add(time.Hour).Truncate(time.Second)
	tok := s.Token(t, claims("alice", want, map[string]any{"groups": []string{"eng"}}))
	p, exp, err = g.AuthenticateToken(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, []string{"subject:alice", "group:eng"}, p.IDs())
	require.True(t, want.Equal(exp), "%s != %s", exp, want)
	// Again, from the verified-token cache: the same expiry.
	_, exp, err = g.AuthenticateToken(context.Background(), tok)
	require.NoError(t, err)
	require.True(t, want.Equal(exp))

	for _, bad := range []string{"", "   ", "guess", s.Token(t, claims("alice", f.clock.Now().Add(-time.Hour), nil))} {
		_, _, err := g.AuthenticateToken(context.Background(), bad)
		require.ErrorIs(t, err, auth.ErrUnauthenticated, "%q", bad)
	}
	_, _, err = g.AuthenticateToken(context.Background(), "guess")
	require.NotContains(t, err.Error(), "guess", "the token is never repeated")

	// Principal.Merge: a certificate and a session.
	m := (&auth.Principal{CertSubject: "CN=a"}).Merge(&auth.Principal{Token: "viewer"})
	require.Equal(t, []string{"cert:CN=a", "token:viewer"}, m.IDs())
	require.Equal(t, "token:viewer", (*auth.Principal)(nil).Merge(&auth.Principal{Token: "viewer"}).String())
}

// TestServeRefusesGrantsItCannotEnforce: with OIDC (the UI's sign-in) as the only
// authentication, quiver serve authenticates nobody, so a grant on serving surfaces (feature
// views, services, models, push, datasets, projects) could not be enforced: CheckServe refuses
// it, naming the grant's line and what would authenticate callers. UI grants are fine, and so
// is a serving section without a policy; either way ServeUnauthenticatedWarning says serve is
// open.
func TestServeRefusesGrantsItCannotEnforce(t *testing.T) {
	dir := t.TempDir()
	const oidc = "serving:\n  ui:\n    oidc: { issuer: 'https://idp.example.com', client_id: q, redirect_url: 'http://127.0.0.1:8484/cb' }\n"
	env := map[string]string{auth.EnvOIDCClientSecret: "s"}
	for _, g := range []string{"feature_views: [user_stats]", "feature_services: [ranking]", "models: [churn]", "push_views: [clicks]", "datasets: [train]", "projects: [shop]"} {
		c, err := parseWithEnv(t, dir, oidc+"  policy:\n    grants:\n      - { principals: ['group:a'], ui: ['*'] }\n      - { principals: ['group:a'], "+g+" }\n", env)
		require.NoError(t, err, "quiver ui accepts it: the UI enforces its own grants")
		err = c.CheckServe()
		require.ErrorIs(t, err, auth.ErrConfig, g)
		require.ErrorContains(t, err, "quiver.yaml:7:", g)
		require.ErrorContains(t, err, "add tls.client_ca, jwt or api_tokens", g)
		require.ErrorContains(t, err, "ui.oidc signs people in to quiver ui only", g)
	}
	for _, doc := range []string{
		oidc + "  policy:\n    grants: [{ principals: ['group:a'], ui: ['*'] }]\n",
		oidc,
	} {
		c, err := parseWithEnv(t, dir, doc, env)
		require.NoError(t, err)
		require.NoError(t, c.CheckServe())
		require.Contains(t, c.ServeUnauthenticatedWarning(), "ui.oidc signs people in to quiver ui only")
	}
	c, err := parseWithEnv(t, dir, "serving:\n  api_tokens: [{ name: a, sha256: "+authtest.SHA256("a")+" }]\n  policy:\n    grants: [{ principals: ['token:a'], feature_views: ['*'] }]\n", nil)
	require.NoError(t, err)
	require.NoError(t, c.CheckServe())
	require.Empty(t, c.ServeUnauthenticatedWarning())
	var none *auth.Config
	require.NoError(t, none.CheckServe())
	require.Empty(t, none.ServeUnauthenticatedWarning(), "no serving section: nothing suggests auth was wanted")
}
