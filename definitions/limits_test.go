package definitions

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// aliasBomb is the file from issue 18: one feature view anchored, its features list made of
// n aliases of one feature, and the view aliased n times.
func aliasBomb(n int) []byte {
	var b strings.Builder
	b.WriteString("feature_views:\n  - &v\n    name: v\n    source: s\n    entities: [e]\n    features:\n      - &f {name: a, type: int64}\n")
	for range n {
		b.WriteString("      - *f\n")
	}
	for range n {
		b.WriteString("  - *v\n")
	}
	return []byte(b.String())
}

func TestAliasBombIsRefusedCheaply(t *testing.T) {
	data := aliasBomb(1000)
	require.Less(t, len(data), 32<<10, "the bomb is a small file")

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Parse("bomb.yaml", data)
	runtime.ReadMemStats(&after)

	require.ErrorIs(t, err, ErrInvalid)
	var list ErrorList
	require.ErrorAs(t, err, &list)
	require.Len(t, list, 1, "one clear error, not one per expanded node: %v", err)
	require.Contains(t, err.Error(), "bomb.yaml:")
	require.Contains(t, err.Error(), "YAML aliases expand")
	// Before the fix this allocated ~400 MB and reported 1,003,000 errors.
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "decoding must allocate a bounded amount")
}

func TestSmallAliasUseStillWorks(t *testing.T) {
	f, err := Parse("f.yaml", []byte("entities:\n  - name: a\n    join_keys: [{name: a, type: int64}]\n    tags: &t {owner: growth}\n  - name: b\n    join_keys: [{name: b, type: int64}]\n    tags: *t\n"))
	require.NoError(t, err)
	require.Len(t, f.Objects, 2)
	require.Equal(t, "growth", f.Objects[1].(*Entity).Tags["owner"])
}

func TestRecursiveAliasIsAnError(t *testing.T) {
	_, err := Parse("f.yaml", []byte("entities: [&a {name: x, join_keys: [*a]}]"))
	require.ErrorIs(t, err, ErrInvalid)
}

func TestFileSizeCap(t *testing.T) {
	data := []byte("entities: []\n" + strings.Repeat("# padding\n", MaxFileSize/10+1))
	_, err := Parse("big.yaml", data)
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "big.yaml:1:1: file is")
	require.ErrorContains(t, err, "larger than the 4 MiB limit")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "big.yaml"), data, 0o644))
	_, err = Load(dir)
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "big.yaml:1:1: file is")
}

func TestErrorCountIsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("entities:\n")
	for i := range 500 {
		fmt.Fprintf(&b, "  - {name: e%d, bogus: 1, join_keys: [{name: k, type: int64}]}\n", i)
	}
	_, err := Parse("many.yaml", []byte(b.String()))
	require.ErrorIs(t, err, ErrInvalid)
	var list ErrorList
	require.ErrorAs(t, err, &list)
	require.Len(t, list, MaxErrors+1)
	last := list[len(list)-1]
	require.Equal(t, 500-MaxErrors, last.Omitted)
	require.Equal(t, fmt.Sprintf("and %d more problems (only the first %d are listed)", 500-MaxErrors, MaxErrors), last.Error())
	require.Equal(t, last.Error(), last.Msg, "-o json prints Msg")
	require.True(t, strings.HasPrefix(list[0].Error(), "many.yaml:2:"))

	// Across files too: Load merges the lists and keeps one summary.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(b.String()), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(strings.ReplaceAll(b.String(), "name: e", "name: f")), 0o644))
	_, err = Load(dir)
	require.ErrorAs(t, err, &list)
	require.Len(t, list, MaxErrors+1)
	require.Equal(t, 1000-MaxErrors, list[len(list)-1].Omitted)
}

// BenchmarkParseAliasBomb measures refusing the issue 18 alias bomb (10 KB, 1,000 × 1,000
// aliases): go test ./definitions -run '^$' -bench AliasBomb -benchmem
func BenchmarkParseAliasBomb(b *testing.B) {
	data := aliasBomb(1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bomb.yaml", data); err == nil {
			b.Fatal("the bomb parsed")
		}
	}
}
