package testenv

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// TrinoLoadSQL returns the statements that create table (a qualified Trino name, e.g.
// "mem_1_ab12cd.default.events") with rec's columns and insert rec's rows into it, as typed
// literals: every value arrives exactly (timestamps to the microsecond, floats bit for bit,
// NaN and infinities included, nulls and empty arrays typed). Rows go in INSERTs of at most
// 500 rows. Supported Arrow types: signed integers, float32/64, bool, string, binary,
// timestamps (with a zone: timestamp(6) with time zone; without: timestamp(6)) and lists of
// these.
func TrinoLoadSQL(table string, rec arrow.RecordBatch) ([]string, error) {
	cols := make([]string, rec.NumCols())
	types := make([]string, rec.NumCols())
	for i, f := range rec.Schema().Fields() {
		t, err := trinoTypeOf(f.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", f.Name, err)
		}
		types[i] = t
		cols[i] = `"` + strings.ReplaceAll(f.Name, `"`, `""`) + `" ` + t
	}
	stmts := []string{"CREATE TABLE " + table + " (" + strings.Join(cols, ", ") + ")"}
	var rows []string
	flush := func() {
		if len(rows) > 0 {
			stmts = append(stmts, "INSERT INTO "+table+" VALUES\n"+strings.Join(rows, ",\n"))
			rows = rows[:0]
		}
	}
	for r := 0; r < int(rec.NumRows()); r++ {
		vals := make([]string, rec.NumCols())
		for c, col := range rec.Columns() {
			v, err := trinoLiteral(col, r, types[c])
			if err != nil {
				return nil, fmt.Errorf("column %q row %d: %w", rec.Schema().Field(c).Name, r, err)
			}
			vals[c] = v
		}
		rows = append(rows, "("+strings.Join(vals, ", ")+")")
		if len(rows) == 500 {
			flush()
		}
	}
	flush()
	return stmts, nil
}

// LoadTable creates table on the server and fills it with rec's rows (TrinoLoadSQL).
func (s *TrinoServer) LoadTable(t TB, table string, rec arrow.RecordBatch) {
	t.Helper()
	stmts, err := TrinoLoadSQL(table, rec)
	if err != nil {
		t.Fatalf("load trino table %s: %v", table, err)
	}
	db, err := sql.Open("trino", s.DSN("", ""))
	if err != nil {
		t.Fatalf("open trino %s: %v", s.URL, err)
	}
	defer closeTrinoDB(db)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("load trino table %s: %v\n%.500s", table, err, stmt)
		}
	}
}

func trinoTypeOf(dt arrow.DataType) (string, error) {
	switch dt := dt.(type) {
	case *arrow.Int8Type:
		return "tinyint", nil
	case *arrow.Int16Type:
		return "smallint", nil
	case *arrow.Int32Type:
		return "integer", nil
	case *arrow.Int64Type:
		return "bigint", nil
	case *arrow.Float32Type:
		return "real", nil
	case *arrow.Float64Type:
		return "double", nil
	case *arrow.BooleanType:
		return "boolean", nil
	case *arrow.StringType, *arrow.LargeStringType:
		return "varchar", nil
	case *arrow.BinaryType, *arrow.LargeBinaryType:
		return "varbinary", nil
	case *arrow.TimestampType:
		if dt.TimeZone == "" {
			return "timestamp(6)", nil
		}
		return "timestamp(6) with time zone", nil
	case *arrow.ListType:
		e, err := trinoTypeOf(dt.Elem())
		if err != nil {
			return "", err
		}
		return "array(" + e + ")", nil
	}
	return "", fmt.Errorf("no trino type for arrow %s", dt)
}

// trinoLiteral renders row r of a as a Trino literal of type typ.
func trinoLiteral(a arrow.Array, r int, typ string) (string, error) {
	if a.IsNull(r) {
		return "CAST(NULL AS " + typ + ")", nil
	}
	switch a := a.(type) {
	case *array.Int8:
		return "TINYINT '" + strconv.Itoa(int(a.Value(r))) + "'", nil
	case *array.Int16:
		return "SMALLINT '" + strconv.Itoa(int(a.Value(r))) + "'", nil
	case *array.Int32:
		return "INTEGER '" + strconv.Itoa(int(a.Value(r))) + "'", nil
	case *array.Int64:
		return "BIGINT '" + strconv.FormatInt(a.Value(r), 10) + "'", nil
	case *array.Float32:
		return floatLiteral(float64(a.Value(r)), "real", 32), nil
	case *array.Float64:
		return floatLiteral(a.Value(r), "double", 64), nil
	case *array.Boolean:
		return strconv.FormatBool(a.Value(r)), nil
	case *array.String:
		return "'" + strings.ReplaceAll(a.Value(r), "'", "''") + "'", nil
	case *array.Binary:
		return "X'" + hex.EncodeToString(a.Value(r)) + "'", nil
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		tm := a.Value(r).ToTime(unit).UTC()
		if tm.Nanosecond()%1000 != 0 {
			return "", fmt.Errorf("timestamp %s has a sub-microsecond part", tm.Format(time.RFC3339Nano))
		}
		s := tm.Format("2006-01-02 15:04:05.000000")
		if a.DataType().(*arrow.TimestampType).TimeZone == "" {
			return "TIMESTAMP '" + s + "'", nil
		}
		return "TIMESTAMP '" + s + " UTC'", nil
	case *array.List:
		start, end := a.ValueOffsets(r)
		elemType := strings.TrimSuffix(strings.TrimPrefix(typ, "array("), ")")
		vals := make([]string, 0, end-start)
		for j := start; j < end; j++ {
			v, err := trinoLiteral(a.ListValues(), int(j), elemType)
			if err != nil {
				return "", err
			}
			vals = append(vals, v)
		}
		return "CAST(ARRAY[" + strings.Join(vals, ", ") + "] AS " + typ + ")", nil
	}
	return "", fmt.Errorf("no trino literal for arrow %s", a.DataType())
}

func floatLiteral(f float64, typ string, bits int) string {
	switch {
	case math.IsNaN(f):
		return "CAST(nan() AS " + typ + ")"
	case math.IsInf(f, 1):
		return "CAST(infinity() AS " + typ + ")"
	case math.IsInf(f, -1):
		return "CAST(-infinity() AS " + typ + ")"
	}
	return strings.ToUpper(typ) + " '" + strconv.FormatFloat(f, 'g', -1, bits) + "'"
}
