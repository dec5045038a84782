package definitions

import (
	"fmt"
	"sort"
	"strings"

	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/internal/yamlx"
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

// Suggest returns `; did you mean "x"?` when one of the candidates is close to s, else "", for
// error messages here and in other packages (unknown feature names in serving requests, for
// example). It is yamlx.Suggest.
func Suggest(s string, candidates []string) string { return yamlx.Suggest(s, candidates) }

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
