package serving

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/value"
)

// TestPlainValueEncoding: every value type is written as a plain JSON value a standard
// decoder reads back exactly (int64 to the last digit, float32 in its own shortest form,
// bytes as base64, timestamps as RFC 3339 UTC), and strings are escaped as encoding/json
// escapes them.
func TestPlainValueEncoding(t *testing.T) {
	ts := time.Date(2026, 12, 7, 22, 5, 1, 123456000, time.FixedZone("X", 3600))
	for _, tc := range []struct {
		v    online.Value
		want string
	}{
		{online.Null(), `null`},
		{value.NewInt32(-7), `-7`},
		{value.NewInt64(math.MaxInt64), `9223372036854775807`},
		{value.NewInt64(1<<53 + 1), `9007199254740993`},
		{value.NewFloat32(0.1), `0.1`},
		{value.NewFloat64(0.1), `0.1`},
		{value.NewFloat64(1e21), `1e+21`},
		{value.NewFloat64(math.NaN()), `"NaN"`},
		{value.NewFloat32(float32(math.Inf(-1))), `"-Infinity"`},
		{value.NewBool(true), `true`},
		{value.NewString("a\"b\\c\n<é>\u2028\x01"), `"a\"b\\c\n\u003cé\u003e\u2028\u0001"`},
		{value.NewString("bad\xffutf8"), `"bad\ufffdutf8"`},
		{value.NewBytes([]byte{0, 1, 254}), `"AAH+"`},
		{value.NewTimestamp(ts), `"2026-12-07T21:05:01.123456Z"`},
		{value.NewInt64s([]int64{1, math.MinInt64}), `[1,-9223372036854775808]`},
		{value.NewInt32s(nil), `[]`},
		{value.NewFloat32s([]float32{0.5, 0.1}), `[0.5,0.1]`},
		{value.NewFloat64s([]float64{2.5}), `[2.5]`},
		{value.NewBools([]bool{true, false}), `[true,false]`},
		{value.NewStrings([]string{"x", `"`}), `["x","\""]`},
		{value.NewBytesArray([][]byte{{1}, {}}), `["AQ==",""]`},
		{value.NewTimestamps([]time.Time{ts}), `["2026-12-07T21:05:01.123456Z"]`},
	} {
		got := string(appendPlainValue(nil, tc.v))
		require.Equal(t, tc.want, got, "%v", tc.v.Type())
		require.True(t, json.Valid([]byte(got)), got)
	}
	// Strings as encoding/json writes them.
	for _, s := range []string{"plain", "tab\there", "<script>&", "日本語", "\x7f", "\u2029"} {
		want, _ := json.Marshal(s)
		require.Equal(t, string(want), string(appendJSONString(nil, s)))
	}
	// The bytes decode back.
	var s string
	require.NoError(t, json.Unmarshal(appendPlainValue(nil, value.NewBytes([]byte("hi"))), &s))
	b, _ := base64.StdEncoding.DecodeString(s)
	require.Equal(t, "hi", string(b))
}

// TestPlainValueDecoding: request values are read as what they are written as, and anything
// else is refused naming what was wrong.
func TestPlainValueDecoding(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want online.Value
	}{
		{`7`, value.NewInt64(7)},
		{`-9223372036854775808`, value.NewInt64(math.MinInt64)},
		{`9007199254740993`, value.NewInt64(1<<53 + 1)},
		{`1.5`, value.NewFloat64(1.5)},
		{`1e3`, value.NewFloat64(1000)},
		{`"m1"`, value.NewString("m1")},
		{`true`, value.NewBool(true)},
		{`null`, online.Null()},
		{`[1, 2]`, value.NewInt64s([]int64{1, 2})},
		{`[1, 2.5]`, value.NewFloat64s([]float64{1, 2.5})},
		{`["a"]`, value.NewStrings([]string{"a"})},
		{`[false]`, value.NewBools([]bool{false})},
	} {
		got, err := plainValue(json.RawMessage(tc.in))
		require.NoError(t, err, tc.in)
		require.True(t, tc.want.Equal(got), "%s: got %v", tc.in, got)
	}
	for in, msg := range map[string]string{
		`9223372036854775808`: "does not fit int64",
		`{"a": 1}`:            "is not a JSON number",
		`[1, "a"]`:            "element 1 is a string in an array of int64",
		`[null]`:              "not null or arrays",
		`[[1]]`:               "not null or arrays",
	} {
		_, err := plainValue(json.RawMessage(in))
		require.ErrorContains(t, err, msg, in)
	}
	_, err := plainColumns("entities", map[string][]json.RawMessage{"user_id": {json.RawMessage(`1`), json.RawMessage(`{}`)}})
	require.ErrorContains(t, err, `entities "user_id" row 1`)
	require.ErrorIs(t, err, ErrInvalidRequest)
}

func TestReadBody(t *testing.T) {
	big := strings.Repeat("x", 10000)
	b, err := readBody(make([]byte, 0, 16), strings.NewReader(big))
	require.NoError(t, err)
	require.Equal(t, big, string(b))
	b, err = readBody(nil, bytes.NewReader(nil))
	require.NoError(t, err)
	require.Empty(t, b)
}
