package ui

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/quiverfs/quiver/serving/auth"
)

// Signing in to the UI. With a Guard, every page needs a principal, from the first of:
//
//   - an Authorization header (an API token or a JWT, e.g. added by an SSO proxy), verified
//     exactly as on the serving surfaces — a bad one is refused, never passed over;
//   - the session cookie of a sign-in on /signin (a token typed into the form, or OpenID
//     Connect), together with a verified client certificate when there is one;
//   - a verified client certificate (mTLS) alone.
//
// A browser without one is redirected to /signin; any other client (an API client, curl,
// Accept: application/json) gets the JSON 401 of the serving surfaces. The principal then
// needs a ui grant, or a project grant, of the project (auth.KindUI).

// Paths of the sign-in pages. The OIDC callback's path comes from the redirect URL.
const (
	pathSignIn     = "/signin"
	pathSignInOIDC = "/signin/oidc"
	pathSignOut    = "/signout"
)

// SignInMethod names refused sign-ins in the guard's denial log and metric.
const SignInMethod = "/quiver.ui/SignIn"

// Reasons the sign-in page is shown with (?reason=): each has a fixed message, so nothing a
// link carries is echoed into the page.
var signInReasons = map[string]string{
	"expired":    "Your session expired. Sign in again.",
	"invalid":    "Your session cookie was not valid (changed, or issued by another server or key). Sign in again.",
	"revoked":    "That session was signed out. Sign in again.",
	"signed_out": "You are signed out.",
	"token_gone": "The API token this session was signed in with is no longer configured. Sign in again.",
}

// sessionErrors say why a session cookie was refused, in a 401's message.
var sessionErrors = map[string]string{
	"expired":    "session expired",
	"invalid":    "session cookie is not valid",
	"revoked":    "session was signed out",
	"token_gone": "the session's API token is no longer configured",
}

// signIn is the sign-in state of a Server with a Guard.
type signIn struct {
	cfg     auth.UIConfig
	seal    *sealer
	revoked revocations
	oidc    *oidcClient // nil without OIDC
	cop     *http.CrossOriginProtection
}

func newSignIn(opts Options) (*signIn, error) {
	key := []byte(opts.SignIn.SessionKey.Reveal())
	if len(key) == 0 {
		key = []byte(randomID()) // per process: see docs/ui.md
		opts.Logger.Warn("ui: no session key configured (serving.ui.session_key_file or $" + auth.EnvSessionKey + "): sessions end when this process stops, and other processes do not accept them")
	}
	seal, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	si := &signIn{cfg: opts.SignIn, seal: seal, cop: http.NewCrossOriginProtection()}
	if si.cfg.SessionTTL <= 0 {
		si.cfg.SessionTTL = auth.DefaultSessionTTL
	}
	if o := opts.SignIn.OIDC; o != nil {
		client := opts.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Second}
		}
		si.oidc = newOIDCClient(o, client, opts.Now)
		if cb := si.oidc.callbackPath(); cb == "/" || cb == pathSignIn || cb == pathSignInOIDC || cb == pathSignOut || isOpen(cb) {
			return nil, fmt.Errorf("ui: the path of serving.ui.oidc.redirect_url, %s, is one of the UI's own pages; use e.g. %s", cb, "/signin/oidc/callback")
		}
	}
	return si, nil
}

type sessionKey struct{}

// sessionFrom is the session a request was authenticated with, or nil.
func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// secure reports whether the UI's cookies are Secure for r: under TLS, or when configured.
func (s *Server) secure(r *http.Request) bool {
	return r.TLS != nil || s.signin.cfg.SecureCookies
}

// wantsHTML reports whether r is a browser navigation, which is redirected to the sign-in page
// rather than answered with JSON.
func wantsHTML(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, a := range r.Header.Values("Accept") {
		if strings.Contains(a, "text/html") {
			return true
		}
	}
	return false
}

// isSignInPath reports whether path is served before authentication: the sign-in pages.
func (s *Server) isSignInPath(path string) bool {
	switch path {
	case pathSignIn, pathSignOut:
		return true
	case pathSignInOIDC:
		return s.signin.oidc != nil
	}
	return s.signin.oidc != nil && path == s.signin.oidc.callbackPath()
}

// guarded authenticates and authorizes every request but the open and sign-in paths, then
// hands it to pages with the principal (and session) in its context.
func (s *Server) guarded(pages, signInPages http.Handler) http.Handler {
	g := s.opts.Guard
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isOpen(r.URL.Path) {
			pages.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if s.isSignInPath(r.URL.Path) {
			signInPages.ServeHTTP(w, r)
			return
		}
		p, sess, reason, err := s.authenticate(r)
		if err != nil {
			g.Refused(r.Context(), "HTTP", r.RemoteAddr, nil, err)
			if reason != "" {
				setCookie(w, cookieSession, "", -1, s.secure(r))
			}
			if wantsHTML(r) && len(r.Header.Values("Authorization")) == 0 {
				q := url.Values{"next": {r.URL.RequestURI()}}
				if reason != "" {
					q.Set("reason", reason)
				}
				http.Redirect(w, r, pathSignIn+"?"+q.Encode(), http.StatusSeeOther)
				return
			}
			auth.WriteHTTPError(w, err)
			return
		}
		ctx := auth.WithPrincipal(r.Context(), p)
		if sess != nil {
			ctx = context.WithValue(ctx, sessionKey{}, sess)
		}
		r = r.WithContext(ctx)
		if err := g.Authorize(ctx, UIMethod, nil); err != nil {
			if wantsHTML(r) {
				s.render(w, r, &page{Template: "error", Title: "Not granted", Status: auth.HTTPStatus(err),
					Data: fmt.Sprintf("You are signed in as %s, but the policy does not grant the UI of project %s: ask for a grant with ui: [%s] (or the project).", p, s.opts.Project, s.opts.Project)})
				return
			}
			auth.WriteHTTPError(w, err)
			return
		}
		pages.ServeHTTP(w, r)
	})
}

// authenticate finds the request's principal (see the top of this file). reason is set when
// a session cookie was sent but is not good: why, for the sign-in page.
func (s *Server) authenticate(r *http.Request) (p *auth.Principal, sess *session, reason string, err error) {
	g := s.opts.Guard
	if len(r.Header.Values("Authorization")) > 0 {
		p, err := g.Authenticate(r.Context(), r.TLS, r.Header.Values("Authorization"))
		return p, nil, "", err
	}
	cert := g.CertPrincipal(r.TLS)
	if v := cookieValue(r, cookieSession, s.secure(r)); v != "" {
		sess, reason = s.openSession(v)
		if sess != nil {
			return cert.Merge(sess.principal()), sess, "", nil
		}
	}
	if cert != nil {
		return cert, nil, "", nil
	}
	if reason != "" {
		return nil, nil, reason, fmt.Errorf("%w: %s", auth.ErrUnauthenticated, sessionErrors[reason])
	}
	_, err = g.Authenticate(r.Context(), r.TLS, nil) // the serving surfaces' "no credentials" error
	return nil, nil, "", err
}

// openSession opens and checks a session cookie: it returns the session, or why it is not
// good.
func (s *Server) openSession(value string) (*session, string) {
	var sess session
	if err := s.signin.seal.open(cookieSession, value, &sess); err != nil || sess.ID == "" {
		return nil, "invalid"
	}
	if !s.opts.Now().Before(sess.expiry()) {
		return nil, "expired"
	}
	if s.signin.revoked.revoked(sess.ID) {
		return nil, "revoked"
	}
	if sess.Method == methodToken && !s.opts.Guard.HasToken(sess.Token) {
		return nil, "token_gone"
	}
	return &sess, ""
}

// startSession sets the session cookie for p, signed in with method, until the session TTL
// or notAfter (a JWT's expiry) if sooner.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, p *auth.Principal, method string, notAfter time.Time) error {
	now := s.opts.Now()
	exp := now.Add(s.signin.cfg.SessionTTL)
	if !notAfter.IsZero() && notAfter.Before(exp) {
		exp = notAfter
	}
	sess := &session{ID: randomID(), Method: method, Subject: p.Subject, Groups: p.Groups, Token: p.Token, Issued: now.Unix(), Expires: exp.Unix()}
	v, err := s.signin.seal.seal(cookieSession, sess)
	if err != nil {
		return err
	}
	if len(v) > maxCookieBytes {
		return fmt.Errorf("%s holds too many groups (%d) to keep in a session cookie; set serving.ui.oidc.groups_claim to a narrower claim", p, len(p.Groups))
	}
	setCookie(w, cookieSession, v, exp.Sub(now), s.secure(r))
	return nil
}

// signInData is what the sign-in page shows.
type signInData struct {
	Notice, Error string
	CSRF, Next    string
	Tokens        bool   // the form takes a token
	OIDCName      string // "Sign in with NAME", when OIDC is configured
	OIDCURL       string
	CertOnly      bool // neither tokens nor OIDC: only client certificates sign in
}

// signInPages serves /signin (GET: the form; POST: a token), /signin/oidc and its callback,
// and /signout.
func (s *Server) signInPages() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathSignIn, s.signInForm)
	mux.HandleFunc("POST "+pathSignIn, s.signInToken)
	mux.HandleFunc("POST "+pathSignOut, s.signOut)
	if s.signin.oidc != nil {
		mux.HandleFunc("GET "+pathSignInOIDC, s.oidcStart)
		mux.HandleFunc("GET "+s.signin.oidc.callbackPath(), s.oidcCallback)
	}
	return mux
}

// signInPage renders the sign-in page with status, a notice or an error, and a CSRF token
// bound to the browser's CSRF cookie (set now when it has none).
func (s *Server) signInPage(w http.ResponseWriter, r *http.Request, status int, next, notice, errMsg string) {
	secure := s.secure(r)
	binding := cookieValue(r, cookieCSRF, secure)
	if len(binding) != 43 { // 32 random bytes, base64url
		binding = randomID()
		setCookie(w, cookieCSRF, binding, 0, secure)
	}
	d := &signInData{Notice: notice, Error: errMsg, CSRF: s.signin.seal.csrf("signin", binding), Next: next, Tokens: s.opts.Guard.AcceptsTokens()}
	if s.signin.oidc != nil {
		d.OIDCName = s.signin.oidc.cfg.Name
		d.OIDCURL = pathSignInOIDC + "?" + url.Values{"next": {next}}.Encode()
	}
	d.CertOnly = !d.Tokens && d.OIDCName == ""
	s.render(w, r, &page{Template: "signin", Title: "Sign in", Bare: true, Status: status, Data: d})
}

// signInForm is GET /signin.
func (s *Server) signInForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.signInPage(w, r, http.StatusOK, safeNext(q.Get("next")), signInReasons[q.Get("reason")], "")
}

// signInToken is POST /signin: a token typed into the form.
func (s *Server) signInToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.signInPage(w, r, http.StatusBadRequest, "/", "", "The form could not be read: "+err.Error())
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if err := s.signin.cop.Check(r); err != nil {
		s.signInPage(w, r, http.StatusForbidden, next, "", "Sign-in refused: the form was posted from another site.")
		return
	}
	if !s.signin.seal.checkCSRF("signin", cookieValue(r, cookieCSRF, s.secure(r)), r.PostForm.Get("csrf")) {
		s.signInPage(w, r, http.StatusForbidden, next, "", "Sign-in refused: the form is out of date or was not served by this server (CSRF check). Try again on this page.")
		return
	}
	g := s.opts.Guard
	p, notAfter, err := g.AuthenticateToken(r.Context(), r.PostForm.Get("token"))
	if err != nil {
		g.Refused(r.Context(), SignInMethod, r.RemoteAddr, nil, err)
		s.signInPage(w, r, http.StatusUnauthorized, next, "", "Sign-in failed: "+err.Error()+".")
		return
	}
	method := methodToken
	if p.Token == "" {
		method = methodJWT
	}
	s.finishSignIn(w, r, p, method, notAfter, next)
}

// finishSignIn checks p's ui grant, starts its session and redirects to next.
func (s *Server) finishSignIn(w http.ResponseWriter, r *http.Request, p *auth.Principal, method string, notAfter time.Time, next string) {
	g := s.opts.Guard
	if !g.Allows(p, Resources(s.opts.Project, UIMethod, nil)...) {
		err := &auth.DeniedError{Principal: p.String(), Resource: auth.Resource{Kind: auth.KindUI, Project: s.opts.Project}}
		g.Refused(r.Context(), SignInMethod, r.RemoteAddr, p, err)
		s.signInPage(w, r, http.StatusForbidden, next, "", fmt.Sprintf("Sign-in refused: %s is not granted the UI of project %s (a ui or project grant in the policy).", p, s.opts.Project))
		return
	}
	if err := s.startSession(w, r, p, method, notAfter); err != nil {
		s.signInPage(w, r, http.StatusBadRequest, next, "", "Sign-in failed: "+err.Error()+".")
		return
	}
	s.opts.Logger.Info("ui sign-in", "principal", p.String(), "method", method, "peer", r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signOut is POST /signout: the session ends here (its id is refused by this process until it
// would have expired) and its cookie is deleted.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	secure := s.secure(r)
	var sess session
	if err := s.signin.seal.open(cookieSession, cookieValue(r, cookieSession, secure), &sess); err == nil && sess.ID != "" {
		if s.signin.cop.Check(r) != nil || !s.signin.seal.checkCSRF("signout", sess.ID, r.PostForm.Get("csrf")) {
			s.render(w, r, &page{Template: "error", Title: "Sign-out refused", Status: http.StatusForbidden,
				Data: "Sign-out refused: the form was not served by this server for this session (CSRF check). Use the Sign out button on a page of this UI."})
			return
		}
		s.signin.revoked.revoke(sess.ID, sess.Expires, s.opts.Now())
		s.opts.Logger.Info("ui sign-out", "principal", sess.principal().String(), "peer", r.RemoteAddr)
	}
	setCookie(w, cookieSession, "", -1, secure)
	http.Redirect(w, r, pathSignIn+"?reason=signed_out", http.StatusSeeOther)
}

// oidcStart is GET /signin/oidc: remember a new state, nonce and PKCE verifier in the flow
// cookie and send the browser to the identity provider.
func (s *Server) oidcStart(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	flow := &oidcFlow{State: randomID(), Nonce: randomID(), Verifier: oauth2.GenerateVerifier(), Next: next, Expires: s.opts.Now().Add(flowTTL).Unix()}
	target, err := s.signin.oidc.authURL(r.Context(), flow)
	if err != nil {
		s.opts.Logger.Warn("ui oidc sign-in unavailable", "err", err)
		s.signInPage(w, r, http.StatusBadGateway, next, "", "Sign-in with "+s.signin.oidc.cfg.Name+" is unavailable: "+err.Error()+".")
		return
	}
	v, err := s.signin.seal.seal(cookieFlow, flow)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setCookie(w, cookieFlow, v, flowTTL, s.secure(r))
	http.Redirect(w, r, target, http.StatusFound)
}

// oidcCallback is the redirect URL: the provider sends the browser back with a code and the
// state. The state must be the flow cookie's, the ID token's nonce the flow's, and the code
// is exchanged with the flow's PKCE verifier.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	secure := s.secure(r)
	fail := func(status int, msg string) {
		s.signInPage(w, r, status, "/", "", msg)
	}
	var flow oidcFlow
	if err := s.signin.seal.open(cookieFlow, cookieValue(r, cookieFlow, secure), &flow); err != nil {
		fail(http.StatusBadRequest, "Sign-in failed: this browser has no sign-in in progress here (it was started elsewhere, or its cookie was refused). Start again.")
		return
	}
	setCookie(w, cookieFlow, "", -1, secure) // one use
	if !s.opts.Now().Before(time.Unix(flow.Expires, 0)) {
		fail(http.StatusBadRequest, fmt.Sprintf("Sign-in failed: it took longer than %s at the identity provider. Start again.", flowTTL))
		return
	}
	q := r.URL.Query()
	if !equalConstantTime(q.Get("state"), flow.State) {
		s.opts.Guard.Refused(r.Context(), SignInMethod, r.RemoteAddr, nil, fmt.Errorf("%w: %w", auth.ErrUnauthenticated, errStateMismatch))
		fail(http.StatusBadRequest, "Sign-in failed: "+errStateMismatch.Error()+".")
		return
	}
	if e := q.Get("error"); e != "" {
		fail(http.StatusUnauthorized, fmt.Sprintf("Sign-in failed: %s answered %s: %s", s.signin.oidc.cfg.Name, e, q.Get("error_description")))
		return
	}
	code := q.Get("code")
	if code == "" {
		fail(http.StatusBadRequest, "Sign-in failed: the identity provider sent no authorization code.")
		return
	}
	p, err := s.signin.oidc.finish(r.Context(), &flow, code)
	if err != nil {
		s.opts.Guard.Refused(r.Context(), SignInMethod, r.RemoteAddr, nil, fmt.Errorf("%w: %w", auth.ErrUnauthenticated, err))
		status := http.StatusUnauthorized
		if errors.Is(err, errNonceMismatch) {
			status = http.StatusBadRequest
		}
		fail(status, "Sign-in failed: "+err.Error()+".")
		return
	}
	s.finishSignIn(w, r, p, methodOIDC, time.Time{}, flow.Next)
}

// safeNext is next when it is a path on this server (not a sign-in page), else "/": the
// redirect after sign-in never leaves the UI.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Path == pathSignIn || u.Path == pathSignOut || strings.HasPrefix(u.Path, pathSignInOIDC) {
		return "/"
	}
	return next
}

func equalConstantTime(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
