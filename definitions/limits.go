package definitions

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Limits on what one definitions file may cost to decode, so that a hostile or generated file
// gets a clear error instead of minutes of CPU and gigabytes of memory (issue 18).
const (
	// MaxFileSize is the largest definitions file read, in bytes. Split larger repos into
	// several files.
	MaxFileSize = 4 << 20
	// MaxAliasExpansion is how many YAML nodes anchors and aliases (&name / *name) may add to
	// a file once expanded. Sharing a tags mapping or a small list is fine; an "alias bomb"
	// is refused before it is walked.
	MaxAliasExpansion = 10_000
	// MaxErrors is how many problems are listed; the rest are counted in a last
	// "and N more problems" entry.
	MaxErrors = 100
)

func fileTooLarge(file string, size int64) *Error {
	return &Error{Pos: Pos{File: file, Line: 1, Col: 1},
		Msg: fmt.Sprintf("file is %d bytes, larger than the %d MiB limit for a definitions file; split it into several files", size, MaxFileSize>>20)}
}

// checkAliases walks the document without following aliases and returns the first alias
// node at which the expanded document grows past MaxAliasExpansion added nodes, or one that
// refers to a node containing itself, with the message to report. It returns nil when the
// aliases are within bounds.
func checkAliases(doc *yaml.Node) (*yaml.Node, string) {
	a := &aliasCounter{size: map[*yaml.Node]int{}, active: map[*yaml.Node]bool{}}
	var bad *yaml.Node
	var msg string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if bad != nil || n == nil {
			return
		}
		if n.Kind == yaml.AliasNode {
			s, cyclic := a.expanded(n.Alias)
			if cyclic {
				bad, msg = n, fmt.Sprintf("alias *%s refers to a node that contains it", n.Value)
				return
			}
			a.added += s - 1
			if a.added > MaxAliasExpansion {
				bad = n
				msg = fmt.Sprintf("YAML aliases expand this file by more than %d nodes (the limit); write the repeated parts out instead of aliasing them", MaxAliasExpansion)
			}
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(doc)
	return bad, msg
}

type aliasCounter struct {
	size   map[*yaml.Node]int
	active map[*yaml.Node]bool
	added  int
}

// expanded is the number of nodes n stands for with every alias under it expanded, saturating
// just past the limit so that nested aliases cannot overflow.
func (a *aliasCounter) expanded(n *yaml.Node) (int, bool) {
	if n == nil {
		return 1, false
	}
	if s, ok := a.size[n]; ok {
		return s, false
	}
	if a.active[n] {
		return 0, true
	}
	a.active[n] = true
	defer delete(a.active, n)
	if n.Kind == yaml.AliasNode {
		s, cyclic := a.expanded(n.Alias)
		a.size[n] = s
		return s, cyclic
	}
	s := 1
	for _, c := range n.Content {
		cs, cyclic := a.expanded(c)
		if cyclic {
			return 0, true
		}
		s = min(s+cs, MaxAliasExpansion+2)
	}
	a.size[n] = s
	return s, false
}
