package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jwksMinRefetch bounds how often a token signed with an unknown key id makes the key set be
// read again (key rotation at the identity provider), so junk tokens cannot flood it.
const jwksMinRefetch = 30 * time.Second

// maxJWKSBytes bounds a key set read from a URL.
const maxJWKSBytes = 1 << 20

// keySet is the verification keys of a JWKS file or URL, read at startup and again when a
// token names a key id it does not hold (at most every jwksMinRefetch) or when it is older
// than refresh. Reads happen in the calling request, one at a time; the others keep using
// the keys they have. No goroutine is started.
type keySet struct {
	file, url string
	client    *http.Client
	refresh   time.Duration
	now       func() time.Time
	log       *slog.Logger

	mu      sync.RWMutex
	keys    jose.JSONWebKeySet
	fetched time.Time

	fetchMu sync.Mutex
}

func (k *keySet) source() string {
	if k.file != "" {
		return "jwks_file " + k.file
	}
	return "jwks_url " + k.url
}

func (k *keySet) read(ctx context.Context) ([]byte, error) {
	if k.file != "" {
		return os.ReadFile(k.file)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", k.url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes))
}

// load reads and parses the key set and swaps it in.
func (k *keySet) load(ctx context.Context) error {
	data, err := k.read(ctx)
	if err != nil {
		return fmt.Errorf("read %s: %w", k.source(), err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return fmt.Errorf("%s is not a JSON Web Key Set: %w", k.source(), err)
	}
	usable := set.Keys[:0]
	for _, key := range set.Keys {
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		if !key.Valid() {
			continue
		}
		pub := key.Public() // a set holding private keys is used for their public halves only
		if !pub.Valid() {
			continue // symmetric keys have no public half; HMAC is never accepted
		}
		usable = append(usable, pub)
	}
	if len(usable) == 0 {
		return fmt.Errorf("%s holds no public signature keys (RSA, EC or OKP)", k.source())
	}
	set.Keys = usable
	k.mu.Lock()
	k.keys, k.fetched = set, k.now()
	k.mu.Unlock()
	return nil
}

// lookup returns the keys that may have signed a token with key id kid (every key when the
// token names none), reading the set again when it is stale or lacks kid.
func (k *keySet) lookup(ctx context.Context, kid string) []jose.JSONWebKey {
	k.mu.RLock()
	keys, age := k.find(kid), k.now().Sub(k.fetched)
	k.mu.RUnlock()
	stale := age > k.refresh
	missing := len(keys) == 0 && age > jwksMinRefetch
	if !stale && !missing {
		return keys
	}
	if missing {
		k.fetchMu.Lock() // this caller needs the new set: wait for a fetch in progress
	} else if !k.fetchMu.TryLock() {
		return keys // another request is refreshing; these keys are still good
	}
	defer k.fetchMu.Unlock()
	k.mu.RLock()
	refetched := k.now().Sub(k.fetched) < jwksMinRefetch
	k.mu.RUnlock()
	if !refetched {
		if err := k.load(ctx); err != nil {
			k.log.Warn("jwks refresh failed; keeping the keys held", "source", k.source(), "err", err)
		}
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.find(kid)
}

func (k *keySet) find(kid string) []jose.JSONWebKey {
	if kid == "" {
		return k.keys.Keys
	}
	return k.keys.Key(kid)
}

// tokenCacheSize bounds the verified-token cache; tokenCacheTTL bounds how long a verified
// token is trusted without checking its signature again (its expiry is checked every call).
const (
	tokenCacheSize = 4096
	tokenCacheTTL  = time.Minute
)

type cachedToken struct {
	p       *Principal
	expiry  time.Time
	checked time.Time
}

// jwtVerifier verifies bearer JWTs.
type jwtVerifier struct {
	cfg  JWTConfig
	algs []jose.SignatureAlgorithm
	keys *keySet
	now  func() time.Time

	mu      sync.RWMutex
	cache   map[string]cachedToken
	noCache bool // benchmarks of the full verification
}

func newJWTVerifier(ctx context.Context, cfg JWTConfig, client *http.Client, now func() time.Time, log *slog.Logger) (*jwtVerifier, error) {
	cfg.defaults()
	v := &jwtVerifier{cfg: cfg, now: now, cache: map[string]cachedToken{}}
	for _, a := range cfg.Algorithms {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	v.keys = &keySet{file: cfg.JWKSFile, url: cfg.JWKSURL, client: client, refresh: cfg.JWKSRefresh, now: now, log: log}
	if err := v.keys.load(ctx); err != nil {
		return nil, configErrorf("%v", err)
	}
	return v, nil
}

// verify checks raw's signature, issuer, audience and times and returns its principal.
func (v *jwtVerifier) verify(ctx context.Context, raw string) (*Principal, error) {
	p, _, err := v.verifyExpiry(ctx, raw)
	return p, err
}

// verifyExpiry is verify that also returns the token's expiry.
func (v *jwtVerifier) verifyExpiry(ctx context.Context, raw string) (*Principal, time.Time, error) {
	now := v.now()
	v.mu.RLock()
	c, ok := v.cache[raw]
	v.mu.RUnlock()
	if ok && !v.noCache && now.Sub(c.checked) < tokenCacheTTL {
		if now.After(c.expiry.Add(v.cfg.ClockSkew)) {
			return nil, time.Time{}, unauthenticated(reasonExpired, "token expired at %s", c.expiry.UTC().Format(time.RFC3339))
		}
		return c.p, c.expiry, nil
	}
	tok, err := jwt.ParseSigned(raw, v.algs)
	if err != nil {
		return nil, time.Time{}, unauthenticated(reasonInvalid, "bearer token is not a JWT signed with an accepted algorithm (%v)", v.cfg.Algorithms)
	}
	kid := tok.Headers[0].KeyID
	keys := v.keys.lookup(ctx, kid)
	if len(keys) == 0 {
		return nil, time.Time{}, unauthenticated(reasonInvalid, "token key id %q is not in the server's key set", kid)
	}
	var claims jwt.Claims
	var extra map[string]json.RawMessage
	verified := false
	for _, key := range keys {
		if err := tok.Claims(key.Key, &claims, &extra); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, time.Time{}, unauthenticated(reasonInvalid, "token signature does not verify")
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: v.cfg.Issuer, AnyAudience: v.cfg.Audiences, Time: now}, v.cfg.ClockSkew); err != nil {
		switch {
		case errors.Is(err, jwt.ErrExpired):
			return nil, time.Time{}, unauthenticated(reasonExpired, "token expired at %s", claims.Expiry.Time().UTC().Format(time.RFC3339))
		case errors.Is(err, jwt.ErrInvalidIssuer):
			return nil, time.Time{}, unauthenticated(reasonInvalid, "token issuer %q is not the issuer this server accepts", claims.Issuer)
		case errors.Is(err, jwt.ErrInvalidAudience):
			return nil, time.Time{}, unauthenticated(reasonInvalid, "token audience %q does not include one this server accepts", []string(claims.Audience))
		case errors.Is(err, jwt.ErrNotValidYet):
			return nil, time.Time{}, unauthenticated(reasonInvalid, "token is not valid before %s", claims.NotBefore.Time().UTC().Format(time.RFC3339))
		case errors.Is(err, jwt.ErrIssuedInTheFuture):
			return nil, time.Time{}, unauthenticated(reasonInvalid, "token is issued in the future")
		}
		return nil, time.Time{}, unauthenticated(reasonInvalid, "token claims do not validate")
	}
	if claims.Expiry == nil {
		return nil, time.Time{}, unauthenticated(reasonInvalid, "token has no expiry (exp); only expiring tokens are accepted")
	}
	if claims.Subject == "" {
		return nil, time.Time{}, unauthenticated(reasonInvalid, "token has no subject (sub)")
	}
	p := &Principal{Subject: claims.Subject, Groups: groupsOf(extra[v.cfg.GroupsClaim])}
	p.ids = p.buildIDs()
	v.remember(raw, cachedToken{p: p, expiry: claims.Expiry.Time(), checked: now})
	return p, claims.Expiry.Time(), nil
}

// groupsOf reads a groups claim: a list of strings or one string.
func groupsOf(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var one string
	if json.Unmarshal(raw, &one) == nil && one != "" {
		return []string{one}
	}
	return nil
}

func (v *jwtVerifier) remember(raw string, c cachedToken) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cache) >= tokenCacheSize {
		for k := range v.cache { // evict an arbitrary tenth
			delete(v.cache, k)
			if len(v.cache) < tokenCacheSize*9/10 {
				break
			}
		}
	}
	v.cache[raw] = c
}
