package trino

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/offline"
)

// Staging: Trino computes a materialization interval's rows into a table of the Iceberg
// catalog it shares with Quiver (CREATE TABLE AS), and Quiver commits them into the view's
// table with its own idempotence record (materialize's Trino engine). The statements are
// built here; the session's catalog (the DSN's) must be that shared Iceberg catalog.

// BuildStageSQL writes the CREATE TABLE AS that stages [start, end) of a source for vs into
// schema.table: the view's canonical columns (join keys, event_ts, created_ts, features)
// cast to the Trino types of their Iceberg types, one row per (join keys, event_ts,
// created_ts) — which of several rows sharing them is kept is unspecified, as the order in
// which a query's rows arrive is — with the event time bounded by two parameters, start
// inclusive and end exclusive. A source without a created timestamp field stages null
// created_ts.
func BuildStageSQL(def definitions.TrinoSource, f offline.Fields, vs offline.ViewSchema, schema, table string) (string, error) {
	if err := vs.Validate(); err != nil {
		return "", err
	}
	src, err := BuildSQL(def, f, vs)
	if err != nil {
		return "", err
	}
	var casts, names, keys []string
	add := func(expr, name string, t definitions.Type) error {
		tt, err := TrinoType(t)
		if err != nil {
			return fmt.Errorf("column %q: %w", name, err)
		}
		casts = append(casts, "CAST("+expr+" AS "+tt+") AS "+QuoteIdent(name))
		names = append(names, QuoteIdent(name))
		return nil
	}
	ts := definitions.Type{Elem: definitions.Timestamp}
	for _, c := range vs.JoinKeys {
		if err := add(QuoteIdent(c.Name), c.Name, c.Type); err != nil {
			return "", err
		}
		keys = append(keys, QuoteIdent(c.Name))
	}
	if err := add(QuoteIdent(f.Timestamp), offline.EventTS, ts); err != nil {
		return "", err
	}
	created := "NULL"
	if f.Created != "" {
		created = QuoteIdent(f.Created)
	}
	if err := add(created, offline.CreatedTS, ts); err != nil {
		return "", err
	}
	keys = append(keys, QuoteIdent(offline.EventTS), QuoteIdent(offline.CreatedTS))
	for _, c := range vs.Features {
		if err := add(QuoteIdent(c.Name), c.Name, c.Type); err != nil {
			return "", err
		}
	}
	rn := QuoteIdent("quiver_rn")
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s.%s\nWITH (format = 'PARQUET')\nAS\n", QuoteIdent(schema), QuoteIdent(table))
	fmt.Fprintf(&b, "SELECT %s\nFROM (\n", strings.Join(names, ", "))
	fmt.Fprintf(&b, "SELECT *, row_number() OVER (PARTITION BY %s) AS %s\nFROM (\n", strings.Join(keys, ", "), rn)
	fmt.Fprintf(&b, "SELECT %s\nFROM (\n%s\n) AS %s\n", strings.Join(casts, ", "), src, QuoteIdent("quiver_rows"))
	fmt.Fprintf(&b, ") AS %s\n) AS %s\nWHERE %s = 1", QuoteIdent("quiver_cast"), QuoteIdent("quiver_dedup"), rn)
	return b.String(), nil
}

// TrinoType is the Trino type of the Iceberg type a declared type is stored as (so a table
// Trino creates with it has the column types of Quiver's own tables).
func TrinoType(t definitions.Type) (string, error) {
	var s string
	switch t.Elem {
	case definitions.Int32:
		s = "INTEGER"
	case definitions.Int64:
		s = "BIGINT"
	case definitions.Float32:
		s = "REAL"
	case definitions.Float64:
		s = "DOUBLE"
	case definitions.Bool:
		s = "BOOLEAN"
	case definitions.String:
		s = "VARCHAR"
	case definitions.Bytes:
		s = "VARBINARY"
	case definitions.Timestamp:
		s = "TIMESTAMP(6) WITH TIME ZONE"
	default:
		return "", fmt.Errorf("no trino type for %s", t)
	}
	if t.Array {
		s = "ARRAY(" + s + ")"
	}
	return s, nil
}

// Exec runs one statement that returns no rows, with parameters.
func (c *Client) Exec(ctx context.Context, stmt string, args ...any) error {
	_, err := c.db.ExecContext(ctx, stmt, args...)
	return err
}

// EnsureSchema creates a schema of the session's catalog if it does not exist. Two callers
// creating it at once may both try (IF NOT EXISTS is checked before the catalog's insert):
// the loser's error is not one when the schema exists after all.
func (c *Client) EnsureSchema(ctx context.Context, schema string) error {
	err := c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+QuoteIdent(schema))
	if err == nil {
		return nil
	}
	var n int
	if qerr := c.db.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?", schema).Scan(&n); qerr == nil && n == 1 {
		return nil
	}
	return fmt.Errorf("trino: create schema %s: %w", schema, err)
}

// DropTable drops schema.table of the session's catalog with its data, if it exists.
func (c *Client) DropTable(ctx context.Context, schema, table string) error {
	if err := c.Exec(ctx, "DROP TABLE IF EXISTS "+QuoteIdent(schema)+"."+QuoteIdent(table)); err != nil {
		return fmt.Errorf("trino: drop table %s.%s: %w", schema, table, err)
	}
	return nil
}

// Tables lists the tables of a schema of the session's catalog whose names start with
// prefix; none when the schema does not exist.
func (c *Client) Tables(ctx context.Context, schema, prefix string) ([]string, error) {
	rows, err := c.db.QueryContext(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY 1", schema)
	if err != nil {
		return nil, fmt.Errorf("trino: list tables of %s: %w", schema, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("trino: list tables of %s: %w", schema, err)
		}
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trino: list tables of %s: %w", schema, err)
	}
	return out, nil
}

// ErrNoStageSource is the error for a source Trino cannot stage: only trino and iceberg
// sources are read through Trino.
var ErrNoStageSource = errkind.New(errkind.Invalid, "trino cannot read this source")

// StageSource is the Trino source definition a materialization through Trino reads for src:
// a trino source as is, an iceberg source's table in the session's (shared) catalog.
func StageSource(src *definitions.Source) (definitions.TrinoSource, error) {
	switch {
	case src == nil:
		return definitions.TrinoSource{}, fmt.Errorf("%w: no source", ErrNoStageSource)
	case src.Trino != nil:
		return *src.Trino, nil
	case src.Iceberg != nil:
		return definitions.TrinoSource{Table: src.Iceberg.Table}, nil
	}
	return definitions.TrinoSource{}, fmt.Errorf("%w: source %q is a %s source; trino reads trino and iceberg sources", ErrNoStageSource, src.Name, src.SourceType())
}

// ResultColumn is one column of a query's result: its name, Trino type, and the Arrow type
// Query reads it as.
type ResultColumn struct {
	Name  string
	Type  string
	Arrow arrow.DataType
}

// ResultColumns returns a query's result columns, reading no rows.
func (c *Client) ResultColumns(ctx context.Context, query string) ([]ResultColumn, error) {
	q := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(query), ";"))
	rows, err := c.db.QueryContext(ctx, "SELECT * FROM (\n"+q+"\n) AS "+QuoteIdent("quiver_probe")+" LIMIT 0")
	if err != nil {
		return nil, fmt.Errorf("trino: read the result columns: %w", err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, fmt.Errorf("trino: read the result columns: %w", err)
	}
	out := make([]ResultColumn, len(types))
	for i, ct := range types {
		dt, err := arrowType(ct.DatabaseTypeName())
		if err != nil {
			return nil, fmt.Errorf("trino: column %q: %w", ct.Name(), err)
		}
		out[i] = ResultColumn{Name: ct.Name(), Type: ct.DatabaseTypeName(), Arrow: dt}
	}
	for rows.Next() {
	}
	return out, rows.Err()
}

// BuildResultCTAS writes the CREATE TABLE AS that stores a query's result (of columns cols,
// the last of them an increasing row number rowCol) in schema.table as Parquet, partitioned by
// truncate(rowCol, partitionRows) — each partition a contiguous range of row numbers, so the
// result can be read back in order a partition at a time — with each column cast to a type
// Iceberg stores (tinyint and smallint as integer, char(n) and varchar(n) as varchar, every
// timestamp with microseconds).
func BuildResultCTAS(schema, table, query string, cols []ResultColumn, rowCol string, partitionRows int64) string {
	sel := make([]string, len(cols))
	for i, c := range cols {
		t := icebergTrinoType(c.Type)
		if strings.EqualFold(t, c.Type) {
			sel[i] = QuoteIdent(c.Name)
		} else {
			sel[i] = "CAST(" + QuoteIdent(c.Name) + " AS " + t + ") AS " + QuoteIdent(c.Name)
		}
	}
	return fmt.Sprintf("CREATE TABLE %s.%s\nWITH (format = 'PARQUET', partitioning = ARRAY['truncate(%s, %d)'])\nAS\nSELECT %s\nFROM (\n%s\n) AS %s",
		QuoteIdent(schema), QuoteIdent(table), rowCol, partitionRows, strings.Join(sel, ", "), query, QuoteIdent("quiver_result"))
}

// icebergTrinoType is the Trino type a column of type t is stored as in a table of Trino's
// Iceberg connector.
func icebergTrinoType(t string) string {
	l := strings.ToLower(strings.TrimSpace(t))
	if inner, ok := strings.CutPrefix(l, "array("); ok {
		if inner, ok := strings.CutSuffix(inner, ")"); ok {
			return "ARRAY(" + icebergTrinoType(inner) + ")"
		}
		return t
	}
	switch {
	case l == "tinyint" || l == "smallint":
		return "INTEGER"
	case strings.HasPrefix(l, "char") || strings.HasPrefix(l, "varchar"):
		return "VARCHAR"
	case strings.HasPrefix(l, "timestamp") && strings.HasSuffix(l, "with time zone"):
		return "TIMESTAMP(6) WITH TIME ZONE"
	case strings.HasPrefix(l, "timestamp"):
		return "TIMESTAMP(6)"
	}
	return t
}
