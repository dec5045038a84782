// Package redact hides secrets in text Quiver prints: the password of a store URL.
package redact

import (
	"net/url"
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
