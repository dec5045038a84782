package trino

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/quiverfs/quiver/offline"
)

// JoinView is one feature view of a pushed-down point-in-time join.
type JoinView struct {
	Name string
	// Table is the view's offline table as Trino names it: "schema.table" or
	// "catalog.schema.table", quoted part by part.
	Table string
	// SnapshotID pins the Iceberg snapshot read (FOR VERSION AS OF); 0 reads the latest.
	SnapshotID int64
	JoinKeys   []string
	// TTL bounds how old a row may be: event_ts >= T - TTL; zero means no bound.
	TTL      time.Duration
	Features []string
	// Aggregations, when set, make the view's output instead of Features and TTL: windowed
	// aggregations over its rows as raw events (aggregations.go).
	Aggregations []JoinAggregation
}

// JoinSpec is a point-in-time join for Trino to run.
type JoinSpec struct {
	// Entities is a query returning the entity rows: the join keys, event_timestamp and any
	// other columns (labels), all of which are kept.
	Entities string
	// EntityColumns are the entity query's columns, in order (see Client.Columns).
	EntityColumns []string
	// EventTimestamp is the entity rows' time column; empty means "event_timestamp".
	EventTimestamp string
	Views          []JoinView
	// CreatedCutoff also requires created_ts <= the row's time.
	CreatedCutoff bool
	// FullFeatureNames names output features view__feature.
	FullFeatureNames bool
	// RowNumber adds the entity row's number (1, 2, ... in the order the result has without
	// it) as a last column RowNumberColumn and leaves out the ORDER BY: for a CREATE TABLE AS,
	// whose files keep no order, read back in order by the number.
	RowNumber bool
}

// RowNumberColumn is the column JoinSpec.RowNumber adds.
const RowNumberColumn = "quiver_row"

// BuildJoinSQL writes the point-in-time join as one statement in the SQL subset Trino and
// PostgreSQL share (window functions, standard intervals):
//
//   - the entity rows are numbered in a deterministic order (by all their columns), since a
//     SQL source has no order of its own;
//   - for each view, the feature rows with the same keys, event_ts <= T and (with a TTL)
//     event_ts >= T - ttl are ranked by event_ts, then created_ts (nulls lowest), descending,
//     and the first is kept;
//   - every entity row is kept (LEFT JOIN), with nulls when a view has no match.
//
// The result is the entity columns, then the features, ordered by the entity row number. It is
// the same rows the in-process engine gives (offline/pitjoin), which tests check through the
// Trino-protocol test server.
func BuildJoinSQL(spec JoinSpec) (string, error) {
	if strings.TrimSpace(spec.Entities) == "" {
		return "", fmt.Errorf("%w: empty entity query", offline.ErrInvalidSource)
	}
	if len(spec.EntityColumns) == 0 {
		return "", fmt.Errorf("%w: entity query has no columns", offline.ErrInvalidSource)
	}
	if len(spec.Views) == 0 {
		return "", fmt.Errorf("%w: no feature views to join", offline.ErrInvalidSource)
	}
	ts := spec.EventTimestamp
	if ts == "" {
		ts = "event_timestamp"
	}
	has := map[string]bool{}
	for _, c := range spec.EntityColumns {
		has[c] = true
	}
	if !has[ts] {
		return "", fmt.Errorf("%w: entity query has no %q column (its columns: %s)", offline.ErrColumnNotFound, ts, strings.Join(spec.EntityColumns, ", "))
	}
	q := QuoteIdent
	var b strings.Builder
	entities := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(spec.Entities), ";"))
	order := make([]string, len(spec.EntityColumns))
	for i, c := range spec.EntityColumns {
		order[i] = "e0." + q(c)
	}
	b.WriteString("WITH " + q("quiver_entities") + " AS (\n  SELECT e0.*, ROW_NUMBER() OVER (ORDER BY " + strings.Join(order, ", ") + ") AS " + q("quiver_row") + "\n  FROM (\n" + entities + "\n  ) AS e0\n)")
	var outCols []string
	for _, c := range spec.EntityColumns {
		outCols = append(outCols, "e."+q(c))
	}
	var joins []string
	seen := map[string]string{}
	for i, v := range spec.Views {
		if len(v.JoinKeys) == 0 || (len(v.Features) == 0 && len(v.Aggregations) == 0) {
			return "", fmt.Errorf("%w: view %q needs join keys and features", offline.ErrInvalidSource, v.Name)
		}
		for _, k := range v.JoinKeys {
			if !has[k] {
				return "", fmt.Errorf("%w: entity query has no join key %q of view %q (its columns: %s)", offline.ErrColumnNotFound, k, v.Name, strings.Join(spec.EntityColumns, ", "))
			}
		}
		alias := "v" + strconv.Itoa(i)
		if strings.ToLower(v.Table) != v.Table {
			// Trino folds every identifier to lower case, quoted or not, and its Iceberg JDBC
			// catalog looks names up as given: a table with upper-case letters is invisible.
			return "", fmt.Errorf("%w: view %q: its offline table %s has upper-case letters, which Trino folds to lower case and so cannot find; join it with the local engine, or rename the view in lower case", offline.ErrInvalidSource, v.Name, v.Table)
		}
		table, err := quoteTable(v.Table)
		if err != nil {
			return "", err
		}
		if v.SnapshotID != 0 {
			table += " FOR VERSION AS OF " + strconv.FormatInt(v.SnapshotID, 10)
		}
		if len(v.Aggregations) > 0 {
			if err := aggCTE(&b, "quiver_"+alias, table, v, ts, spec.CreatedCutoff); err != nil {
				return "", err
			}
			for _, a := range v.Aggregations {
				name := a.Name
				if spec.FullFeatureNames {
					name = v.Name + "__" + a.Name
				}
				if other, dup := seen[name]; dup || has[name] {
					if !dup {
						other = "the entity rows"
					}
					return "", fmt.Errorf("%w: output column %q comes from both %s and view %q", offline.ErrInvalidSource, name, other, v.Name)
				}
				seen[name] = "view " + strconv.Quote(v.Name)
				col := alias + "." + q(a.Name)
				if a.Function == "count" || a.Function == "count_distinct" {
					col = "COALESCE(" + col + ", 0)" // no events: 0
				}
				outCols = append(outCols, col+" AS "+q(name))
			}
			joins = append(joins, "LEFT JOIN "+q("quiver_"+alias)+" "+alias+" ON "+alias+"."+q("quiver_row")+" = e."+q("quiver_row"))
			continue
		}
		cols := append(append([]string{}, v.JoinKeys...), offline.EventTS, offline.CreatedTS)
		cols = append(cols, v.Features...)
		quoted := make([]string, len(cols))
		for j, c := range cols {
			quoted[j] = q(c)
		}
		var on []string
		for _, k := range v.JoinKeys {
			on = append(on, "f."+q(k)+" = e."+q(k))
		}
		on = append(on, "f."+q(offline.EventTS)+" <= e."+q(ts))
		if v.TTL > 0 {
			on = append(on, "f."+q(offline.EventTS)+" >= e."+q(ts)+" - INTERVAL '"+strconv.FormatInt(int64(v.TTL/time.Second), 10)+"' SECOND")
		}
		if spec.CreatedCutoff {
			on = append(on, "(f."+q(offline.CreatedTS)+" IS NULL OR f."+q(offline.CreatedTS)+" <= e."+q(ts)+")")
		}
		feats := make([]string, len(v.Features))
		for j, f := range v.Features {
			feats[j] = "f." + q(f)
		}
		fmt.Fprintf(&b, ",\n%s AS (\n  SELECT * FROM (\n    SELECT e.%s, %s,\n      ROW_NUMBER() OVER (PARTITION BY e.%s ORDER BY f.%s DESC, f.%s DESC NULLS LAST) AS %s\n    FROM %s e\n    JOIN (SELECT %s FROM %s) AS f\n      ON %s\n  ) AS ranked\n  WHERE %s = 1\n)",
			q("quiver_"+alias), q("quiver_row"), strings.Join(feats, ", "), q("quiver_row"), q(offline.EventTS), q(offline.CreatedTS), q("quiver_rank"),
			q("quiver_entities"), strings.Join(quoted, ", "), table, strings.Join(on, "\n     AND "), q("quiver_rank"))
		for _, f := range v.Features {
			name := f
			if spec.FullFeatureNames {
				name = v.Name + "__" + f
			}
			if other, dup := seen[name]; dup || has[name] {
				if !dup {
					other = "the entity rows"
				}
				return "", fmt.Errorf("%w: output column %q comes from both %s and view %q", offline.ErrInvalidSource, name, other, v.Name)
			}
			seen[name] = "view " + strconv.Quote(v.Name)
			outCols = append(outCols, alias+"."+q(f)+" AS "+q(name))
		}
		joins = append(joins, "LEFT JOIN "+q("quiver_"+alias)+" "+alias+" ON "+alias+"."+q("quiver_row")+" = e."+q("quiver_row"))
	}
	if spec.RowNumber {
		if has[RowNumberColumn] || seen[RowNumberColumn] != "" {
			return "", fmt.Errorf("%w: output column %q is the row number a CREATE TABLE AS adds; rename it", offline.ErrInvalidSource, RowNumberColumn)
		}
		outCols = append(outCols, "e."+q("quiver_row")+" AS "+q(RowNumberColumn))
		fmt.Fprintf(&b, "\nSELECT %s\nFROM %s e\n%s", strings.Join(outCols, ", "), q("quiver_entities"), strings.Join(joins, "\n"))
		return b.String(), nil
	}
	fmt.Fprintf(&b, "\nSELECT %s\nFROM %s e\n%s\nORDER BY e.%s", strings.Join(outCols, ", "), q("quiver_entities"), strings.Join(joins, "\n"), q("quiver_row"))
	return b.String(), nil
}

func quoteTable(name string) (string, error) {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		if p == "" {
			return "", fmt.Errorf("%w: table name %q has an empty part", offline.ErrInvalidSource, name)
		}
		parts[i] = QuoteIdent(p)
	}
	return strings.Join(parts, "."), nil
}

// Columns returns the column names of a query's result, reading no rows.
func (c *Client) Columns(ctx context.Context, query string) ([]string, error) {
	q := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(query), ";"))
	rows, err := c.db.QueryContext(ctx, "SELECT * FROM (\n"+q+"\n) AS "+QuoteIdent("quiver_probe")+" LIMIT 0")
	if err != nil {
		return nil, fmt.Errorf("trino: read the columns of the entity query: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	for rows.Next() {
	}
	return cols, rows.Err()
}

// Query runs a statement and streams its result as Arrow batches, with each column's type
// mapped from its Trino type (timestamps as microseconds UTC).
func (c *Client) Query(ctx context.Context, query string, batchSize int, mem memory.Allocator) (offline.Stream, error) {
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	rows, err := c.db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("trino: query: %w", err)
	}
	types, err := rows.ColumnTypes()
	if err != nil {
		rows.Close()
		return nil, fmt.Errorf("trino: result columns: %w", err)
	}
	fields := make([]arrow.Field, len(types))
	for i, ct := range types {
		dt, err := arrowType(ct.DatabaseTypeName())
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("trino: column %q: %w", ct.Name(), err)
		}
		fields[i] = arrow.Field{Name: ct.Name(), Type: dt, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	done := false
	next := func(ctx context.Context) (arrow.RecordBatch, error) {
		if done {
			return nil, io.EOF
		}
		b := array.NewRecordBuilder(mem, schema)
		defer b.Release()
		n, err := scanRows(ctx, rows, b, batchSize)
		if err != nil {
			return nil, fmt.Errorf("trino: %w", err)
		}
		if n < batchSize {
			done = true
		}
		if n == 0 {
			return nil, io.EOF
		}
		return b.NewRecordBatch(), nil
	}
	return offline.NewFuncStream(schema, next, rows.Close), nil
}

// scanRows appends up to max rows to b, returning how many.
func scanRows(ctx context.Context, rows *sql.Rows, b *array.RecordBuilder, max int) (int, error) {
	vals := make([]any, len(b.Schema().Fields()))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for n < max {
		if !rows.Next() {
			if err := rows.Err(); err != nil && !errors.Is(err, io.EOF) {
				return n, fmt.Errorf("read rows: %w", err)
			}
			return n, nil
		}
		if err := rows.Scan(ptrs...); err != nil {
			return n, fmt.Errorf("read rows: %w", err)
		}
		for i, v := range vals {
			if err := appendValue(b.Field(i), v); err != nil {
				return n, fmt.Errorf("column %q: %w", b.Schema().Field(i).Name, err)
			}
		}
		n++
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}
