package bytesize

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1048576": 1048576, "512MiB": 512 << 20, "512mib": 512 << 20, "512 MiB": 512 << 20,
		"2GB": 2_000_000_000, "2gb": 2_000_000_000, "1.5GiB": 3 << 29, "64KiB": 64 << 10, "10B": 10,
		"1TiB": 1 << 40, "4G": 4 << 30, "100k": 100 << 10, " 7MB ": 7_000_000,
	} {
		got, err := Parse(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "abc", "-1", "12XB", "MiB", "1.2.3GB", "99999999999999999999", "9000000TiB"} {
		_, err := Parse(bad)
		require.ErrorIs(t, err, ErrSyntax, bad)
	}
	_, err := Parse("lots")
	require.EqualError(t, err, `invalid byte size "lots": want a number of bytes with an optional unit, like 512MiB, 2GB or 1048576 (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)`)
}

func TestFormatAndValue(t *testing.T) {
	require.Equal(t, "512MiB", Format(512<<20))
	require.Equal(t, "1000", Format(1000))
	require.Equal(t, "0", Format(0))
	var n int64
	v := NewValue(&n, 2<<30)
	require.Equal(t, "2GiB", v.String())
	require.NoError(t, v.Set("512MiB"))
	require.Equal(t, int64(512<<20), n)
	require.Error(t, v.Set("x"))
	var i int
	iv := NewIntValue(&i, 4<<20)
	require.Equal(t, "4MiB", iv.String())
	require.NoError(t, iv.Set("16MiB"))
	require.Equal(t, 16<<20, i)
}
