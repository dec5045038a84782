// Package trino is the Trino source: it reads a feature view's rows from a Trino query, or a
// whole table, through trino-go-client. The view's query is wrapped in a SELECT that projects
// and quotes the needed columns and filters the time range with typed parameters, so the
// filter reaches Trino's optimizer (and the connectors' partition pruning) and no value is
// ever concatenated into SQL.
package trino

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/trinodb/trino-go-client/trino" // registers the "trino" database/sql driver

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/redact"
	"github.com/quiverfs/quiver/offline"
)

// DefaultBatchSize is the number of rows per batch when Options.BatchSize is zero.
const DefaultBatchSize = 16 * 1024

// Options tune a Trino source. The zero value is valid.
type Options struct {
	// BatchSize is the most rows per batch; 0 means DefaultBatchSize.
	BatchSize int
	// Allocator allocates the batches; nil means memory.DefaultAllocator.
	Allocator memory.Allocator
}

// Client is a connection pool to one Trino cluster, shared by the sources that use it.
type Client struct {
	db *sql.DB
}

// Open returns a client for a trino-go-client DSN (http[s]://user@host:port?catalog=..&schema=..).
// It does not connect until a query runs, but checks that the DSN parses: the driver would
// report a bad one at the first query, quoting it password and all.
//
// The session time zone is UTC unless the DSN sets one (timezone=...): Trino reads a timestamp
// without a zone in the session's zone, and Quiver takes such timestamps as UTC everywhere
// (Parquet, entity files), where the driver would otherwise use the machine's zone.
func Open(dsn string) (*Client, error) {
	if dsn == "" {
		return nil, fmt.Errorf("open trino: %w: no dsn", offline.ErrInvalidSource)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", redact.ParseError("open trino", dsn, err), offline.ErrInvalidSource)
	}
	if q := u.Query(); q.Get("timezone") == "" {
		q.Set("timezone", "UTC")
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	db, err := sql.Open("trino", dsn)
	if err != nil {
		return nil, fmt.Errorf("open trino: %w", err)
	}
	return &Client{db: db}, nil
}

// Close closes the client's connections, and the idle keep-alive connections of the HTTP
// client trino-go-client uses (http.DefaultClient), which would otherwise outlive it.
func (c *Client) Close() error {
	err := c.db.Close()
	http.DefaultClient.CloseIdleConnections()
	return err
}

// Source reads rows through Trino. It is safe for concurrent use.
type Source struct {
	name   string
	def    definitions.TrinoSource
	fields offline.Fields
	client *Client
	opts   Options
}

var _ offline.Source = (*Source)(nil)

// New returns the source for a definition with a trino block, run through client (which the
// caller keeps open while the source is used).
func New(src *definitions.Source, client *Client, opts Options) (*Source, error) {
	if src == nil || src.Trino == nil || (src.Trino.Query == "") == (src.Trino.Table == "") {
		return nil, fmt.Errorf("trino source: %w: want exactly one of query and table", offline.ErrInvalidSource)
	}
	if src.TimestampField == "" {
		return nil, fmt.Errorf("trino source %q: %w: no timestamp_field", src.Name, offline.ErrInvalidSource)
	}
	if client == nil {
		return nil, fmt.Errorf("trino source %q: %w: no trino dsn configured", src.Name, offline.ErrInvalidSource)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.Allocator == nil {
		opts.Allocator = memory.DefaultAllocator
	}
	return &Source{
		name: src.Name, def: *src.Trino, client: client, opts: opts,
		fields: offline.Fields{Timestamp: src.TimestampField, Created: src.CreatedTimestampField},
	}, nil
}

func (s *Source) String() string { return fmt.Sprintf("trino source %q", s.name) }

// SQL is the statement Read runs for vs: the needed columns of the query (or table), with
// the event time bounded by two parameters, start inclusive and end exclusive.
func (s *Source) SQL(vs offline.ViewSchema) (string, error) {
	return BuildSQL(s.def, s.fields, vs)
}

// BuildSQL writes the time-range SELECT over a Trino query or table:
//
//	SELECT "k", "ts", ... FROM (<query>) AS "quiver_source" WHERE "ts" >= ? AND "ts" < ?
//
// Identifiers are double-quoted; a table name "a.b.c" is quoted part by part. The query
// text is the feature author's own SQL and is inserted as is (a trailing semicolon is
// dropped); the time bounds are always parameters.
func BuildSQL(def definitions.TrinoSource, f offline.Fields, vs offline.ViewSchema) (string, error) {
	from, err := fromClause(def)
	if err != nil {
		return "", err
	}
	var cols []string
	seen := map[string]bool{}
	add := func(c string) {
		if c != "" && !seen[c] {
			seen[c] = true
			cols = append(cols, QuoteIdent(c))
		}
	}
	for _, c := range vs.JoinKeys {
		add(c.Name)
	}
	add(f.Timestamp)
	add(f.Created)
	for _, c := range vs.Features {
		add(c.Name)
	}
	ts := QuoteIdent(f.Timestamp)
	return "SELECT " + strings.Join(cols, ", ") + "\nFROM " + from + "\nWHERE " + ts + " >= ? AND " + ts + " < ?", nil
}

// BuildProbeSQL writes the statement that learns the query's (or table's) columns and types
// without reading rows, so a missing column or a type mismatch is reported clearly before
// the real query runs.
func BuildProbeSQL(def definitions.TrinoSource) (string, error) {
	from, err := fromClause(def)
	if err != nil {
		return "", err
	}
	return "SELECT *\nFROM " + from + "\nLIMIT 0", nil
}

func fromClause(def definitions.TrinoSource) (string, error) {
	switch {
	case def.Query != "" && def.Table != "":
		return "", fmt.Errorf("%w: trino source has both query and table", offline.ErrInvalidSource)
	case def.Query != "":
		q := strings.TrimSpace(def.Query)
		q = strings.TrimSpace(strings.TrimSuffix(q, ";"))
		if q == "" {
			return "", fmt.Errorf("%w: empty trino query", offline.ErrInvalidSource)
		}
		return "(\n" + q + "\n) AS " + QuoteIdent("quiver_source"), nil
	case def.Table != "":
		parts := strings.Split(def.Table, ".")
		for i, p := range parts {
			if p == "" {
				return "", fmt.Errorf("%w: trino table %q has an empty name part", offline.ErrInvalidSource, def.Table)
			}
			parts[i] = QuoteIdent(p)
		}
		return strings.Join(parts, "."), nil
	}
	return "", fmt.Errorf("%w: trino source has neither query nor table", offline.ErrInvalidSource)
}

// QuoteIdent double-quotes an identifier, doubling any quote inside it.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Read runs the SQL with the range's bounds as timestamp parameters (UTC instants) and
// streams the result in batches of Options.BatchSize rows as Trino pages it in.
func (s *Source) Read(ctx context.Context, vs offline.ViewSchema, r offline.Range) (offline.Stream, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	if err := vs.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	q, err := s.SQL(vs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	if err := s.probe(ctx, vs, r); err != nil {
		return nil, err
	}
	rows, err := s.client.db.QueryContext(ctx, q, r.Start.UTC(), r.End.UTC())
	if err != nil {
		return nil, fmt.Errorf("%s: query: %w", s, err)
	}
	st, err := s.newStream(rows, vs, r)
	if err != nil {
		_ = rows.Close()
		return nil, err
	}
	return offline.NewFuncStream(st.mapper.Schema(), st.next, rows.Close), nil
}

// probe checks the source's columns against vs with a query that reads no rows.
func (s *Source) probe(ctx context.Context, vs offline.ViewSchema, r offline.Range) error {
	q, err := BuildProbeSQL(s.def)
	if err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	rows, err := s.client.db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("%s: read columns: %w", s, err)
	}
	defer rows.Close()
	_, err = s.newStream(rows, vs, r)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	return rows.Err()
}

type stream struct {
	src    *Source
	rows   *sql.Rows
	schema *arrow.Schema // the result's own schema
	mapper *offline.Mapper
	done   bool
}

func (s *Source) newStream(rows *sql.Rows, vs offline.ViewSchema, r offline.Range) (*stream, error) {
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, fmt.Errorf("%s: result columns: %w", s, err)
	}
	fields := make([]arrow.Field, len(types))
	for i, ct := range types {
		dt, err := arrowType(ct.DatabaseTypeName())
		if err != nil {
			return nil, fmt.Errorf("%s: column %q: %w", s, ct.Name(), err)
		}
		fields[i] = arrow.Field{Name: ct.Name(), Type: dt, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	m, err := offline.NewMapper(s.String(), schema, vs, s.fields, r, s.opts.Allocator)
	if err != nil {
		return nil, err
	}
	return &stream{src: s, rows: rows, schema: schema, mapper: m}, nil
}

func (st *stream) next(ctx context.Context) (arrow.RecordBatch, error) {
	if st.done {
		return nil, io.EOF
	}
	b := array.NewRecordBuilder(st.src.opts.Allocator, st.schema)
	defer b.Release()
	vals := make([]any, len(st.schema.Fields()))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for n < st.src.opts.BatchSize {
		if !st.rows.Next() {
			if err := st.rows.Err(); err != nil {
				return nil, fmt.Errorf("%s: read rows: %w", st.src, err)
			}
			st.done = true
			break
		}
		if err := st.rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("%s: read rows: %w", st.src, err)
		}
		for i, v := range vals {
			if err := appendValue(b.Field(i), v); err != nil {
				return nil, fmt.Errorf("%s: column %q: %w", st.src, st.schema.Field(i).Name, err)
			}
		}
		n++
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	if n == 0 {
		return nil, io.EOF
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return st.mapper.Map(ctx, rec)
}

// arrowType maps a Trino type name to the Arrow type its values are read into.
func arrowType(name string) (arrow.DataType, error) {
	t := strings.ToLower(strings.TrimSpace(name))
	if inner, ok := strings.CutPrefix(t, "array("); ok {
		inner, ok = strings.CutSuffix(inner, ")")
		if !ok {
			return nil, fmt.Errorf("unsupported trino type %s", name)
		}
		elem, err := arrowType(inner)
		if err != nil {
			return nil, err
		}
		return arrow.ListOf(elem), nil
	}
	base := t
	if i := strings.IndexAny(t, "( "); i >= 0 {
		base = t[:i]
	}
	switch base {
	case "tinyint":
		return arrow.PrimitiveTypes.Int8, nil
	case "smallint":
		return arrow.PrimitiveTypes.Int16, nil
	case "integer", "int":
		return arrow.PrimitiveTypes.Int32, nil
	case "bigint":
		return arrow.PrimitiveTypes.Int64, nil
	case "real":
		return arrow.PrimitiveTypes.Float32, nil
	case "double":
		return arrow.PrimitiveTypes.Float64, nil
	case "boolean":
		return arrow.FixedWidthTypes.Boolean, nil
	case "varchar", "char":
		return arrow.BinaryTypes.String, nil
	case "varbinary":
		return arrow.BinaryTypes.Binary, nil
	case "timestamp":
		// with or without time zone: read as instants; a zone-less timestamp is taken in the
		// session time zone, UTC unless the DSN says otherwise (Open).
		return offline.TimestampType, nil
	}
	return nil, fmt.Errorf("unsupported trino type %s", name)
}

// appendValue appends one scanned value. Arrays arrive as JSON-decoded slices.
func appendValue(b array.Builder, v any) error {
	if v == nil {
		b.AppendNull()
		return nil
	}
	switch b := b.(type) {
	case *array.Int8Builder:
		i, err := toInt(v, 8)
		b.Append(int8(i))
		return err
	case *array.Int16Builder:
		i, err := toInt(v, 16)
		b.Append(int16(i))
		return err
	case *array.Int32Builder:
		i, err := toInt(v, 32)
		b.Append(int32(i))
		return err
	case *array.Int64Builder:
		i, err := toInt(v, 64)
		b.Append(i)
		return err
	case *array.Float32Builder:
		f, err := toFloat(v, 32)
		b.Append(float32(f))
		return err
	case *array.Float64Builder:
		f, err := toFloat(v, 64)
		b.Append(f)
		return err
	case *array.BooleanBuilder:
		x, ok := v.(bool)
		if !ok {
			b.AppendNull()
			return fmt.Errorf("cannot read %T as boolean", v)
		}
		b.Append(x)
	case *array.StringBuilder:
		x, ok := v.(string)
		if !ok {
			b.AppendNull()
			return fmt.Errorf("cannot read %T as varchar", v)
		}
		b.Append(x)
	case *array.BinaryBuilder:
		switch x := v.(type) {
		case []byte:
			b.Append(x)
		case string: // inside arrays varbinary stays base64 text
			d, err := base64.StdEncoding.DecodeString(x)
			if err != nil {
				b.AppendNull()
				return fmt.Errorf("bad varbinary value: %w", err)
			}
			b.Append(d)
		default:
			b.AppendNull()
			return fmt.Errorf("cannot read %T as varbinary", v)
		}
	case *array.TimestampBuilder:
		t, err := toTime(v)
		if err != nil {
			b.AppendNull()
			return err
		}
		b.Append(arrow.Timestamp(t.UnixMicro()))
	case *array.ListBuilder:
		vals, ok := v.([]any)
		if !ok {
			b.AppendNull()
			return fmt.Errorf("cannot read %T as array", v)
		}
		b.Append(true)
		for _, e := range vals {
			if err := appendValue(b.ValueBuilder(), e); err != nil {
				return err
			}
		}
	default:
		b.AppendNull()
		return fmt.Errorf("no reader for %s", b.Type())
	}
	return nil
}

func toInt(v any, bits int) (int64, error) {
	var i int64
	var err error
	switch x := v.(type) {
	case int64:
		i = x
	case json.Number:
		i, err = x.Int64()
	case float64:
		i = int64(x)
		if float64(i) != x {
			err = fmt.Errorf("%v is not an integer", x)
		}
	case string:
		i, err = strconv.ParseInt(x, 10, 64)
	default:
		err = fmt.Errorf("cannot read %T as an integer", v)
	}
	if err == nil && bits < 64 && (i < -(1<<(bits-1)) || i >= 1<<(bits-1)) {
		err = fmt.Errorf("%d overflows int%d", i, bits)
	}
	return i, err
}

func toFloat(v any, bits int) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case json.Number:
		return strconv.ParseFloat(string(x), bits)
	case string: // NaN, Infinity
		return strconv.ParseFloat(x, bits)
	case int64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("cannot read %T as a float", v)
}

func toTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string: // inside arrays timestamps stay text
		for _, layout := range []string{"2006-01-02 15:04:05.999999999 MST", "2006-01-02 15:04:05.999999999 -07:00", "2006-01-02 15:04:05.999999999"} {
			if t, err := time.Parse(layout, x); err == nil {
				return t, nil
			}
		}
		return time.Time{}, fmt.Errorf("bad timestamp %q", x)
	}
	return time.Time{}, fmt.Errorf("cannot read %T as a timestamp", v)
}
