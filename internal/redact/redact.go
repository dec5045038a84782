// Package redact hides secrets in text Quiver prints: the password of a store URL.
package redact

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Redacted replaces a secret wherever Quiver prints one.
const Redacted = "[redacted]"

// URL returns rawURL with its password (userinfo password, or a "password" query
// parameter) replaced by "[redacted]", for error messages and logs. Strings that do not parse
// as a URL are returned with anything between "://user:" and "@" redacted.
func URL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return redactLoose(rawURL)
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "REDACTEDPLACEHOLDER")
		}
	}
	q := u.Query()
	changed := false
	for k := range q {
		if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
			q[k] = []string{"REDACTEDPLACEHOLDER"}
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	// url.URL would percent-encode "[redacted]"; substitute after formatting.
	return strings.ReplaceAll(u.String(), "REDACTEDPLACEHOLDER", Redacted)
}

func redactLoose(s string) string {
	scheme := strings.Index(s, "://")
	if scheme < 0 {
		return s
	}
	rest := s[scheme+3:]
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	colon := strings.Index(rest[:at], ":")
	if colon < 0 {
		return s
	}
	return s[:scheme+3] + rest[:colon+1] + Redacted + rest[at:]
}

// Passwords returns the secrets in rawURL — its userinfo password and its password query
// parameters, both as written and decoded — so that a caller can scrub them from any text,
// including errors a driver formats from the URL. It works on URLs that do not parse.
func Passwords(rawURL string) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
			if d, err := url.PathUnescape(s); err == nil && d != s {
				out = append(out, d)
			}
		}
	}
	if scheme := strings.Index(rawURL, "://"); scheme >= 0 {
		rest := rawURL[scheme+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, pass, ok := strings.Cut(rest[:at], ":"); ok {
				add(pass)
			}
		}
	}
	if _, query, ok := strings.Cut(rawURL, "?"); ok {
		for _, kv := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
				add(v)
			}
		}
	}
	return out
}

// urlPassword matches the password of scheme://user:password@ in free text.
var urlPassword = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@"'` + "`" + `]*:)([^\s@"'` + "`" + `]+)@`)

// queryPassword matches password=... query parameters in free text.
var queryPassword = regexp.MustCompile(`(?i)([?&](?:ssl)?password=)[^&\s"'` + "`" + `]+`)

// Text redacts URL passwords anywhere in s (an error message, a log line): the password of
// every scheme://user:password@host and every password= query parameter.
func Text(s string) string {
	s = urlPassword.ReplaceAllString(s, "${1}"+Redacted+"@")
	return queryPassword.ReplaceAllString(s, "${1}"+Redacted)
}

// ParseError is the error to return when rawURL (which may hold a password) does not parse:
// what names the thing being opened ("open redis online store"). Its message carries the URL
// redacted and the parser's reason with every secret of rawURL removed; it does not wrap err,
// whose text may quote the URL whole.
func ParseError(what, rawURL string, err error) error {
	var ue *url.Error
	reason := err
	if errors.As(err, &ue) {
		reason = ue.Err
	}
	msg := reason.Error()
	for _, p := range Passwords(rawURL) {
		msg = strings.ReplaceAll(msg, p, Redacted)
	}
	msg = strings.ReplaceAll(msg, rawURL, URL(rawURL))
	return fmt.Errorf("%s %s: %s", what, URL(rawURL), Text(msg))
}
