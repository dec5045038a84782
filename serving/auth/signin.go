package auth

import (
	"context"
	"crypto/tls"
	"strings"
	"time"
)

// What the web UI's sign-in needs from a Guard: the same token verification as the serving
// surfaces, for a token typed into a form instead of sent in a header, and policy checks that
// decide what a page shows without refusing the request.

// AuthenticateToken verifies a token typed into the UI's sign-in page: an API token, or a JWT
// when jwt is configured. It returns the principal and, for a JWT, its expiry (zero for an
// API token, which does not expire). Errors match ErrUnauthenticated and say what was wrong
// without repeating the token.
func (g *Guard) AuthenticateToken(ctx context.Context, token string) (*Principal, time.Time, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, time.Time{}, unauthenticated(reasonNoCredentials, "no token given")
	}
	if g.tokens != nil {
		if p, ok := g.tokens[hashToken(token)]; ok {
			return p, time.Time{}, nil
		}
	}
	if g.jwt != nil {
		return g.jwt.verifyExpiry(ctx, token)
	}
	if g.tokens != nil {
		return nil, time.Time{}, unauthenticated(reasonInvalid, "unknown API token")
	}
	return nil, time.Time{}, unauthenticated(reasonInvalid, "this server accepts no tokens")
}

// AcceptsTokens reports whether the guard verifies bearer tokens (API tokens or JWTs), so a
// sign-in page can ask for one.
func (g *Guard) AcceptsTokens() bool { return g.tokens != nil || g.jwt != nil }

// HasToken reports whether an API token named name is configured: a UI session made with a
// token ends when the token is removed from the configuration.
func (g *Guard) HasToken(name string) bool {
	for _, p := range g.tokens {
		if p.Token == name {
			return true
		}
	}
	return false
}

// CertPrincipal is the principal of the verified client certificate of a TLS connection, or
// nil without mTLS or without a certificate.
func (g *Guard) CertPrincipal(state *tls.ConnectionState) *Principal {
	if !g.certs {
		return nil
	}
	return certPrincipal(state)
}

// Allows reports whether the policy grants p every resource in rs (always, without a
// policy). Unlike Authorize it neither logs nor counts: pages use it to decide what to show.
func (g *Guard) Allows(p *Principal, rs ...Resource) bool {
	if g.policy == nil {
		return true
	}
	return p != nil && g.policy.check(p, rs) == nil
}

// Refused logs and counts a request refused outside the interceptors and middleware (a
// failed sign-in on the UI), as they do: method names what was asked, peer the remote
// address.
func (g *Guard) Refused(ctx context.Context, method, peer string, p *Principal, err error) {
	g.record(ctx, method, peer, p, err)
}

// Merge returns a principal holding the identities of both p and q (either may be nil): a
// client certificate and a signed-in session on one request.
func (p *Principal) Merge(q *Principal) *Principal { return p.merge(q) }
