// Package yamlx is the strict YAML decoding Quiver's files share (feature definitions, the
// serving section of quiver.yaml, policy files): a walk over yaml.v3 nodes in which unknown and
// repeated keys are errors, every problem is reported at its line and column and decoding goes
// on to find the others, and a misspelt name gets a "did you mean".
package yamlx

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decoder reads YAML nodes, reporting each problem found to its report function. It holds no
// other state: the caller keeps the problems, with the file name and any limit on their number.
type Decoder struct {
	report func(line, col int, msg string)
}

// NewDecoder returns a Decoder that reports each problem, at its 1-based line and column, to
// report.
func NewDecoder(report func(line, col int, msg string)) *Decoder {
	return &Decoder{report: report}
}

// Errorf reports a problem at n.
func (d *Decoder) Errorf(n *yaml.Node, format string, args ...any) {
	d.report(n.Line, n.Column, fmt.Sprintf(format, args...))
}

// KeyValue is one entry of a mapping: its key, the key's node (for positions) and its value
// (aliases resolved).
type KeyValue struct {
	Key     string
	KeyNode *yaml.Node
	Value   *yaml.Node
}

// Mapping checks that n is a mapping whose keys are all in allowed, reporting other keys (with
// a did-you-mean), repeated keys, non-scalar keys and merge keys, and returns its valid entries
// in order. what names the mapping in messages ("entity", "serving jwt").
func (d *Decoder) Mapping(n *yaml.Node, what string, allowed []string) []KeyValue {
	n = Resolve(n)
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, "%s must be a mapping of %s, got %s", what, strings.Join(allowed, ", "), Describe(n))
		return nil
	}
	seen := map[string]bool{}
	var out []KeyValue
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := Resolve(n.Content[i]), Resolve(n.Content[i+1])
		switch {
		case k.Kind != yaml.ScalarNode:
			d.Errorf(k, "%s keys must be plain names, got %s", what, Describe(k))
		case k.Tag == "!!merge":
			d.Errorf(k, "YAML merge keys (<<) are not supported in %s; write the keys out", what)
		case !contains(allowed, k.Value):
			d.Errorf(k, "unknown key %q in %s (valid keys: %s)%s", k.Value, what, strings.Join(allowed, ", "), Suggest(k.Value, allowed))
		case seen[k.Value]:
			d.Errorf(k, "key %q appears twice in %s", k.Value, what)
		default:
			seen[k.Value] = true
			out = append(out, KeyValue{Key: k.Value, KeyNode: k, Value: v})
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Str is kv's value as a string (possibly empty); a problem unless it is a non-null scalar.
func (d *Decoder) Str(kv KeyValue, what string) string {
	n := kv.Value
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.Errorf(n, "%s %s must be a string, got %s", what, kv.Key, Describe(n))
		return ""
	}
	return n.Value
}

// NonEmptyStr is Str, an empty string being a problem too.
func (d *Decoder) NonEmptyStr(kv KeyValue, what string) string {
	n := kv.Value
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Value == "" {
		d.Errorf(n, "%s %s must be a non-empty string, got %s", what, kv.Key, Describe(n))
		return ""
	}
	return n.Value
}

// Int is kv's value as a whole number that fits in 32 bits.
func (d *Decoder) Int(kv KeyValue, what string) int {
	n := kv.Value
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.Errorf(n, "%s %s must be a whole number, got %s", what, kv.Key, Describe(n))
		return 0
	}
	v, err := strconv.ParseInt(n.Value, 0, 32)
	if err != nil {
		d.Errorf(n, "%s %s must be a whole number that fits in 32 bits, got %s", what, kv.Key, n.Value)
		return 0
	}
	return int(v)
}

// Bool is kv's value as a boolean (true or false, in any case).
func (d *Decoder) Bool(kv KeyValue, what string) bool {
	n := kv.Value
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.Errorf(n, "%s %s must be true or false, got %s", what, kv.Key, Describe(n))
		return false
	}
	v, _ := strconv.ParseBool(strings.ToLower(n.Value))
	return v
}

// StrList is kv's value as a list of strings.
func (d *Decoder) StrList(kv KeyValue, what string) []string {
	n := kv.Value
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, "%s %s must be a list of strings, got %s", what, kv.Key, Describe(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		item = Resolve(item)
		if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
			d.Errorf(item, "%s %s must be a list of strings, got %s in it", what, kv.Key, Describe(item))
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

// StrMap is kv's value as a mapping of names to plain values.
func (d *Decoder) StrMap(kv KeyValue, what string) map[string]string {
	n := kv.Value
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, "%s %s must be a mapping of strings, got %s", what, kv.Key, Describe(n))
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := Resolve(n.Content[i]), Resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			d.Errorf(k, "%s %s must map names to plain values", what, kv.Key)
			continue
		}
		if _, dup := out[k.Value]; dup {
			d.Errorf(k, "key %q appears twice in %s %s", k.Value, what, kv.Key)
			continue
		}
		out[k.Value] = v.Value
	}
	return out
}

// Resolve follows aliases (at most 100 hops), so anchors behave as written.
func Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// Describe says what a node is, for messages: "a list", "the number 3", `"text"`, ...
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing (null)"
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return strconv.Quote(n.Value)
	}
	return "an unsupported YAML node"
}

var lineRE = regexp.MustCompile(`line (\d+)(?:, column (\d+))?`)

// SyntaxError reads a yaml.Unmarshal error: the line and column it names (1 for what it does
// not name) and the message "invalid YAML: ..." without them.
func SyntaxError(err error) (line, col int, msg string) {
	line, col = 1, 1
	s := err.Error()
	if m := lineRE.FindStringSubmatch(s); m != nil {
		line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			col, _ = strconv.Atoi(m[2])
		}
	}
	s = lineRE.ReplaceAllString(strings.TrimPrefix(s, "yaml: "), "")
	s = strings.Trim(strings.TrimSpace(s), ":")
	return line, col, "invalid YAML: " + strings.TrimSpace(s)
}

// Suggest returns `; did you mean "x"?` when one of the candidates is close to s (by edit
// distance, ignoring case), else "".
func Suggest(s string, candidates []string) string {
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
