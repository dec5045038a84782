package offline

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
)

func TestArrowTypeRoundTrip(t *testing.T) {
	for _, name := range []string{"int32", "int64", "float32", "float64", "bool", "string", "bytes", "timestamp",
		"array<int32>", "array<int64>", "array<float32>", "array<float64>", "array<bool>", "array<string>", "array<bytes>", "array<timestamp>"} {
		t.Run(name, func(t *testing.T) {
			typ := definitions.MustType(name)
			dt, err := ArrowType(typ)
			require.NoError(t, err)
			back, ok := TypeFromArrow(dt)
			require.True(t, ok)
			require.Equal(t, typ, back)
			convert, ok := Readable(dt, typ)
			require.True(t, ok)
			require.False(t, convert)
		})
	}
	_, err := ArrowType(definitions.Type{})
	require.Error(t, err)
	require.Equal(t, "timestamp[us, tz=UTC]", TimestampType.String())
}

func TestReadable(t *testing.T) {
	cases := []struct {
		from arrow.DataType
		to   string
		ok   bool
	}{
		{arrow.PrimitiveTypes.Int8, "int32", true},
		{arrow.PrimitiveTypes.Uint16, "int32", true},
		{arrow.PrimitiveTypes.Uint32, "int32", false},
		{arrow.PrimitiveTypes.Uint32, "int64", true},
		{arrow.PrimitiveTypes.Uint64, "int64", false},
		{arrow.PrimitiveTypes.Int64, "int32", false},
		{arrow.PrimitiveTypes.Int32, "float64", false},
		{arrow.PrimitiveTypes.Float32, "float64", true},
		{arrow.PrimitiveTypes.Float64, "float32", false},
		{arrow.BinaryTypes.LargeString, "string", true},
		{arrow.BinaryTypes.String, "bytes", false},
		{arrow.BinaryTypes.LargeBinary, "bytes", true},
		{&arrow.FixedSizeBinaryType{ByteWidth: 16}, "bytes", true},
		{&arrow.TimestampType{Unit: arrow.Nanosecond}, "timestamp", true},
		{arrow.FixedWidthTypes.Date32, "timestamp", false},
		{arrow.BinaryTypes.String, "timestamp", false},
		{arrow.ListOf(arrow.PrimitiveTypes.Int32), "array<int64>", true},
		{arrow.LargeListOf(arrow.BinaryTypes.String), "array<string>", true},
		{arrow.ListOf(arrow.PrimitiveTypes.Int64), "int64", false},
		{arrow.PrimitiveTypes.Int64, "array<int64>", false},
		{arrow.ListOf(arrow.PrimitiveTypes.Float64), "array<float32>", false},
	}
	for _, tc := range cases {
		t.Run(tc.from.String()+"→"+tc.to, func(t *testing.T) {
			_, ok := Readable(tc.from, definitions.MustType(tc.to))
			require.Equal(t, tc.ok, ok)
		})
	}
}

func TestConvert(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	cases := []struct {
		from arrow.DataType
		to   string
		in   string
		want string
	}{
		{arrow.PrimitiveTypes.Int32, "int64", `[1, null, -3]`, `[1 (null) -3]`},
		{arrow.ListOf(arrow.PrimitiveTypes.Int32), "array<int64>", `[[1, 2], null, []]`, `[[1 2] (null) []]`},
		{&arrow.TimestampType{Unit: arrow.Nanosecond}, "timestamp", `[1999, null]`, `[1 (null)]`},
		{&arrow.TimestampType{Unit: arrow.Second, TimeZone: "Asia/Tokyo"}, "timestamp", `[1]`, `[1000000]`},
	}
	for _, tc := range cases {
		t.Run(tc.from.String(), func(t *testing.T) {
			in, _, err := array.FromJSON(mem, tc.from, stringsReader(tc.in))
			require.NoError(t, err)
			defer in.Release()
			to, err := ArrowType(definitions.MustType(tc.to))
			require.NoError(t, err)
			out, err := Convert(context.Background(), in, to, mem)
			require.NoError(t, err)
			defer out.Release()
			require.True(t, arrow.TypeEqual(to, out.DataType()))
			require.Equal(t, tc.want, out.String())
		})
	}
}

func TestViewSchema(t *testing.T) {
	i64 := definitions.MustType("int64")
	user := &definitions.Entity{Name: "user", JoinKeys: []definitions.Field{{Name: "user_id", Type: i64}}}
	shop := &definitions.Entity{Name: "shop", JoinKeys: []definitions.Field{{Name: "shop_id", Type: definitions.MustType("string")}}}
	ents := map[string]*definitions.Entity{"user": user, "shop": shop}
	view := &definitions.FeatureView{Name: "v", Entities: []string{"user", "shop"}, Features: []definitions.Field{{Name: "clicks", Type: i64}}}
	vs, err := NewViewSchema(view, ents)
	require.NoError(t, err)
	require.Equal(t, []string{"user_id", "shop_id"}, vs.KeyNames())
	require.Equal(t, "schema:\n  fields: 5\n    - user_id: type=int64, nullable\n    - shop_id: type=utf8, nullable\n"+
		"    - event_ts: type=timestamp[us, tz=UTC], nullable\n    - created_ts: type=timestamp[us, tz=UTC], nullable\n    - clicks: type=int64, nullable",
		vs.Arrow().String())
	p, err := vs.Project([]string{"clicks", "user_id"})
	require.NoError(t, err)
	require.Equal(t, 2, p.NumFields())
	_, err = vs.Project([]string{"nope"})
	require.ErrorIs(t, err, ErrColumnNotFound)

	bad := []struct {
		name string
		view *definitions.FeatureView
		mesg string
	}{
		{"unknown entity", &definitions.FeatureView{Name: "v", Entities: []string{"x"}}, `entity "x" not given`},
		{"no keys", &definitions.FeatureView{Name: "v"}, "no join keys"},
		{"feature named event_ts", &definitions.FeatureView{Name: "v", Entities: []string{"user"}, Features: []definitions.Field{{Name: "event_ts", Type: i64}}}, `"event_ts"`},
		{"feature named like key", &definitions.FeatureView{Name: "v", Entities: []string{"user"}, Features: []definitions.Field{{Name: "user_id", Type: i64}}}, `"user_id"`},
		{"invalid type", &definitions.FeatureView{Name: "v", Entities: []string{"user"}, Features: []definitions.Field{{Name: "f"}}}, "invalid type"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewViewSchema(tc.view, ents)
			require.ErrorContains(t, err, tc.mesg)
		})
	}
	_, err = NewViewSchema(nil, ents)
	require.Error(t, err)
}

func TestRange(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	r := Range{Start: t0.Add(500 * time.Nanosecond), End: t0.Add(time.Second)}
	s, e := r.Micros()
	require.Equal(t, t0.UnixMicro()+1, s) // rounds up: [0.5µs, ...) holds no timestamp at 0µs
	require.Equal(t, t0.Add(time.Second).UnixMicro(), e)
	require.NoError(t, r.Validate())
	require.ErrorIs(t, Range{Start: t0, End: t0}.Validate(), ErrInvalidRange)
	require.ErrorIs(t, Range{End: t0}.Validate(), ErrInvalidRange)
	require.Equal(t, "[2024-01-01T00:00:00.0000005Z, 2024-01-01T00:00:01Z)", r.String())
}
