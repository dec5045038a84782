package online_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

func allTypesView(t testing.TB) *online.View {
	return onlinetest.MustView(t, "shop", onlinetest.FeatureView("all_types", []string{"user"}, 0, onlinetest.AllTypes...))
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	v := allTypesView(t)
	for seed := range 4 {
		vals := onlinetest.SampleValues(seed)
		if seed == 3 {
			for i := range vals {
				vals[i] = online.Null()
			}
		}
		row := online.Row{Key: "k", EventTS: time.UnixMicro(-5_000_000).Add(time.Duration(seed) * time.Hour), CreatedTS: time.UnixMicro(7), Values: vals}
		enc, err := online.EncodeRow(nil, v, &row)
		require.NoError(t, err)
		require.Equal(t, byte(online.RowFormatVersion), enc[0])

		out := make([]online.Value, len(v.Features))
		found := make([]bool, len(v.Features))
		ev, err := online.DecodeRow(string(enc), v, out, found)
		require.NoError(t, err)
		require.Equal(t, row.EventTS.UTC(), ev)
		for i := range vals {
			require.True(t, found[i])
			require.True(t, vals[i].Equal(out[i]), "feature %d: %#v != %#v", i, vals[i], out[i])
		}
		evt, created, err := online.RowTimes(string(enc))
		require.NoError(t, err)
		require.Equal(t, ev, evt)
		require.Equal(t, time.UnixMicro(7).UTC(), created)
	}
}

// TestHeaderOrder: the 16 bytes after the version byte order rows like (event_ts, created_ts),
// which the Redis write script relies on.
func TestHeaderOrder(t *testing.T) {
	v := onlinetest.MustView(t, "shop", onlinetest.FeatureView("v", []string{"user"}, 0, "int64"))
	times := []time.Time{
		time.UnixMicro(-1 << 50), time.UnixMicro(-1), time.UnixMicro(0), time.UnixMicro(1),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.UnixMicro(1 << 52),
	}
	var prev string
	for _, ev := range times {
		for _, cr := range times {
			enc, err := online.EncodeRow(nil, v, &online.Row{EventTS: ev, CreatedTS: cr, Values: []online.Value{online.Null()}})
			require.NoError(t, err)
			h := string(enc[1:online.RowHeaderLen])
			require.Greater(t, h, prev, "event %v created %v", ev, cr)
			prev = h
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	v := allTypesView(t)
	good, err := online.EncodeRow(nil, v, &online.Row{EventTS: time.Now(), Values: onlinetest.SampleValues(1)})
	require.NoError(t, err)
	out := make([]online.Value, len(v.Features))
	found := make([]bool, len(v.Features))
	cases := map[string]string{
		"empty":          "",
		"short header":   string(good[:10]),
		"bad version":    "\x02" + string(good[1:]),
		"truncated":      string(good[:len(good)-1]),
		"trailing bytes": string(good) + "x",
		"huge count":     string(good[:online.RowHeaderLen]) + "\xff\xff\xff\xff\x0f",
		"bad type":       string(binary.AppendUvarint(append([]byte(nil), good[:online.RowHeaderLen]...), 1)) + "\x00\x00\x00\x00\x7f",
		"bad array len":  string(binary.AppendUvarint(append([]byte(nil), good[:online.RowHeaderLen]...), 1)) + "\x00\x00\x00\x00\x81\x03abc",
	}
	for name, data := range cases {
		_, err := online.DecodeRow(data, v, out, found)
		require.ErrorIs(t, err, online.ErrCorrupt, name)
	}
}

func TestEncodeRejectsBadRows(t *testing.T) {
	v := onlinetest.MustView(t, "shop", onlinetest.FeatureView("v", []string{"user"}, 0, "int64", "array<string>"))
	_, err := online.EncodeRow(nil, v, &online.Row{EventTS: time.Now(), Values: []online.Value{online.Int64(1)}})
	require.ErrorIs(t, err, online.ErrInvalidArgument)
	_, err = online.EncodeRow(nil, v, &online.Row{EventTS: time.Now(), Values: []online.Value{online.Int64(1), online.String("x")}})
	require.ErrorIs(t, err, online.ErrTypeMismatch)
	_, err = online.EncodeRow(nil, v, &online.Row{Values: []online.Value{online.Int64(1), online.Null()}})
	require.ErrorIs(t, err, online.ErrInvalidArgument)
}

func TestEntityKeys(t *testing.T) {
	ents := onlinetest.Entities
	user := onlinetest.MustView(t, "shop", onlinetest.FeatureView("a", []string{"user"}, 0, "int64"))
	user2 := onlinetest.MustView(t, "shop", onlinetest.FeatureView("b", []string{"user"}, time.Hour, "string"))
	both := onlinetest.MustView(t, "shop", onlinetest.FeatureView("c", []string{"user", "device"}, 0, "int64"))
	require.Equal(t, []string{"user_id", "region", "device_id"}, []string{both.JoinKeys[0].Name, both.JoinKeys[1].Name, both.JoinKeys[2].Name})

	k1, err := user.Key(online.Int64(42))
	require.NoError(t, err)
	k2, err := user2.Key(online.Int64(42))
	require.NoError(t, err)
	require.Equal(t, k1, k2, "same entity, same key")
	k3, err := user.Key(online.Int64(43))
	require.NoError(t, err)
	require.NotEqual(t, k1, k3)
	kc, err := both.Key(online.Int64(42), online.String("eu"), online.Int32(7))
	require.NoError(t, err)
	require.NotEqual(t, k1, kc)
	require.True(t, len(kc) > len(both.KeyPrefix()) && string(kc[:len(both.KeyPrefix())]) == string(both.KeyPrefix()))
	// Composite keys are unambiguous: ("a","bc") and ("ab","c") differ.
	pair := []definitions.Entity{{Name: "pair", JoinKeys: []definitions.Field{{Name: "x", Type: definitions.MustType("string")}, {Name: "y", Type: definitions.MustType("string")}}}}
	pv, err := online.NewView("shop", &definitions.FeatureView{Name: "p", Entities: []string{"pair"}}, pair)
	require.NoError(t, err)
	ka, _ := pv.Key(online.String("a"), online.String("bc"))
	kb, _ := pv.Key(online.String("ab"), online.String("c"))
	require.NotEqual(t, ka, kb)

	_, err = user.Key(online.Null())
	require.ErrorIs(t, err, online.ErrInvalidArgument)
	_, err = both.Key(online.Int64(1))
	require.ErrorIs(t, err, online.ErrInvalidArgument)
	_ = ents
}

func TestNewViewErrors(t *testing.T) {
	fv := onlinetest.FeatureView("v", []string{"user"}, 0, "int64")
	for _, p := range []string{"", "a:b", "a{b", "a}b", "a\nb"} {
		_, err := online.NewView(p, fv, onlinetest.Entities)
		require.ErrorIs(t, err, online.ErrInvalidArgument, "project %q", p)
	}
	_, err := online.NewView("p", onlinetest.FeatureView("v", []string{"nobody"}, 0, "int64"), onlinetest.Entities)
	require.ErrorIs(t, err, online.ErrInvalidArgument)
	dup := onlinetest.FeatureView("v", []string{"user"}, 0, "int64", "int64")
	_, err = online.NewView("p", dup, onlinetest.Entities)
	require.ErrorIs(t, err, online.ErrInvalidArgument)
	arrKey := []definitions.Entity{{Name: "e", JoinKeys: []definitions.Field{{Name: "k", Type: definitions.MustType("array<int64>")}}}}
	_, err = online.NewView("p", onlinetest.FeatureView("v", []string{"e"}, 0, "int64"), arrKey)
	require.ErrorIs(t, err, online.ErrInvalidArgument)
}

func TestResultBuilderZeroFeatures(t *testing.T) {
	v := onlinetest.MustView(t, "shop", onlinetest.FeatureView("v", []string{"user"}, 0, "int64"))
	enc, err := online.EncodeRow(nil, v, &online.Row{EventTS: time.Now(), Values: []online.Value{online.Int64(1)}})
	require.NoError(t, err)
	req := online.ReadRequest{Views: []online.ViewRead{{View: v, Features: []int{}, Keys: []online.EntityKey{"k"}}}}
	b, err := online.NewResultBuilder(&req, time.Now())
	require.NoError(t, err)
	require.NoError(t, b.Set(0, 0, string(enc)))
	require.Empty(t, b.Result().Columns)
}

func FuzzDecodeRow(f *testing.F) {
	v := allTypesView(f)
	for seed := range 3 {
		enc, err := online.EncodeRow(nil, v, &online.Row{EventTS: time.Now(), Values: onlinetest.SampleValues(seed)})
		require.NoError(f, err)
		f.Add(enc)
	}
	f.Add([]byte{1})
	f.Add([]byte("\x01\x80\x00\x00\x00\x00\x00\x00\x00\x80\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x86\x02ab"))
	out := make([]online.Value, len(v.Features))
	found := make([]bool, len(v.Features))
	f.Fuzz(func(t *testing.T, data []byte) {
		clear(found)
		if _, err := online.DecodeRow(string(data), v, out, found); err != nil {
			return
		}
		// Whatever decodes must be usable: accessors never panic, and re-encoding the
		// decoded features gives a row that decodes to the same values.
		vals := make([]online.Value, len(v.Features))
		for i := range vals {
			if !found[i] {
				continue
			}
			vals[i] = out[i]
			_ = out[i].Len()
			_ = out[i].Strings()
			_ = out[i].Float64s()
			_ = out[i].Int32s()
			_ = out[i].Timestamps()
		}
		ev, cr, err := online.RowTimes(string(data))
		require.NoError(t, err)
		enc, err := online.EncodeRow(nil, v, &online.Row{EventTS: ev, CreatedTS: cr, Values: vals})
		if ev.IsZero() {
			return
		}
		require.NoError(t, err)
		out2 := make([]online.Value, len(v.Features))
		found2 := make([]bool, len(v.Features))
		_, err = online.DecodeRow(string(enc), v, out2, found2)
		require.NoError(t, err)
		for i := range vals {
			if found[i] {
				require.True(t, vals[i].Equal(out2[i]))
			}
		}
	})
}

// TestDecodeWidensCompatibleTypes: rows written before a compatible promotion (int32 to
// int64, float32 to float64) still read; an incompatible change reads as not found.
func TestDecodeWidensCompatibleTypes(t *testing.T) {
	old := onlinetest.MustView(t, "p", onlinetest.FeatureView("v", []string{"user"}, 0, "int32", "float32", "int64"))
	row := online.Row{Key: "k", EventTS: time.UnixMicro(1), Values: []online.Value{online.Int32(-7), online.Float32(1.5), online.Int64(9)}}
	enc, err := online.EncodeRow(nil, old, &row)
	require.NoError(t, err)
	// Same feature names (f_int32, f_float32, f_int64), new types.
	fv := onlinetest.FeatureView("v", []string{"user"}, 0, "int64", "float64", "int32")
	fv.Features[0].Name, fv.Features[1].Name, fv.Features[2].Name = "f_int32", "f_float32", "f_int64"
	cur := onlinetest.MustView(t, "p", fv)
	out := make([]online.Value, 3)
	found := make([]bool, 3)
	_, err = online.DecodeRow(string(enc), cur, out, found)
	require.NoError(t, err)
	require.Equal(t, []bool{true, true, false}, found, "int64 to int32 narrows: not found")
	require.Equal(t, int64(-7), out[0].Int64())
	require.Equal(t, 1.5, out[1].Float64())
}
