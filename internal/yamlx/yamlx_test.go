package yamlx_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/quiverfs/quiver/internal/yamlx"
)

// decode parses src and decodes its top mapping with allowed keys, returning the keys read and
// every problem as "line:col: message".
func decode(t *testing.T, src string, allowed ...string) ([]string, []string) {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(src), &doc))
	var problems []string
	d := yamlx.NewDecoder(func(line, col int, msg string) { problems = append(problems, fmt.Sprintf("%d:%d: %s", line, col, msg)) })
	var keys []string
	for _, kv := range d.Mapping(doc.Content[0], "thing", allowed) {
		keys = append(keys, kv.Key)
	}
	return keys, problems
}

func TestMapping(t *testing.T) {
	keys, problems := decode(t, "name: a\nnmea: b\nname: c\n[x]: 1\nother: 2\n", "name", "type")
	require.Equal(t, []string{"name"}, keys)
	require.Equal(t, []string{
		`2:1: unknown key "nmea" in thing (valid keys: name, type); did you mean "name"?`,
		`3:1: key "name" appears twice in thing`,
		`4:1: thing keys must be plain names, got a list`,
		`5:1: unknown key "other" in thing (valid keys: name, type)`,
	}, problems)

	_, problems = decode(t, "base: &b {name: a}\nuse:\n  <<: *b\n", "base", "use")
	require.Empty(t, problems, "the top mapping is fine")
	_, problems = decode(t, "- 1\n", "name")
	require.Equal(t, []string{"1:1: thing must be a mapping of name, got a list"}, problems)
}

func TestScalars(t *testing.T) {
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("s: ''\nn: 99999999999\nb: yes\nl: [a, ~]\nm: {a: 1, b: [x]}\n"), &doc))
	var problems []string
	d := yamlx.NewDecoder(func(line, col int, msg string) { problems = append(problems, fmt.Sprintf("%d:%d: %s", line, col, msg)) })
	kvs := d.Mapping(doc.Content[0], "t", []string{"s", "n", "b", "l", "m"})
	require.Equal(t, "", d.Str(kvs[0], "t"))
	require.Equal(t, "", d.NonEmptyStr(kvs[0], "t"))
	require.Zero(t, d.Int(kvs[1], "t"))
	require.False(t, d.Bool(kvs[2], "t"))
	require.Equal(t, []string{"a"}, d.StrList(kvs[3], "t"))
	require.Equal(t, map[string]string{"a": "1"}, d.StrMap(kvs[4], "t"))
	require.Equal(t, []string{
		`1:4: t s must be a non-empty string, got ""`,
		`2:4: t n must be a whole number that fits in 32 bits, got 99999999999`,
		`3:4: t b must be true or false, got "yes"`,
		`4:8: t l must be a list of strings, got nothing (null) in it`,
		`5:11: t m must map names to plain values`,
	}, problems)
}

func TestSyntaxError(t *testing.T) {
	var doc yaml.Node
	err := yaml.Unmarshal([]byte("a: 1\n\tb: 2\n"), &doc)
	require.Error(t, err)
	line, col, msg := yamlx.SyntaxError(err)
	require.Equal(t, 2, line)
	require.Equal(t, 1, col)
	require.Equal(t, "invalid YAML: found a tab character that violates indentation", msg)
}

func TestSuggest(t *testing.T) {
	require.Equal(t, `; did you mean "feature_views"?`, yamlx.Suggest("feature_veiws", []string{"entities", "feature_views"}))
	require.Equal(t, "", yamlx.Suggest("zzz", []string{"entities"}))
	require.Equal(t, `; did you mean "Name"?`, yamlx.Suggest("name", []string{"Name"}), "case does not count")
}
