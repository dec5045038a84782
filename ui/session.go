package ui

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/quiverfs/quiver/serving/auth"
)

// Sessions are kept in the browser, not on the server: the session cookie holds who signed
// in, how and until when, sealed with AES-256-GCM (encrypted and authenticated) under a key
// derived from the session key. A cookie changed by one bit, or sealed under another key,
// does not open. Nothing is stored per session, so any number of quiver ui processes that
// share the session key accept each other's cookies and a restart signs nobody out; the one
// piece of server state is the list of sessions signed out before their expiry, which each
// process keeps in memory until those sessions would have expired anyway.

// Cookie names. Under TLS they carry the __Host- prefix, which makes the browser refuse them
// unless they are Secure, host-only and for path /: a sibling subdomain cannot plant them.
const (
	cookieSession = "quiver_session"
	cookieFlow    = "quiver_oidc"
	cookieCSRF    = "quiver_csrf"
)

// maxCookieBytes bounds a sealed cookie: browsers keep cookies of up to 4096 bytes, name
// and attributes included.
const maxCookieBytes = 3800

// Sign-in methods, as a session records them.
const (
	methodToken = "token" // an API token typed into the sign-in page
	methodJWT   = "jwt"   // a JWT typed into the sign-in page
	methodOIDC  = "oidc"  // the OpenID Connect flow
)

// session is what the session cookie holds.
type session struct {
	ID      string   `json:"sid"`
	Method  string   `json:"m"`
	Subject string   `json:"sub,omitempty"`
	Groups  []string `json:"grp,omitempty"`
	Token   string   `json:"tok,omitempty"`
	Issued  int64    `json:"iat"`
	Expires int64    `json:"exp"`
}

// principal is who the session signed in as.
func (s *session) principal() *auth.Principal {
	return &auth.Principal{Subject: s.Subject, Groups: s.Groups, Token: s.Token}
}

func (s *session) expiry() time.Time { return time.Unix(s.Expires, 0) }

// oidcFlow is what the flow cookie holds between the redirect to the identity provider and
// its redirect back: the state and nonce sent, the PKCE verifier, and where to go after.
type oidcFlow struct {
	State    string `json:"st"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"next"`
	Expires  int64  `json:"exp"`
}

// flowTTL is how long a sign-in at the identity provider may take.
const flowTTL = 10 * time.Minute

// errBadCookie: a cookie that does not open (tampered with, truncated, or sealed under
// another key).
var errBadCookie = errors.New("cookie is not valid")

// sealer seals and opens the UI's cookies and makes its CSRF tokens.
type sealer struct {
	aead cipher.AEAD
	mac  []byte
}

// newSealer derives the cookie key and the CSRF key from the session key with HKDF-SHA256.
func newSealer(sessionKey []byte) (*sealer, error) {
	if len(sessionKey) < auth.MinSessionKeyBytes {
		return nil, fmt.Errorf("ui: the session key has %d bytes; it needs at least %d", len(sessionKey), auth.MinSessionKeyBytes)
	}
	encKey, err := hkdf.Key(sha256.New, sessionKey, nil, "quiver ui cookie v1", 32)
	if err != nil {
		return nil, err
	}
	macKey, err := hkdf.Key(sha256.New, sessionKey, nil, "quiver ui csrf v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead, mac: macKey}, nil
}

// seal encrypts v's JSON, bound to the cookie's name (a session cookie cannot be replayed as
// a flow cookie), as unpadded base64url of nonce || ciphertext.
func (s *sealer) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

// open decrypts a cookie value sealed for name into v; any failure is errBadCookie.
func (s *sealer) open(name, value string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return errBadCookie
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil {
		return errBadCookie
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return errBadCookie
	}
	return nil
}

// csrf is the CSRF token of a form for purpose, bound to a value only this browser holds (the
// CSRF cookie before sign-in, the session id after).
func (s *sealer) csrf(purpose, binding string) string {
	m := hmac.New(sha256.New, s.mac)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF reports whether got is the CSRF token of purpose and binding.
func (s *sealer) checkCSRF(purpose, binding, got string) bool {
	if binding == "" || got == "" {
		return false
	}
	return hmac.Equal([]byte(s.csrf(purpose, binding)), []byte(got))
}

// randomID is 32 random bytes as unpadded base64url.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// revocations are the sessions signed out before their expiry, each kept until it would have
// expired. They live in this process only (see docs/ui.md).
type revocations struct {
	mu sync.Mutex
	m  map[string]int64 // session id → its expiry, unix seconds
}

func (r *revocations) revoke(id string, expires int64, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]int64{}
	}
	if len(r.m) >= 1024 {
		for k, exp := range r.m {
			if exp < now.Unix() {
				delete(r.m, k)
			}
		}
	}
	r.m[id] = expires
}

func (r *revocations) revoked(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.m[id]
	return ok
}

// cookieName is name with the __Host- prefix when the cookie is Secure.
func cookieName(name string, secure bool) string {
	if secure {
		return "__Host-" + name
	}
	return name
}

// setCookie sets a sealed, HttpOnly, SameSite=Lax cookie for path /; maxAge 0 makes it a
// browser-session cookie, a negative maxAge deletes it.
func setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration, secure bool) {
	c := &http.Cookie{Name: cookieName(name, secure), Value: value, Path: "/", HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
	switch {
	case maxAge < 0:
		c.MaxAge, c.Value = -1, ""
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

// cookieValue is the value of the request's cookie name (with its prefix when secure), or "".
func cookieValue(r *http.Request, name string, secure bool) string {
	c, err := r.Cookie(cookieName(name, secure))
	if err != nil {
		return ""
	}
	return c.Value
}
