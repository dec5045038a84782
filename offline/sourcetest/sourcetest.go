// Package sourcetest is the conformance suite every offline.Source passes: the same rows,
// loaded into each kind of source, must come back as the same canonical rows.
//
// A source's test calls Run with a Factory that stores the suite's data in its engine (a
// Parquet file, an Iceberg table, a database table behind Trino) and returns a Source over it.
package sourcetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
)

// Source column names of the suite's data. The timestamp and created timestamp fields are
// deliberately not named like the canonical columns, so renaming is exercised.
const (
	ColUserID   = "user_id"
	ColTS       = "ts"
	ColCreated  = "created"
	ColClicks   = "clicks"    // int32 in the source, declared int64: widening
	ColSpend    = "spend"     // float64
	ColName     = "name"      // string
	ColTags     = "tags"      // array<string>
	ColActive   = "active"    // bool
	ColPayload  = "payload"   // bytes
	ColLastSeen = "last_seen" // timestamp
)

// Row is one row of the suite's data. Nil pointers are nulls.
type Row struct {
	UserID   int64
	TS       time.Time
	Created  time.Time
	Clicks   *int32
	Spend    float64
	Name     *string
	Tags     []string
	Active   bool
	Payload  []byte
	LastSeen time.Time
}

// Base is the start of the suite's data: 2024-03-01T00:00:00Z.
var Base = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

// Rows is the suite's data: three users over four days, rows exactly on day boundaries, a
// row with a microsecond fraction, nulls, empty and null lists, and two rows with the same
// (key, ts) but different created timestamps.
func Rows() []Row {
	i32 := func(v int32) *int32 { return &v }
	str := func(v string) *string { return &v }
	var rows []Row
	for d := range 4 {
		for u := int64(1); u <= 3; u++ {
			ts := Base.Add(time.Duration(d)*24*time.Hour + time.Duration(u)*time.Hour)
			rows = append(rows, Row{
				UserID: u, TS: ts, Created: ts.Add(time.Minute),
				Clicks: i32(int32(d*10) + int32(u)), Spend: float64(d) + float64(u)/4,
				Name: str(fmt.Sprintf("user-%d", u)), Tags: []string{"a", fmt.Sprintf("d%d", d)},
				Active: u%2 == 1, Payload: []byte{byte(u), byte(d)}, LastSeen: ts.Add(-time.Hour),
			})
		}
	}
	rows = append(rows,
		// exactly on a day boundary
		Row{UserID: 4, TS: Base.Add(24 * time.Hour), Created: Base.Add(24 * time.Hour), Spend: -1, Tags: []string{}},
		// a microsecond fraction, nulls
		Row{UserID: 5, TS: Base.Add(36*time.Hour + 123456*time.Microsecond), Created: Base.Add(37 * time.Hour), Spend: 0.5},
		// same key and ts as user 1 on day 0, created later
		Row{UserID: 1, TS: Base.Add(time.Hour), Created: Base.Add(2 * time.Hour), Clicks: i32(99), Spend: 9.9, Name: str("user-1b"), Tags: []string{"late"}, Active: true},
	)
	return rows
}

// View is the canonical schema the suite reads the data as.
func View() offline.ViewSchema {
	t := definitions.MustType
	return offline.ViewSchema{
		View:     "user_stats",
		JoinKeys: []offline.Column{{Name: ColUserID, Type: t("int64")}},
		Features: []offline.Column{
			{Name: ColClicks, Type: t("int64")},
			{Name: ColSpend, Type: t("float64")},
			{Name: ColName, Type: t("string")},
			{Name: ColTags, Type: t("array<string>")},
			{Name: ColActive, Type: t("bool")},
			{Name: ColPayload, Type: t("bytes")},
			{Name: ColLastSeen, Type: t("timestamp")},
		},
	}
}

// Fields are the timestamp fields of the suite's data.
func Fields() offline.Fields { return offline.Fields{Timestamp: ColTS, Created: ColCreated} }

// SourceSchema is the Arrow schema of the data as stored in a source.
func SourceSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: ColUserID, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: ColTS, Type: offline.TimestampType, Nullable: true},
		{Name: ColCreated, Type: offline.TimestampType, Nullable: true},
		{Name: ColClicks, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: ColSpend, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: ColName, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ColTags, Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: ColActive, Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: ColPayload, Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: ColLastSeen, Type: offline.TimestampType, Nullable: true},
	}, nil)
}

// SourceBatch builds rows as one batch of SourceSchema.
func SourceBatch(mem memory.Allocator, rows []Row) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, SourceSchema())
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int64Builder).Append(r.UserID)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(r.TS.UnixMicro()))
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Created.UnixMicro()))
		if r.Clicks != nil {
			b.Field(3).(*array.Int32Builder).Append(*r.Clicks)
		} else {
			b.Field(3).AppendNull()
		}
		b.Field(4).(*array.Float64Builder).Append(r.Spend)
		if r.Name != nil {
			b.Field(5).(*array.StringBuilder).Append(*r.Name)
		} else {
			b.Field(5).AppendNull()
		}
		lb := b.Field(6).(*array.ListBuilder)
		if r.Tags == nil {
			lb.AppendNull()
		} else {
			lb.Append(true)
			for _, tag := range r.Tags {
				lb.ValueBuilder().(*array.StringBuilder).Append(tag)
			}
		}
		b.Field(7).(*array.BooleanBuilder).Append(r.Active)
		if r.Payload != nil {
			b.Field(8).(*array.BinaryBuilder).Append(r.Payload)
		} else {
			b.Field(8).AppendNull()
		}
		if !r.LastSeen.IsZero() {
			b.Field(9).(*array.TimestampBuilder).Append(arrow.Timestamp(r.LastSeen.UnixMicro()))
		} else {
			b.Field(9).AppendNull()
		}
	}
	return b.NewRecordBatch()
}

// Expected renders the canonical rows a source must return for rows over r, sorted; with
// withCreated false, created_ts is null.
func Expected(rows []Row, r offline.Range, withCreated bool) []string {
	var out []string
	for _, row := range rows {
		if row.TS.Before(r.Start) || !row.TS.Before(r.End) {
			continue
		}
		f := []string{fmt.Sprint(row.UserID), ts(row.TS)}
		if withCreated {
			f = append(f, ts(row.Created))
		} else {
			f = append(f, "null")
		}
		if row.Clicks != nil {
			f = append(f, fmt.Sprint(*row.Clicks))
		} else {
			f = append(f, "null")
		}
		f = append(f, fmt.Sprint(row.Spend))
		if row.Name != nil {
			f = append(f, *row.Name)
		} else {
			f = append(f, "null")
		}
		if row.Tags != nil {
			f = append(f, "["+strings.Join(row.Tags, ",")+"]")
		} else {
			f = append(f, "null")
		}
		f = append(f, fmt.Sprint(row.Active))
		if row.Payload != nil {
			f = append(f, fmt.Sprintf("%x", row.Payload))
		} else {
			f = append(f, "null")
		}
		if !row.LastSeen.IsZero() {
			f = append(f, ts(row.LastSeen))
		} else {
			f = append(f, "null")
		}
		out = append(out, strings.Join(f, "|"))
	}
	slices.Sort(out)
	return out
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// RowStrings renders every row of tbl like Expected does, sorted. It handles the canonical
// types only.
func RowStrings(t testing.TB, tbl arrow.Table) []string {
	t.Helper()
	var out []string
	tr := array.NewTableReader(tbl, 1024)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := range int(rec.NumRows()) {
			f := make([]string, rec.NumCols())
			for c, col := range rec.Columns() {
				f[c] = Value(col, i)
			}
			out = append(out, strings.Join(f, "|"))
		}
	}
	slices.Sort(out)
	return out
}

// Value renders one value of a canonical column.
func Value(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "null"
	}
	switch a := a.(type) {
	case *array.Timestamp:
		return ts(time.UnixMicro(int64(a.Value(i))))
	case *array.Binary:
		return fmt.Sprintf("%x", a.Value(i))
	case *array.List:
		start, end := a.ValueOffsets(i)
		vals := make([]string, 0, end-start)
		for j := start; j < end; j++ {
			vals = append(vals, Value(a.ListValues(), int(j)))
		}
		return "[" + strings.Join(vals, ",") + "]"
	case *array.Float64:
		return fmt.Sprint(a.Value(i))
	}
	return a.ValueStr(i)
}

// Factory stores data (a batch of SourceSchema) in a new source of the engine under test and
// returns a Source over it that reads fields.Timestamp as the timestamp field and
// fields.Created (possibly empty) as the created timestamp field.
type Factory func(t *testing.T, data arrow.RecordBatch, fields offline.Fields) offline.Source

// Run runs the conformance suite against the sources newSource makes.
func Run(t *testing.T, newSource Factory) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	rows := Rows()
	data := SourceBatch(mem, rows)

	src := newSource(t, data, Fields())
	noCreated := newSource(t, data, offline.Fields{Timestamp: ColTS})

	day := 24 * time.Hour
	reads := []struct {
		name        string
		src         offline.Source
		r           offline.Range
		withCreated bool
	}{
		{"all rows", src, offline.Range{Start: Base, End: Base.Add(5 * day)}, true},
		{"start inclusive end exclusive", src, offline.Range{Start: Base.Add(day), End: Base.Add(2 * day)}, true},
		{"microsecond bounds", src, offline.Range{Start: Base.Add(36*time.Hour + 123456*time.Microsecond), End: Base.Add(36*time.Hour + 123457*time.Microsecond)}, true},
		{"partial day", src, offline.Range{Start: Base.Add(time.Hour + 30*time.Minute), End: Base.Add(26 * time.Hour)}, true},
		{"empty range", src, offline.Range{Start: Base.Add(-10 * day), End: Base.Add(-9 * day)}, true},
		{"no created field gives null created_ts", noCreated, offline.Range{Start: Base, End: Base.Add(5 * day)}, false},
	}
	for _, tc := range reads {
		t.Run(tc.name, func(t *testing.T) {
			st, err := tc.src.Read(ctx, View(), tc.r)
			require.NoError(t, err)
			require.True(t, st.Schema().Equal(View().Arrow()), "schema %s", st.Schema())
			tbl, err := offline.ReadAll(ctx, st)
			require.NoError(t, err)
			defer tbl.Release()
			require.Equal(t, Expected(rows, tc.r, tc.withCreated), RowStrings(t, tbl))
		})
	}

	all := offline.Range{Start: Base, End: Base.Add(5 * day)}
	bad := []struct {
		name   string
		view   func(offline.ViewSchema) offline.ViewSchema
		is     error
		mesg   []string
		source offline.Source
	}{
		{
			name: "missing column",
			view: func(v offline.ViewSchema) offline.ViewSchema {
				v.Features = append(slices.Clone(v.Features), offline.Column{Name: "nope", Type: definitions.MustType("int64")})
				return v
			},
			is: offline.ErrColumnNotFound, mesg: []string{`"nope"`},
		},
		{
			name: "type mismatch",
			view: func(v offline.ViewSchema) offline.ViewSchema {
				v.Features = slices.Clone(v.Features)
				v.Features[1].Type = definitions.MustType("int64") // spend is float64
				return v
			},
			is: offline.ErrTypeMismatch, mesg: []string{`"spend"`, "float64", "int64"},
		},
		{
			name: "narrowing refused",
			view: func(v offline.ViewSchema) offline.ViewSchema {
				v.JoinKeys = []offline.Column{{Name: ColUserID, Type: definitions.MustType("int32")}}
				return v
			},
			is: offline.ErrTypeMismatch, mesg: []string{`"user_id"`, "int64", "int32"},
		},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := readErr(ctx, src, tc.view(View()), all)
			require.Error(t, err)
			require.ErrorIs(t, err, tc.is)
			for _, m := range tc.mesg {
				require.Contains(t, err.Error(), m)
			}
		})
	}

	t.Run("invalid range", func(t *testing.T) {
		_, err := src.Read(ctx, View(), offline.Range{Start: Base, End: Base})
		require.ErrorIs(t, err, offline.ErrInvalidRange)
	})

	t.Run("canceled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := readErr(cctx, src, View(), all)
		require.Error(t, err)
	})
	data.Release()
	mem.AssertSize(t, 0)
}

// readErr reads everything and returns the first error, from Read or from a Next.
func readErr(ctx context.Context, src offline.Source, vs offline.ViewSchema, r offline.Range) error {
	st, err := src.Read(ctx, vs, r)
	if err != nil {
		return err
	}
	defer st.Close()
	for {
		rec, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rec.Release()
	}
}
