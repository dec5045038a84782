package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/quiverfs/quiver/serving/auth"
)

// oidcClient is the UI as an OpenID Connect relying party. go-oidc reads the provider's
// discovery document and keys and verifies ID tokens (signature, issuer, audience, expiry);
// x/oauth2 builds the authorization URL and exchanges the code, with PKCE (S256). The
// provider is discovered on the first sign-in, not at startup, so quiver ui starts while the
// provider is unreachable and a failed discovery is tried again on the next sign-in.
type oidcClient struct {
	cfg    *auth.OIDCConfig
	client *http.Client
	now    func() time.Time

	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newOIDCClient(cfg *auth.OIDCConfig, client *http.Client, now func() time.Time) *oidcClient {
	return &oidcClient{cfg: cfg, client: client, now: now}
}

// callbackPath is the path of the redirect URL, which the UI serves.
func (o *oidcClient) callbackPath() string {
	u, err := url.Parse(o.cfg.RedirectURL)
	if err != nil || u.Path == "" {
		return "/signin/oidc/callback"
	}
	return u.Path
}

// ctx carries the HTTP client go-oidc and x/oauth2 use.
func (o *oidcClient) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, o.client)
}

// setup discovers the provider once.
func (o *oidcClient) setup(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.oauth != nil {
		return o.oauth, o.verifier, nil
	}
	p, err := oidc.NewProvider(o.ctx(ctx), o.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("read the OpenID configuration of %s: %w", o.cfg.Issuer, err)
	}
	o.oauth = &oauth2.Config{
		ClientID:     o.cfg.ClientID,
		ClientSecret: o.cfg.ClientSecret.Reveal(),
		Endpoint:     p.Endpoint(),
		RedirectURL:  o.cfg.RedirectURL,
		Scopes:       append([]string{oidc.ScopeOpenID}, o.cfg.Scopes...),
	}
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID, Now: o.now})
	return o.oauth, o.verifier, nil
}

// authURL starts a sign-in: the provider's authorization URL for flow's state, nonce and
// PKCE verifier.
func (o *oidcClient) authURL(ctx context.Context, flow *oidcFlow) (string, error) {
	conf, _, err := o.setup(ctx)
	if err != nil {
		return "", err
	}
	return conf.AuthCodeURL(flow.State, oidc.Nonce(flow.Nonce), oauth2.S256ChallengeOption(flow.Verifier)), nil
}

// Errors of a sign-in's return from the provider, each answered 400 with its message.
var (
	errStateMismatch = errors.New("the sign-in response does not belong to the sign-in this browser started (state mismatch); start again")
	errNonceMismatch = errors.New("the ID token was not issued for this sign-in (nonce mismatch); start again")
)

// finish exchanges code (with the PKCE verifier) for tokens, verifies the ID token and its
// nonce, and maps its claims to a principal.
func (o *oidcClient) finish(ctx context.Context, flow *oidcFlow, code string) (*auth.Principal, error) {
	conf, verifier, err := o.setup(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := conf.Exchange(o.ctx(ctx), code, oauth2.VerifierOption(flow.Verifier))
	if err != nil {
		return nil, fmt.Errorf("exchange the authorization code at %s: %w", o.cfg.Issuer, err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, fmt.Errorf("the token response of %s has no id_token", o.cfg.Issuer)
	}
	idt, err := verifier.Verify(o.ctx(ctx), raw)
	if err != nil {
		return nil, fmt.Errorf("verify the ID token: %w", err)
	}
	if idt.Nonce == "" || !equalConstantTime(idt.Nonce, flow.Nonce) {
		return nil, errNonceMismatch
	}
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("read the ID token's claims: %w", err)
	}
	return o.principal(claims)
}

// principal maps an ID token's claims to a principal: subject_claim → subject:NAME,
// groups_claim → group:NAME each.
func (o *oidcClient) principal(claims map[string]json.RawMessage) (*auth.Principal, error) {
	var subject string
	if err := json.Unmarshal(claims[o.cfg.SubjectClaim], &subject); err != nil || subject == "" {
		return nil, fmt.Errorf("the ID token has no string claim %q (serving.ui.oidc.subject_claim)", o.cfg.SubjectClaim)
	}
	if o.cfg.SubjectClaim == "email" {
		var verified *bool
		if raw, ok := claims["email_verified"]; ok && json.Unmarshal(raw, &verified) == nil && verified != nil && !*verified {
			return nil, fmt.Errorf("the identity provider says the email %s is not verified", subject)
		}
	}
	var groups []string
	if raw, ok := claims[o.cfg.GroupsClaim]; ok {
		if json.Unmarshal(raw, &groups) != nil {
			var one string
			if json.Unmarshal(raw, &one) == nil && one != "" {
				groups = []string{one}
			}
		}
	}
	return &auth.Principal{Subject: subject, Groups: groups}, nil
}
