package registry

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/quiverfs/quiver/definitions"
)

// BuiltinAliases are the model aliases with a built-in meaning in serving ("latest" and
// "current" name the newest version); they cannot be set.
var BuiltinAliases = []string{"latest", "current"}

var versionLike = regexp.MustCompile(`^[vV]?[0-9]+$`)

// CheckAliasName reports whether alias may name a model alias: it follows the identifier rule
// of every other name (letters, digits and '_', starting with a letter or '_'), does not look
// like a version ("2", "v2" — NAME@v2 must always mean version 2), and is not a built-in. The
// error wraps ErrInvalid.
func CheckAliasName(alias string) error {
	switch {
	case versionLike.MatchString(alias):
		return fmt.Errorf("alias %q looks like a version number; NAME@%s means version %s, so pick a name such as production or candidate: %w", alias, alias, strings.TrimLeft(alias, "vV"), ErrInvalid)
	case slices.Contains(BuiltinAliases, strings.ToLower(alias)):
		return fmt.Errorf("alias %q is built in (%s name the newest version); pick another name: %w", alias, strings.Join(BuiltinAliases, ", "), ErrInvalid)
	case !definitions.ValidName(alias):
		return fmt.Errorf("invalid alias %q: use letters, digits and '_', starting with a letter or '_' (e.g. production): %w", alias, ErrInvalid)
	}
	return nil
}

// maxPrincipal bounds a recorded principal name, in runes.
const maxPrincipal = 256

// SanitizePrincipal makes a principal name (who applied, trained, aliased) safe to record and
// print on one line: control and bidirectional-formatting characters and invalid UTF-8 are
// written as Go escapes (a newline becomes \n, ESC becomes \x1b), and the name is cut to 256
// characters. Names taken from the environment (QUIVER_USER, USER) are not authenticated.
func SanitizePrincipal(s string) string {
	var b strings.Builder
	n := 0
	for i, r := range s {
		if n == maxPrincipal {
			b.WriteString("…")
			break
		}
		n++
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"): // an invalid byte
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029':
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
