package registry_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/registry"
)

func TestCheckAliasName(t *testing.T) {
	for _, ok := range []string{"production", "candidate_2", "_shadow", "v2_rc", "vNext"} {
		require.NoError(t, registry.CheckAliasName(ok), ok)
	}
	for bad, want := range map[string]string{
		"../x":    "invalid alias",
		"":        "invalid alias",
		"a b":     "invalid alias",
		"v2":      "looks like a version number",
		"2":       "looks like a version number",
		"V10":     "looks like a version number",
		"latest":  "is built in",
		"Latest":  "is built in",
		"current": "is built in",
	} {
		err := registry.CheckAliasName(bad)
		require.ErrorIs(t, err, registry.ErrInvalid, bad)
		require.ErrorContains(t, err, want, bad)
	}
}

func TestSanitizePrincipal(t *testing.T) {
	require.Equal(t, "ana@host", registry.SanitizePrincipal("ana@host"))
	require.Equal(t, "José", registry.SanitizePrincipal("José"))
	require.Equal(t, `eve\n2026-01-01 apply by admin`, registry.SanitizePrincipal("eve\n2026-01-01 apply by admin"))
	require.Equal(t, `eve\x1b[2K\rroot`, registry.SanitizePrincipal("eve\x1b[2K\rroot"))
	require.Equal(t, `a\u202eb`, registry.SanitizePrincipal("a\u202eb"))
	require.Equal(t, `a\xffb`, registry.SanitizePrincipal("a\xffb"))
	require.Equal(t, "a\uFFFDb", registry.SanitizePrincipal("a\uFFFDb"))
	long := registry.SanitizePrincipal(string(make([]byte, 1000)))
	require.LessOrEqual(t, len(long), 4*256+3)
}
