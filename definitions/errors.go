package definitions

import (
	"fmt"
	"sort"
	"strings"

	"github.com/quiverfs/quiver/internal/errkind"
)

// ErrInvalid is wrapped by every error that reports invalid definitions, so callers can tell
// "the user's YAML is wrong" from I/O failures with errors.Is.
var ErrInvalid = errkind.New(errkind.Invalid, "invalid definitions")

// ErrBreakingChange is returned when a plan holds breaking changes (ClassifyChange) that the
// caller did not allow. It matches ErrInvalid.
var ErrBreakingChange = fmt.Errorf("breaking change not allowed: %w", ErrInvalid)

// Error is one problem in the definitions, at a position.
type Error struct {
	Pos Pos
	Msg string
	// Omitted is non-zero only on the last entry of a list cut at MaxErrors: how many more
	// problems there were. Such an entry has no position.
	Omitted int
}

func (e *Error) Error() string {
	if e.Omitted > 0 {
		return fmt.Sprintf("and %d more problems (only the first %d are listed)", e.Omitted, MaxErrors)
	}
	if e.Pos.File == "" {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Unwrap() error { return ErrInvalid }

// ErrorList is every problem found, sorted by file, line and column. Decoding and validation
// report all problems at once rather than stopping at the first.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (l ErrorList) Unwrap() error { return ErrInvalid }

// Err returns nil for an empty list and the sorted list otherwise, cut to its first
// MaxErrors problems plus an "and N more" entry when longer.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	out := make(ErrorList, 0, min(len(l), MaxErrors+1))
	omitted := 0
	for _, e := range l {
		if e.Omitted > 0 {
			omitted += e.Omitted
		} else {
			out = append(out, e)
		}
	}
	out.sort()
	if len(out) > MaxErrors {
		omitted += len(out) - MaxErrors
		out = out[:MaxErrors]
	}
	if omitted > 0 {
		out = append(out, &Error{Omitted: omitted, Msg: fmt.Sprintf("and %d more problems (only the first %d are listed)", omitted, MaxErrors)})
	}
	return out
}

// add records a problem; past MaxErrors it only counts it, so that a file with a million
// problems costs no more memory than one with a hundred.
func (l *ErrorList) add(pos Pos, format string, args ...any) {
	if n := len(*l); n >= MaxErrors {
		if last := (*l)[n-1]; last.Omitted > 0 {
			last.Omitted++
		} else {
			*l = append(*l, &Error{Omitted: 1})
		}
		return
	}
	*l = append(*l, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// suggest returns `; did you mean "x"?` when one of the candidates is close to s, else "".
func suggest(s string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := levenshtein(strings.ToLower(s), strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := max(2, len(s)/3)
	if best == "" || bestDist > limit {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// Suggest is the exported form of the "did you mean" helper, for other packages' error
// messages (unknown feature names in serving requests, for example).
func Suggest(s string, candidates []string) string { return suggest(s, candidates) }

// levenshtein is the edit distance between a and b, in bytes.
func levenshtein(a, b string) int {
	if len(a) > 256 || len(b) > 256 { // names are short; bound the work on hostile input
		if a == b {
			return 0
		}
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// quoteList formats names for "valid ones are ..." messages, eliding long lists.
func quoteList(names []string) string {
	const show = 12
	q := make([]string, 0, min(len(names), show))
	for i, n := range names {
		if i == show {
			break
		}
		q = append(q, fmt.Sprintf("%q", n))
	}
	s := strings.Join(q, ", ")
	if len(names) > show {
		s += fmt.Sprintf(" and %d more", len(names)-show)
	}
	if s == "" {
		return "(none declared)"
	}
	return s
}
