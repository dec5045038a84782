// Package auth authenticates and authorizes calls to Quiver's serving surfaces.
//
// Authentication turns a call's credentials into a Principal: a client certificate verified
// against the configured CA (mTLS), a JWT bearer token verified against the keys of a JWKS
// file or URL (issuer, audience, expiry, with a clock skew), or a static API token whose
// SHA-256 is in the configuration. Authorization checks the Resources a call touches (the
// project, a feature service, the feature views of a reference list, a model) against a
// Policy of grants. A Guard holds both and exposes them as gRPC unary and stream interceptors
// and as an http.Handler middleware, so every transport applies the same rules.
//
// The configuration is the serving: section of quiver.yaml (ParseConfig), with the policy
// inline or in a file it names. See docs/security.md.
package auth

import (
	"context"
	"strings"
)

// Kind is the kind of a Resource.
type Kind uint8

// Resource kinds, in the order the policy lists them.
const (
	KindProject Kind = iota
	KindFeatureService
	KindFeatureView
	KindModel
	// KindPushView is writing rows to a feature view (PushFeatures). Only a push_views grant
	// covers it: project grants do not, so writing is always granted on its own.
	KindPushView
	// KindUI is browsing a project in the web UI (quiver ui): its definitions, datasets, runs
	// and models, but no feature values. A ui grant covers it, and so does a project grant.
	KindUI
	// KindDataset is reading a registered training dataset's rows (Arrow Flight DoGet) or
	// building a version of it (Flight DoPut). Only a datasets grant covers it: a dataset
	// holds the history of every feature it joined, in bulk, and building one writes the
	// warehouse, so a project grant (online reads) does not give it.
	KindDataset

	kindCount = KindDataset + 1
)

func (k Kind) String() string {
	switch k {
	case KindProject:
		return "project"
	case KindFeatureService:
		return "feature service"
	case KindFeatureView:
		return "feature view"
	case KindModel:
		return "model"
	case KindPushView:
		return "push to feature view"
	case KindUI:
		return "ui"
	case KindDataset:
		return "dataset"
	}
	return "resource"
}

// Resource is one thing a call reads: a whole project, or a named feature service, feature
// view or model within a project.
type Resource struct {
	Kind    Kind
	Project string
	Name    string // empty for KindProject
}

func (r Resource) String() string {
	switch r.Kind {
	case KindProject:
		return "project " + quote(r.Project)
	case KindUI:
		return "the ui of project " + quote(r.Project)
	}
	return r.Kind.String() + " " + quote(r.Name) + " in project " + quote(r.Project)
}

// Principal is an authenticated caller. A caller may hold several identities at once (a
// client certificate and a token); the policy grants it the union of what each identity is
// granted.
type Principal struct {
	// Subject is the JWT's sub claim; empty without a JWT.
	Subject string
	// Groups are the values of the JWT's groups claim.
	Groups []string
	// CertSubject is the verified client certificate's subject (RFC 2253, as
	// pkix.Name.String writes it); empty without one.
	CertSubject string
	// Token is the name of the static API token used; empty without one.
	Token string

	ids []string
}

// Identity prefixes, as principals are written in the policy.
const (
	PrefixSubject = "subject:"
	PrefixGroup   = "group:"
	PrefixCert    = "cert:"
	PrefixToken   = "token:"
	// Anyone matches every authenticated principal.
	Anyone = "*"
)

// IDs are the principal's identities as the policy writes them ("subject:svc-a",
// "group:growth", "cert:CN=scorer,O=Acme", "token:nightly").
func (p *Principal) IDs() []string {
	if p.ids == nil {
		p.ids = p.buildIDs()
	}
	return p.ids
}

func (p *Principal) buildIDs() []string {
	ids := make([]string, 0, 3+len(p.Groups))
	if p.Subject != "" {
		ids = append(ids, PrefixSubject+p.Subject)
	}
	for _, g := range p.Groups {
		ids = append(ids, PrefixGroup+g)
	}
	if p.CertSubject != "" {
		ids = append(ids, PrefixCert+p.CertSubject)
	}
	if p.Token != "" {
		ids = append(ids, PrefixToken+p.Token)
	}
	return ids
}

// String names the principal for logs and error messages: its identities, without groups
// when it has a subject.
func (p *Principal) String() string {
	if p == nil {
		return "anonymous"
	}
	var parts []string
	if p.Subject != "" {
		parts = append(parts, PrefixSubject+p.Subject)
	} else {
		for _, g := range p.Groups {
			parts = append(parts, PrefixGroup+g)
		}
	}
	if p.CertSubject != "" {
		parts = append(parts, PrefixCert+p.CertSubject)
	}
	if p.Token != "" {
		parts = append(parts, PrefixToken+p.Token)
	}
	if len(parts) == 0 {
		return "anonymous"
	}
	return strings.Join(parts, ",")
}

// merge adds q's identities to p (a certificate and a token on one call).
func (p *Principal) merge(q *Principal) *Principal {
	if p == nil {
		return q
	}
	if q == nil {
		return p
	}
	out := *p
	if q.Subject != "" {
		out.Subject, out.Groups = q.Subject, q.Groups
	}
	if q.CertSubject != "" {
		out.CertSubject = q.CertSubject
	}
	if q.Token != "" {
		out.Token = q.Token
	}
	out.ids = out.buildIDs()
	return &out
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal an interceptor or the middleware authenticated, or nil.
// Principals are shared between calls (a reused token yields the same one): read-only.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
