package auth

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/yamlx"
)

// Defaults and environment variables of the serving.ui section.
const (
	DefaultSessionTTL = 8 * time.Hour
	// MinSessionKeyBytes is the shortest session key accepted: 256 bits.
	MinSessionKeyBytes = 32
	// EnvSessionKey, when set, is the session key; it overrides ui.session_key_file.
	EnvSessionKey = "QUIVER_UI_SESSION_KEY"
	// EnvOIDCClientSecret holds the OIDC client secret when neither client_secret_file nor
	// client_secret_env is given.
	EnvOIDCClientSecret = "QUIVER_UI_OIDC_CLIENT_SECRET"
	DefaultOIDCSubject  = "sub"
	DefaultOIDCGroups   = "groups"
)

// Secret is a credential read from configuration. It prints as [redacted] in every format
// (fmt verbs, JSON, text, slog), so it never reaches a log line or an error message; Reveal
// gives the value to the one place that uses it.
type Secret struct{ value string }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{value: s} }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether the secret is unset.
func (s Secret) IsZero() bool { return s.value == "" }

const redacted = "[redacted]"

// String, GoString, Format, MarshalText and LogValue all write [redacted].
func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) Format(f fmt.State, _ rune)   { fmt.Fprint(f, redacted) }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }

// UIConfig is the serving.ui section: how people sign in to quiver ui. Without it, the UI
// takes the API tokens and JWTs of the serving: section on its sign-in page, with a session
// key generated per process.
type UIConfig struct {
	// SessionTTL is how long a sign-in lasts. Default 8h.
	SessionTTL time.Duration
	// SessionKey encrypts and authenticates the session cookie (at least 32 bytes). Zero:
	// quiver ui generates one when it starts, so a restart signs everyone out and replicas
	// do not accept each other's cookies.
	SessionKey Secret
	// SessionKeyFile is where SessionKey was read from; empty when it came from
	// $QUIVER_UI_SESSION_KEY or is generated.
	SessionKeyFile string
	// SecureCookies sets the Secure attribute on the UI's cookies even when quiver ui serves
	// plain HTTP (behind a proxy that terminates TLS). Under TLS they are always Secure.
	SecureCookies bool
	// OIDC, when set, offers "Sign in with ..." through an OpenID Connect provider.
	OIDC *OIDCConfig

	// unavailable are the secrets that could not be read: errors for quiver ui (CheckUI),
	// not for the other commands that read the serving: section.
	unavailable definitions.ErrorList
}

// OIDCConfig is an OpenID Connect relying party: the authorization code flow with PKCE.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; its /.well-known/openid-configuration is read.
	Issuer   string
	ClientID string
	// ClientSecret is read from ClientSecretFile, the variable ClientSecretEnv names, or
	// $QUIVER_UI_OIDC_CLIENT_SECRET.
	ClientSecret     Secret
	ClientSecretFile string
	ClientSecretEnv  string
	// RedirectURL is the UI's callback as registered with the provider, e.g.
	// https://quiver.example.com/signin/oidc/callback; its path is served by the UI.
	RedirectURL string
	// Scopes are requested besides openid. Default profile, email.
	Scopes []string
	// SubjectClaim names the ID token claim that becomes the principal subject:NAME.
	// Default sub; email (only when email_verified is not false) and preferred_username are
	// common choices.
	SubjectClaim string
	// GroupsClaim names the claim whose values become group:NAME. Default groups.
	GroupsClaim string
	// Name labels the sign-in button ("Sign in with NAME"). Default: the issuer's host.
	Name string
}

// UIAuthEnabled reports whether the UI has a way to sign people in: any authentication
// method of the serving: section, or OIDC.
func (c *Config) UIAuthEnabled() bool {
	return c.AuthEnabled() || (c != nil && c.UI.OIDC != nil)
}

// ui decodes the serving.ui section. Secrets are read now, so a missing file or variable is a
// startup error naming it; their values never appear in a message.
func (d *decoder) ui(n *yaml.Node, baseDir string) UIConfig {
	u := UIConfig{}
	for _, kv := range d.Mapping(n, "serving ui", []string{"session_ttl", "session_key_file", "secure_cookies", "oidc"}) {
		switch kv.Key {
		case "session_ttl":
			u.SessionTTL = d.duration(kv, "ui")
			if u.SessionTTL != 0 && u.SessionTTL < time.Minute {
				d.Errorf(kv.Value, "ui session_ttl %s is too short; give at least 1m", u.SessionTTL)
			}
		case "session_key_file":
			u.SessionKeyFile = d.path(kv, "ui", baseDir)
			if u.SessionKeyFile != "" && d.env(EnvSessionKey) == "" {
				data, err := os.ReadFile(u.SessionKeyFile)
				if err != nil {
					d.uiErrorf(kv.Value, "ui session_key_file: %v", err)
					break
				}
				u.SessionKey = NewSecret(strings.TrimSpace(string(data)))
				if len(u.SessionKey.Reveal()) < MinSessionKeyBytes {
					d.uiErrorf(kv.Value, "ui session_key_file %s holds %d bytes; a session key needs at least %d (make one with: head -c 32 /dev/urandom | base64 > %s)",
						u.SessionKeyFile, len(u.SessionKey.Reveal()), MinSessionKeyBytes, u.SessionKeyFile)
				}
			}
		case "secure_cookies":
			u.SecureCookies = d.Bool(kv, "ui")
		case "oidc":
			u.OIDC = d.oidc(kv.Value, baseDir)
		}
	}
	u.defaults(d.env)
	u.unavailable = d.uiErrs
	return u
}

// defaults fills the zero values and reads $QUIVER_UI_SESSION_KEY with getenv.
func (u *UIConfig) defaults(getenv func(string) string) {
	if u.SessionTTL == 0 {
		u.SessionTTL = DefaultSessionTTL
	}
	if v := strings.TrimSpace(getenv(EnvSessionKey)); v != "" {
		u.SessionKey, u.SessionKeyFile = NewSecret(v), ""
	}
}

// CheckUI reports what quiver ui needs from the ui: section and could not have: a session
// key file or an OIDC client secret that is missing, unreadable or too short, or a
// $QUIVER_UI_SESSION_KEY that is too short. ParseConfig does not fail on these, so that
// quiver serve and the other commands run without the UI's secrets.
func (c *Config) CheckUI() error {
	u := &c.UI
	if u.SessionKeyFile == "" && !u.SessionKey.IsZero() && len(u.SessionKey.Reveal()) < MinSessionKeyBytes {
		return configErrorf("$%s holds %d bytes; a session key needs at least %d (make one with: head -c 32 /dev/urandom | base64)",
			EnvSessionKey, len(u.SessionKey.Reveal()), MinSessionKeyBytes)
	}
	if err := u.unavailable.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// uiErrorf records a secret of the ui: section that cannot be read (CheckUI).
func (d *decoder) uiErrorf(n *yaml.Node, format string, args ...any) {
	d.uiErrs = append(d.uiErrs, &definitions.Error{Pos: d.pos(n), Msg: fmt.Sprintf(format, args...)})
}

var oidcKeys = []string{"issuer", "client_id", "client_secret_file", "client_secret_env", "redirect_url", "scopes", "subject_claim", "groups_claim", "name"}

func (d *decoder) oidc(n *yaml.Node, baseDir string) *OIDCConfig {
	o := &OIDCConfig{}
	var secretNode *yaml.Node
	for _, kv := range d.Mapping(n, "serving ui oidc", oidcKeys) {
		switch kv.Key {
		case "issuer":
			o.Issuer = d.Str(kv, "oidc")
			if u, err := url.Parse(o.Issuer); o.Issuer != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
				d.Errorf(kv.Value, "oidc issuer %q is not an http(s) URL; want e.g. https://accounts.example.com", o.Issuer)
			}
		case "client_id":
			o.ClientID = d.Str(kv, "oidc")
		case "client_secret_file":
			o.ClientSecretFile = d.path(kv, "oidc", baseDir)
			secretNode = kv.Value
		case "client_secret_env":
			o.ClientSecretEnv = d.Str(kv, "oidc")
			secretNode = kv.Value
		case "redirect_url":
			o.RedirectURL = d.Str(kv, "oidc")
			if u, err := url.Parse(o.RedirectURL); o.RedirectURL != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path == "" || u.Path == "/") {
				d.Errorf(kv.Value, "oidc redirect_url %q is not an http(s) URL with a path; want e.g. https://quiver.example.com/signin/oidc/callback", o.RedirectURL)
			}
		case "scopes":
			o.Scopes = slices.DeleteFunc(d.strList(kv, "oidc"), func(s string) bool { return s == "openid" })
		case "subject_claim":
			o.SubjectClaim = d.Str(kv, "oidc")
		case "groups_claim":
			o.GroupsClaim = d.Str(kv, "oidc")
		case "name":
			o.Name = d.Str(kv, "oidc")
		}
	}
	n = yamlx.Resolve(n)
	if n.Kind != yaml.MappingNode {
		return o
	}
	for _, req := range []struct{ key, value string }{{"issuer", o.Issuer}, {"client_id", o.ClientID}, {"redirect_url", o.RedirectURL}} {
		if req.value == "" {
			d.Errorf(n, "oidc needs %s", req.key)
		}
	}
	switch {
	case o.ClientSecretFile != "" && o.ClientSecretEnv != "":
		d.Errorf(secretNode, "oidc: give client_secret_file or client_secret_env, not both")
	case o.ClientSecretFile != "":
		data, err := os.ReadFile(o.ClientSecretFile)
		if err != nil {
			d.uiErrorf(secretNode, "oidc client_secret_file: %v", err)
		} else if o.ClientSecret = NewSecret(strings.TrimSpace(string(data))); o.ClientSecret.IsZero() {
			d.uiErrorf(secretNode, "oidc client_secret_file %s is empty", o.ClientSecretFile)
		}
	default:
		env, at := o.ClientSecretEnv, secretNode
		if env == "" {
			env, at = EnvOIDCClientSecret, n
		}
		if o.ClientSecret = NewSecret(strings.TrimSpace(d.env(env))); o.ClientSecret.IsZero() {
			d.uiErrorf(at, "oidc needs the client secret: $%s is not set (or give client_secret_file)", env)
		}
	}
	o.defaults()
	return o
}

func (o *OIDCConfig) defaults() {
	if o.Scopes == nil {
		o.Scopes = []string{"profile", "email"}
	}
	if o.SubjectClaim == "" {
		o.SubjectClaim = DefaultOIDCSubject
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = DefaultOIDCGroups
	}
	if o.Name == "" {
		if u, err := url.Parse(o.Issuer); err == nil && u.Host != "" {
			o.Name = u.Host
		} else {
			o.Name = "your identity provider"
		}
	}
}
