package auth

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/yamlx"
)

// Defaults of the serving: section's zero values.
const (
	DefaultClockSkew   = 30 * time.Second
	DefaultGroupsClaim = "groups"
	DefaultJWKSRefresh = 15 * time.Minute
)

// DefaultAlgorithms are the JWS algorithms accepted when jwt.algorithms is not set: the
// asymmetric ones only, so a public key can never be used as an HMAC secret.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Config is the serving: section of quiver.yaml, decoded and checked, its paths absolute.
// The zero Config means no TLS, no authentication and no policy.
type Config struct {
	// Reflection serves gRPC server reflection. Default true.
	Reflection bool
	TLS        TLSConfig
	// JWT, when set, accepts bearer JWTs.
	JWT *JWTConfig
	// APITokens are the static bearer tokens accepted, by name.
	APITokens []APIToken
	// Policy is the authorization policy; nil means every authenticated caller may read
	// everything.
	Policy *Policy
	// PolicyFile is where Policy was read from, when it came from a file.
	PolicyFile string
	// UI is how people sign in to quiver ui (the ui: key); its zero value is filled with
	// the defaults by ParseConfig.
	UI UIConfig
}

// TLSConfig configures the server's TLS and, with ClientCAFile, mTLS.
type TLSConfig struct {
	CertFile, KeyFile string
	// ClientCAFile holds the CA certificates client certificates must chain to.
	ClientCAFile string
	// ClientAuth is "require" (the default with a client CA: the handshake fails without a
	// valid client certificate) or "verify_if_given" (a client may authenticate with a
	// token instead; a certificate it sends must verify).
	ClientAuth string
}

// Client authentication modes of TLSConfig.ClientAuth.
const (
	ClientAuthRequire       = "require"
	ClientAuthVerifyIfGiven = "verify_if_given"
)

// JWTConfig configures bearer JWT verification. Exactly one of JWKSFile and JWKSURL is set;
// Issuer and Audiences are required.
type JWTConfig struct {
	JWKSFile string
	JWKSURL  string
	Issuer   string
	// Audiences: the token's aud must include one of them.
	Audiences []string
	// ClockSkew is the leeway on exp, nbf and iat. Default 30s.
	ClockSkew time.Duration
	// GroupsClaim names the claim holding the caller's groups. Default "groups".
	GroupsClaim string
	// Algorithms are the JWS algorithms accepted. Default DefaultAlgorithms.
	Algorithms []string
	// JWKSRefresh is how old the key set may get before it is read again. Default 15m.
	JWKSRefresh time.Duration
}

// APIToken is a static bearer token: a name for the policy and the SHA-256 of its secret.
type APIToken struct {
	Name   string
	SHA256 [32]byte
}

// Policy grants principals access to resources. A call is allowed when, for every resource
// it touches, some grant names one of the caller's identities (or "*") and covers the
// resource.
type Policy struct {
	Grants []Grant
}

// Grant is one entry of a policy. Names in FeatureServices, FeatureViews and Models are
// NAME (in the served project), PROJECT/NAME, "*" or PROJECT/* (every one of that kind);
// Projects are project names or "*" (every project), and grant everything in them.
type Grant struct {
	Principals      []string
	Projects        []string
	FeatureServices []string
	FeatureViews    []string
	Models          []string
	// PushViews are the feature views the principals may write rows to (PushFeatures).
	PushViews []string
	// UI are the projects (or "*") whose web UI the principals may browse, read-only and
	// without feature values: it grants nothing on the serving surfaces.
	UI []string
	// Datasets are the training datasets the principals may read (Arrow Flight) and build
	// versions of; nothing else grants them.
	Datasets []string
	// Pos is where the grant is written.
	Pos definitions.Pos
}

// AuthEnabled reports whether any authentication method is configured: a client CA, JWTs or
// API tokens.
func (c *Config) AuthEnabled() bool {
	return c != nil && (c.TLS.ClientCAFile != "" || c.JWT != nil || len(c.APITokens) > 0)
}

// CheckServe checks the configuration for quiver serve, beyond Validate (which quiver ui
// shares): a grant on a serving surface (projects, feature services and views, models, push
// views, datasets) needs an authentication method serve can use. Without one serve
// authenticates nobody and enforces nothing, so such a grant is refused rather than silently
// ignored; the UI's OIDC sign-in does not count, as it is not a way to call serve.
func (c *Config) CheckServe() error {
	if c == nil || c.Policy == nil || c.AuthEnabled() {
		return nil
	}
	for _, g := range c.Policy.Grants {
		if len(g.Projects)+len(g.FeatureServices)+len(g.FeatureViews)+len(g.Models)+len(g.PushViews)+len(g.Datasets) == 0 {
			continue
		}
		why := "no authentication method is configured for it"
		if c.UI.OIDC != nil {
			why = "ui.oidc signs people in to quiver ui only"
		}
		return configErrorf("%s: this grant is on quiver serve's surfaces, but serve would authenticate nobody and enforce nothing (%s): add tls.client_ca, jwt or api_tokens to the serving: section, or keep only ui grants", g.Pos, why)
	}
	return nil
}

// ServeUnauthenticatedWarning is what quiver serve warns at startup when its serving:
// section configures the UI's sign-in but nothing that authenticates serve's callers ("" when
// serve authenticates, or when no serving: section asks for anything).
func (c *Config) ServeUnauthenticatedWarning() string {
	if c == nil || c.AuthEnabled() || c.UI.OIDC == nil {
		return ""
	}
	return "serving: ui.oidc signs people in to quiver ui only; quiver serve (gRPC, HTTP, Flight, push) authenticates nobody: add tls.client_ca, jwt or api_tokens to the serving: section to require credentials"
}

// TLSEnabled reports whether the server speaks TLS.
func (c *Config) TLSEnabled() bool { return c != nil && c.TLS.CertFile != "" }

// Validate checks the cross-field rules of a Config built in code or changed after
// ParseConfig (e.g. by command-line flags).
func (c *Config) Validate() error {
	t := c.TLS
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		return configErrorf("tls: give both cert and key (or neither)")
	case t.ClientCAFile != "" && t.CertFile == "":
		return configErrorf("tls: client_ca (mTLS) needs the server's cert and key")
	case t.ClientAuth != "" && t.ClientCAFile == "":
		return configErrorf("tls: client_auth needs client_ca")
	case t.ClientAuth != "" && t.ClientAuth != ClientAuthRequire && t.ClientAuth != ClientAuthVerifyIfGiven:
		return configErrorf("tls: client_auth %q is not valid; valid values: require, verify_if_given", t.ClientAuth)
	}
	if c.Policy != nil && !c.UIAuthEnabled() {
		return configErrorf("a policy is configured but no authentication method is: add tls.client_ca, jwt or api_tokens to the serving: section")
	}
	return nil
}

// ParseConfig decodes the serving: section of file (its YAML node n, nil when absent).
// Relative paths are resolved against baseDir; a policy_file is read and decoded too.
// Every problem is reported with its file:line:col, as a definitions.ErrorList wrapped in
// ErrConfig.
func ParseConfig(file, baseDir string, n *yaml.Node) (*Config, error) {
	return ParseConfigEnv(file, baseDir, n, os.Getenv)
}

// ParseConfigEnv is ParseConfig reading environment variables ($QUIVER_UI_SESSION_KEY, the
// OIDC client secret's) with getenv.
func ParseConfigEnv(file, baseDir string, n *yaml.Node, getenv func(string) string) (*Config, error) {
	c := &Config{Reflection: true}
	c.UI.defaults(getenv)
	if n == nil {
		return c, nil
	}
	d := newDecoder(file, getenv)
	n = yamlx.Resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return c, nil
	}
	var policyFileNode *yaml.Node
	for _, kv := range d.Mapping(n, "serving", []string{"reflection", "tls", "jwt", "api_tokens", "policy", "policy_file", "ui"}) {
		switch kv.Key {
		case "reflection":
			c.Reflection = d.Bool(kv, "serving")
		case "tls":
			c.TLS = d.tls(kv.Value, baseDir)
		case "jwt":
			c.JWT = d.jwt(kv.Value, baseDir)
		case "api_tokens":
			c.APITokens = d.apiTokens(kv.Value)
		case "policy":
			c.Policy = d.policy(kv.Value, "serving policy")
		case "policy_file":
			c.PolicyFile = d.path(kv, "serving", baseDir)
			policyFileNode = kv.Value
		case "ui":
			c.UI = d.ui(kv.Value, baseDir)
		}
	}
	if c.Policy != nil && c.PolicyFile != "" {
		d.Errorf(policyFileNode, "give the policy inline (policy:) or in a file (policy_file:), not both")
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	if c.PolicyFile != "" {
		p, err := LoadPolicyFile(c.PolicyFile)
		if err != nil {
			return nil, err
		}
		c.Policy = p
	}
	if err := c.checkTokenNames(); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// checkTokenNames reports token: principals that name no configured API token.
func (c *Config) checkTokenNames() error {
	if c.Policy == nil {
		return nil
	}
	names := make([]string, len(c.APITokens))
	for i, t := range c.APITokens {
		names[i] = t.Name
	}
	var errs definitions.ErrorList
	for _, g := range c.Policy.Grants {
		for _, p := range g.Principals {
			if name, ok := strings.CutPrefix(p, PrefixToken); ok && !slices.Contains(names, name) {
				valid := "none are configured"
				if len(names) > 0 {
					valid = "configured: " + strings.Join(names, ", ")
				}
				errs = append(errs, &definitions.Error{Pos: g.Pos, Msg: fmt.Sprintf("grant names API token %q, which serving.api_tokens does not define (%s)%s", name, valid, yamlx.Suggest(name, names))})
			}
		}
	}
	if err := errs.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// LoadPolicyFile reads a policy file: a YAML mapping with one key, grants.
func LoadPolicyFile(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, configErrorf("read policy file: %v", err)
	}
	return ParsePolicy(path, data)
}

// ParsePolicy decodes a policy document (grants: [...]); file names it in errors.
func ParsePolicy(file string, data []byte) (*Policy, error) {
	d := newDecoder(file, nil)
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, col, msg := yamlx.SyntaxError(err)
		d.errs = append(d.errs, &definitions.Error{Pos: definitions.Pos{File: file, Line: line, Col: col}, Msg: msg})
		return nil, d.err()
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, configErrorf("policy file %s is empty; want a mapping with grants: [...]", file)
	}
	p := d.policy(doc.Content[0], "policy file")
	if err := d.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// decoder decodes the serving section and policy files with the strict YAML walk of
// internal/yamlx, keeping every problem in errs.
type decoder struct {
	*yamlx.Decoder
	file   string
	getenv func(string) string // nil: os.Getenv
	errs   definitions.ErrorList
	uiErrs definitions.ErrorList // secrets of the ui: section that cannot be read (CheckUI)
}

func (d *decoder) env(name string) string {
	if d.getenv == nil {
		return os.Getenv(name)
	}
	return d.getenv(name)
}

func newDecoder(file string, getenv func(string) string) *decoder {
	d := &decoder{file: file, getenv: getenv}
	d.Decoder = yamlx.NewDecoder(func(line, col int, msg string) {
		d.errs = append(d.errs, &definitions.Error{Pos: definitions.Pos{File: file, Line: line, Col: col}, Msg: msg})
	})
	return d
}

type keyValue = yamlx.KeyValue

func (d *decoder) err() error {
	if err := d.errs.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

func (d *decoder) pos(n *yaml.Node) definitions.Pos {
	return definitions.Pos{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *decoder) duration(kv keyValue, what string) time.Duration {
	s := d.NonEmptyStr(kv, what)
	if s == "" {
		return 0
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		d.Errorf(kv.Value, "%s %s %q is not a duration; write e.g. 30s, 5m or 1h", what, kv.Key, s)
		return 0
	}
	return v
}

// strList accepts a list of strings, or one string.
func (d *decoder) strList(kv keyValue, what string) []string {
	n := kv.Value
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" && n.Value != "" {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, "%s %s must be a list of strings, got %s", what, kv.Key, yamlx.Describe(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		item = yamlx.Resolve(item)
		if item.Kind != yaml.ScalarNode || item.Tag == "!!null" || item.Value == "" {
			d.Errorf(item, "%s %s must be a list of non-empty strings, got %s in it", what, kv.Key, yamlx.Describe(item))
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

func (d *decoder) path(kv keyValue, what, baseDir string) string {
	p := d.NonEmptyStr(kv, what)
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(baseDir, p)
}

func (d *decoder) tls(n *yaml.Node, baseDir string) TLSConfig {
	var t TLSConfig
	var caNode, authNode *yaml.Node
	for _, kv := range d.Mapping(n, "serving tls", []string{"cert", "key", "client_ca", "client_auth"}) {
		switch kv.Key {
		case "cert":
			t.CertFile = d.path(kv, "tls", baseDir)
		case "key":
			t.KeyFile = d.path(kv, "tls", baseDir)
		case "client_ca":
			t.ClientCAFile = d.path(kv, "tls", baseDir)
			caNode = kv.Value
		case "client_auth":
			t.ClientAuth = d.NonEmptyStr(kv, "tls")
			authNode = kv.Value
			if t.ClientAuth != "" && t.ClientAuth != ClientAuthRequire && t.ClientAuth != ClientAuthVerifyIfGiven {
				d.Errorf(kv.Value, "tls client_auth %q is not valid; valid values: require, verify_if_given%s", t.ClientAuth, yamlx.Suggest(t.ClientAuth, []string{ClientAuthRequire, ClientAuthVerifyIfGiven}))
				t.ClientAuth = ""
			}
		}
	}
	if n = yamlx.Resolve(n); n.Kind == yaml.MappingNode {
		if (t.CertFile == "") != (t.KeyFile == "") {
			d.Errorf(n, "tls needs both cert and key (PEM files)")
		}
		if caNode != nil && t.CertFile == "" {
			d.Errorf(caNode, "tls client_ca (mTLS) needs the server's cert and key")
		}
		if authNode != nil && caNode == nil {
			d.Errorf(authNode, "tls client_auth needs client_ca")
		}
	}
	return t
}

func (d *decoder) jwt(n *yaml.Node, baseDir string) *JWTConfig {
	j := &JWTConfig{}
	for _, kv := range d.Mapping(n, "serving jwt", []string{"jwks_file", "jwks_url", "issuer", "audience", "clock_skew", "groups_claim", "algorithms", "jwks_refresh"}) {
		switch kv.Key {
		case "jwks_file":
			j.JWKSFile = d.path(kv, "jwt", baseDir)
		case "jwks_url":
			j.JWKSURL = d.NonEmptyStr(kv, "jwt")
			if u, err := url.Parse(j.JWKSURL); j.JWKSURL != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
				d.Errorf(kv.Value, "jwt jwks_url %q is not an http(s) URL; want e.g. https://idp.example.com/.well-known/jwks.json", j.JWKSURL)
			}
		case "issuer":
			j.Issuer = d.NonEmptyStr(kv, "jwt")
		case "audience":
			j.Audiences = d.strList(kv, "jwt")
		case "clock_skew":
			j.ClockSkew = d.duration(kv, "jwt")
		case "groups_claim":
			j.GroupsClaim = d.NonEmptyStr(kv, "jwt")
		case "algorithms":
			j.Algorithms = d.strList(kv, "jwt")
			for _, a := range j.Algorithms {
				if !slices.Contains(DefaultAlgorithms, a) {
					d.Errorf(kv.Value, "jwt algorithm %q is not accepted; valid algorithms: %s%s", a, strings.Join(DefaultAlgorithms, ", "), yamlx.Suggest(a, DefaultAlgorithms))
				}
			}
		case "jwks_refresh":
			j.JWKSRefresh = d.duration(kv, "jwt")
		}
	}
	if n = yamlx.Resolve(n); n.Kind == yaml.MappingNode {
		if (j.JWKSFile == "") == (j.JWKSURL == "") {
			d.Errorf(n, "jwt needs exactly one of jwks_file and jwks_url")
		}
		if j.Issuer == "" {
			d.Errorf(n, "jwt needs issuer: the iss every accepted token carries")
		}
		if len(j.Audiences) == 0 {
			d.Errorf(n, "jwt needs audience: the aud (one or a list) a token must carry to be accepted here")
		}
	}
	j.defaults()
	return j
}

func (j *JWTConfig) defaults() {
	if j.ClockSkew == 0 {
		j.ClockSkew = DefaultClockSkew
	}
	if j.GroupsClaim == "" {
		j.GroupsClaim = DefaultGroupsClaim
	}
	if len(j.Algorithms) == 0 {
		j.Algorithms = DefaultAlgorithms
	}
	if j.JWKSRefresh == 0 {
		j.JWKSRefresh = DefaultJWKSRefresh
	}
}

func (d *decoder) apiTokens(n *yaml.Node) []APIToken {
	n = yamlx.Resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, "serving api_tokens must be a list of {name, sha256}, got %s", yamlx.Describe(n))
		return nil
	}
	var out []APIToken
	names := map[string]bool{}
	for _, item := range n.Content {
		item = yamlx.Resolve(item)
		var t APIToken
		var hasHash bool
		for _, kv := range d.Mapping(item, "api token", []string{"name", "sha256"}) {
			switch kv.Key {
			case "name":
				t.Name = d.NonEmptyStr(kv, "api token")
				if names[t.Name] {
					d.Errorf(kv.Value, "api token %q is defined twice", t.Name)
				}
				names[t.Name] = true
			case "sha256":
				s := d.NonEmptyStr(kv, "api token")
				b, err := hex.DecodeString(s)
				if s != "" && (err != nil || len(b) != 32) {
					d.Errorf(kv.Value, "api token sha256 must be 64 hex digits (printf %%s \"$TOKEN\" | sha256sum), got %d characters", len(s))
					continue
				}
				copy(t.SHA256[:], b)
				hasHash = s != ""
			}
		}
		if item.Kind == yaml.MappingNode && (t.Name == "" || !hasHash) {
			d.Errorf(item, "api token needs name and sha256")
			continue
		}
		if t.Name != "" && hasHash {
			out = append(out, t)
		}
	}
	return out
}

func (d *decoder) policy(n *yaml.Node, what string) *Policy {
	p := &Policy{}
	n = yamlx.Resolve(n)
	kvs := d.Mapping(n, what, []string{"grants"})
	if n.Kind == yaml.MappingNode && len(kvs) == 0 && len(n.Content) == 0 {
		d.Errorf(n, "%s needs grants: a list of {principals, projects, feature_services, feature_views, models}", what)
	}
	for _, kv := range kvs {
		list := kv.Value
		if list.Kind != yaml.SequenceNode {
			d.Errorf(list, "grants must be a list of {principals, projects, feature_services, feature_views, models}, got %s", yamlx.Describe(list))
			continue
		}
		for _, item := range list.Content {
			if g, ok := d.grant(yamlx.Resolve(item)); ok {
				p.Grants = append(p.Grants, g)
			}
		}
	}
	return p
}

var grantKeys = []string{"principals", "projects", "feature_services", "feature_views", "models", "push_views", "ui", "datasets"}

func (d *decoder) grant(n *yaml.Node) (Grant, bool) {
	g := Grant{Pos: d.pos(n)}
	before := len(d.errs)
	for _, kv := range d.Mapping(n, "grant", grantKeys) {
		items := d.strList(kv, "grant")
		for i, s := range items {
			at := kv.Value
			if kv.Value.Kind == yaml.SequenceNode && i < len(kv.Value.Content) {
				at = kv.Value.Content[i]
			}
			switch kv.Key {
			case "principals":
				if msg := checkPrincipal(s); msg != "" {
					d.Errorf(at, "%s", msg)
				}
			case "projects", "ui":
				if s != "*" && !definitions.ValidName(s) {
					d.Errorf(at, "grant %s %q is not a project name or \"*\"", map[string]string{"projects": "project", "ui": "ui project"}[kv.Key], s)
				}
			default:
				if msg := checkResourceName(s); msg != "" {
					d.Errorf(at, "grant %s: %s", strings.TrimSuffix(kv.Key, "s"), msg)
				}
			}
		}
		switch kv.Key {
		case "principals":
			g.Principals = items
		case "projects":
			g.Projects = items
		case "feature_services":
			g.FeatureServices = items
		case "feature_views":
			g.FeatureViews = items
		case "models":
			g.Models = items
		case "push_views":
			g.PushViews = items
		case "ui":
			g.UI = items
		case "datasets":
			g.Datasets = items
		}
	}
	if n.Kind != yaml.MappingNode {
		return g, false
	}
	if len(g.Principals) == 0 {
		d.Errorf(n, "grant needs principals: who it grants to (subject:NAME, group:NAME, cert:SUBJECT, token:NAME or \"*\")")
	}
	if len(g.Projects)+len(g.FeatureServices)+len(g.FeatureViews)+len(g.Models)+len(g.PushViews)+len(g.UI)+len(g.Datasets) == 0 {
		d.Errorf(n, "grant grants nothing: give projects, feature_services, feature_views, models, push_views, ui or datasets")
	}
	return g, len(d.errs) == before
}

// checkPrincipal returns what is wrong with a principal as written in a policy, or "".
func checkPrincipal(s string) string {
	if s == Anyone {
		return ""
	}
	for _, p := range []string{PrefixSubject, PrefixGroup, PrefixCert, PrefixToken} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			if strings.TrimSpace(rest) == "" {
				return fmt.Sprintf("principal %q names nobody: write %sNAME", s, p)
			}
			return ""
		}
	}
	kinds := []string{"subject", "group", "cert", "token"}
	prefix, _, _ := strings.Cut(s, ":")
	return fmt.Sprintf("principal %q must start with subject:, group:, cert: or token: (or be \"*\" for any authenticated caller)%s", s, yamlx.Suggest(prefix, kinds))
}

// checkResourceName returns what is wrong with NAME, PROJECT/NAME, "*" or PROJECT/*, or "".
func checkResourceName(s string) string {
	project, name, qualified := strings.Cut(s, "/")
	if !qualified {
		project, name = "", s
	}
	if qualified && !definitions.ValidName(project) {
		return fmt.Sprintf("%q: project %q is not a valid name; write NAME, PROJECT/NAME, \"*\" or PROJECT/*", s, project)
	}
	if name != "*" && !definitions.ValidName(name) {
		return fmt.Sprintf("%q is not a valid name; write NAME, PROJECT/NAME, \"*\" or PROJECT/*", s)
	}
	return ""
}
