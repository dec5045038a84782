package testenv

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Trino is a small server speaking the Trino client protocol (POST /v1/statement, then GET
// the nextUri pages, DELETE to cancel) that runs each statement on a PostgreSQL database. It
// lets tests drive code through the real trino-go-client without a Trino installation.
//
// It is not Trino: the SQL is PostgreSQL's, so tests must keep to the subset both accept.
// It understands the client's parameterized form, EXECUTE IMMEDIATE '<sql>' USING <literals>,
// turning each ? into a typed PostgreSQL parameter. Results are mapped to Trino types:
// smallint, integer, bigint, real, double, boolean, varchar, varbinary, timestamp(6),
// timestamp(6) with time zone and array(T) of those; anything else is sent as varchar.
type Trino struct {
	dbURL string
	srv   *http.Server
	ln    net.Listener
	base  string

	mu      sync.Mutex
	seq     int
	queries map[string]*trinoQuery
	// Statements records every statement received, as sent by the client.
	statements []string
}

type trinoQuery struct {
	columns []trinoColumn
	rows    [][]any
}

type trinoColumn struct {
	Name          string        `json:"name"`
	Type          string        `json:"type"`
	TypeSignature trinoTypeSign `json:"typeSignature"`
}

type trinoTypeSign struct {
	RawType   string          `json:"rawType"`
	Arguments []trinoTypeArgs `json:"arguments"`
}

type trinoTypeArgs struct {
	Kind  string `json:"kind"`
	Value any    `json:"value"`
}

const trinoPageRows = 500

// StartTrino serves the Trino protocol on a free loopback port, running statements on the
// PostgreSQL database at databaseURL. It stops when t cleans up.
func StartTrino(t TB, databaseURL string) *Trino {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("trino test server: listen: %v", err)
	}
	tr := &Trino{dbURL: databaseURL, ln: ln, queries: map[string]*trinoQuery{}, base: "http://" + ln.Addr().String()}
	tr.srv = &http.Server{Handler: tr, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tr.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tr.srv.Shutdown(ctx)
		<-done
	})
	return tr
}

// DSN is a trino-go-client DSN for the server, with the given user, catalog and schema.
func (tr *Trino) DSN(user, catalog, schema string) string {
	q := url.Values{}
	if catalog != "" {
		q.Set("catalog", catalog)
	}
	if schema != "" {
		q.Set("schema", schema)
	}
	u := url.URL{Scheme: "http", User: url.User(user), Host: tr.ln.Addr().String(), RawQuery: q.Encode()}
	return u.String()
}

// Statements returns the statements received so far.
func (tr *Trino) Statements() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.statements...)
}

func (tr *Trino) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/statement":
		tr.statement(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/statement/executing/"):
		tr.page(w, r)
	case r.Method == http.MethodDelete:
		if id, _, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/statement/executing/"), "/"); ok {
			tr.mu.Lock()
			delete(tr.queries, id)
			tr.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodHead:
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "trino test server: unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}

func (tr *Trino) statement(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	stmt := string(body)
	tr.mu.Lock()
	tr.statements = append(tr.statements, stmt)
	tr.seq++
	id := fmt.Sprintf("q%d", tr.seq)
	tr.mu.Unlock()

	q, err := tr.run(r.Context(), expandPrepared(stmt, r.Header.Values("X-Trino-Prepared-Statement")))
	if err != nil {
		writeJSON(w, map[string]any{
			"id": id, "infoUri": tr.base + "/ui/" + id,
			"stats": map[string]any{"state": "FAILED"},
			"error": map[string]any{"message": err.Error(), "errorName": "GENERIC_USER_ERROR", "errorType": "USER_ERROR", "errorCode": 1},
		})
		return
	}
	tr.mu.Lock()
	tr.queries[id] = q
	tr.mu.Unlock()
	writeJSON(w, map[string]any{
		"id": id, "infoUri": tr.base + "/ui/" + id,
		"nextUri": fmt.Sprintf("%s/v1/statement/executing/%s/0", tr.base, id),
		"stats":   map[string]any{"state": "QUEUED"},
	})
}

func (tr *Trino) page(w http.ResponseWriter, r *http.Request) {
	id, tok, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/statement/executing/"), "/")
	n, err := strconv.Atoi(tok)
	tr.mu.Lock()
	q := tr.queries[id]
	tr.mu.Unlock()
	if err != nil || q == nil {
		http.Error(w, "trino test server: no such query page "+r.URL.Path, http.StatusNotFound)
		return
	}
	start := n * trinoPageRows
	end := min(start+trinoPageRows, len(q.rows))
	resp := map[string]any{
		"id": id, "infoUri": tr.base + "/ui/" + id,
		"columns": q.columns,
		"stats":   map[string]any{"state": "FINISHED"},
	}
	if start < end {
		resp["data"] = q.rows[start:end]
	}
	if end < len(q.rows) {
		resp["nextUri"] = fmt.Sprintf("%s/v1/statement/executing/%s/%d", tr.base, id, n+1)
		resp["stats"] = map[string]any{"state": "RUNNING"}
	} else {
		tr.mu.Lock()
		delete(tr.queries, id)
		tr.mu.Unlock()
	}
	writeJSON(w, resp)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// run executes a statement on PostgreSQL and encodes its result the way Trino would.
func (tr *Trino) run(ctx context.Context, stmt string) (*trinoQuery, error) {
	query, args, err := translateStatement(stmt)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, tr.dbURL)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SET TIME ZONE 'UTC'"); err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	q := &trinoQuery{}
	var enc []func(any) any
	for _, f := range rows.FieldDescriptions() {
		col, e := trinoType(conn.TypeMap(), f.DataTypeOID)
		col.Name = f.Name
		q.columns = append(q.columns, col)
		enc = append(enc, e)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		row := make([]any, len(vals))
		for i, v := range vals {
			if v == nil {
				continue
			}
			row[i] = enc[i](v)
		}
		q.rows = append(q.rows, row)
	}
	return q, rows.Err()
}

// trinoType maps a PostgreSQL type to a Trino column and an encoder of its values.
func trinoType(m *pgtype.Map, oid uint32) (trinoColumn, func(any) any) {
	scalar := func(name string, args ...trinoTypeArgs) trinoColumn {
		if args == nil {
			args = []trinoTypeArgs{}
		}
		return trinoColumn{Type: name, TypeSignature: trinoTypeSign{RawType: name, Arguments: args}}
	}
	long := func(n int) trinoTypeArgs { return trinoTypeArgs{Kind: "LONG", Value: n} }
	same := func(v any) any { return v }
	switch oid {
	case pgtype.Int2OID:
		return scalar("smallint"), same
	case pgtype.Int4OID:
		return scalar("integer"), same
	case pgtype.Int8OID:
		return scalar("bigint"), same
	case pgtype.Float4OID:
		return scalar("real"), same
	case pgtype.Float8OID:
		return scalar("double"), same
	case pgtype.BoolOID:
		return scalar("boolean"), same
	case pgtype.ByteaOID:
		return scalar("varbinary"), func(v any) any { return base64.StdEncoding.EncodeToString(v.([]byte)) }
	case pgtype.TimestampOID:
		c := scalar("timestamp", long(6))
		c.Type = "timestamp(6)"
		return c, func(v any) any { return v.(time.Time).Format("2006-01-02 15:04:05.000000") }
	case pgtype.TimestamptzOID:
		c := scalar("timestamp with time zone", long(6))
		c.Type = "timestamp(6) with time zone"
		return c, func(v any) any { return v.(time.Time).UTC().Format("2006-01-02 15:04:05.000000") + " UTC" }
	}
	if t, ok := m.TypeForOID(oid); ok {
		if at, ok := t.Codec.(*pgtype.ArrayCodec); ok {
			elem, encElem := trinoType(m, at.ElementType.OID)
			c := trinoColumn{
				Type:          "array(" + elem.Type + ")",
				TypeSignature: trinoTypeSign{RawType: "array", Arguments: []trinoTypeArgs{{Kind: "TYPE", Value: elem.TypeSignature}}},
			}
			return c, func(v any) any {
				vals, ok := v.([]any)
				if !ok {
					return fmt.Sprint(v)
				}
				out := make([]any, len(vals))
				for i, e := range vals {
					if e != nil {
						out[i] = encElem(e)
					}
				}
				return out
			}
		}
	}
	c := scalar("varchar", long(2147483647))
	c.Type = "varchar"
	return c, func(v any) any { return fmt.Sprint(v) }
}

// expandPrepared rewrites "EXECUTE name USING ..." of a statement prepared in the
// X-Trino-Prepared-Statement header (name=url-encoded SQL, comma separated) into the
// EXECUTE IMMEDIATE form.
func expandPrepared(stmt string, headers []string) string {
	rest, ok := strings.CutPrefix(strings.TrimSpace(stmt), "EXECUTE ")
	if !ok || strings.HasPrefix(rest, "IMMEDIATE ") {
		return stmt
	}
	name, using, _ := strings.Cut(rest, " ")
	for _, h := range headers {
		for _, entry := range strings.Split(h, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(entry), "=")
			if !ok || k != name {
				continue
			}
			sql, err := url.QueryUnescape(v)
			if err != nil {
				return stmt
			}
			return "EXECUTE IMMEDIATE '" + strings.ReplaceAll(sql, "'", "''") + "' " + using
		}
	}
	return stmt
}

// versionAsOf matches Iceberg time travel, which PostgreSQL has no equivalent of.
var versionAsOf = regexp.MustCompile(`(?i)\s+FOR\s+VERSION\s+AS\s+OF\s+[0-9]+`)

// isNaN matches Trino's is_nan(x) over a plain column reference; PostgreSQL has no is_nan, but
// orders NaN above every number and takes NaN = NaN as true, so x = 'NaN' says the same.
var isNaN = regexp.MustCompile(`(?i)\bis_nan\(([^()]*)\)`)

// translateStatement turns the client's EXECUTE IMMEDIATE '<sql>' USING a, b form into
// PostgreSQL SQL with $n parameters and their values; other statements pass through. CAST(x AS
// DOUBLE) becomes DOUBLE PRECISION, is_nan(x) x = 'NaN'. Iceberg
// time travel (FOR VERSION AS OF n) is dropped: the test tables have no snapshots, so tests
// that use it check the SQL text, not the pinning.
func translateStatement(stmt string) (string, []any, error) {
	const prefix = "EXECUTE IMMEDIATE "
	s := versionAsOf.ReplaceAllString(strings.TrimSpace(stmt), "")
	s = strings.ReplaceAll(s, " AS DOUBLE)", " AS DOUBLE PRECISION)") // Trino's name for float8
	s = isNaN.ReplaceAllString(s, "(($1) = 'NaN'::float8)")
	if !strings.HasPrefix(s, prefix) {
		return s, nil, nil
	}
	s = s[len(prefix):]
	query, rest, err := cutStringLiteral(s)
	if err != nil {
		return "", nil, fmt.Errorf("trino test server: %w in %q", err, stmt)
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, "USING ") {
		return "", nil, fmt.Errorf("trino test server: want USING after the statement in %q", stmt)
	}
	args, err := parseLiterals(strings.TrimSpace(rest[len("USING "):]))
	if err != nil {
		return "", nil, fmt.Errorf("trino test server: %w in %q", err, stmt)
	}
	pg, n := numberPlaceholders(query)
	if n != len(args) {
		return "", nil, fmt.Errorf("trino test server: %d placeholders but %d parameters", n, len(args))
	}
	return pg, args, nil
}

// cutStringLiteral reads a '...' literal (” escapes a quote) from the start of s.
func cutStringLiteral(s string) (lit, rest string, err error) {
	if !strings.HasPrefix(s, "'") {
		return "", "", errors.New("want a string literal")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '\'' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		return b.String(), s[i+1:], nil
	}
	return "", "", errors.New("unterminated string literal")
}

// parseLiterals parses the comma-separated literals trino-go-client writes for parameters.
func parseLiterals(s string) ([]any, error) {
	var out []any
	for s != "" {
		var v any
		var err error
		upper := strings.ToUpper(s)
		switch {
		case strings.HasPrefix(upper, "TIMESTAMP '"):
			var lit string
			lit, s, err = cutStringLiteral(s[len("TIMESTAMP "):])
			if err == nil {
				v, err = parseTimestamp(lit)
			}
		case strings.HasPrefix(upper, "DOUBLE '"), strings.HasPrefix(upper, "REAL '"):
			var lit string
			sp := strings.IndexByte(s, ' ')
			lit, s, err = cutStringLiteral(s[sp+1:])
			if err == nil {
				v, err = strconv.ParseFloat(lit, 64)
			}
		case strings.HasPrefix(upper, "X'"):
			var lit string
			lit, s, err = cutStringLiteral(s[1:])
			if err == nil {
				v, err = hex.DecodeString(lit)
			}
		case strings.HasPrefix(s, "'"):
			v, s, err = cutStringLiteral(s)
		default:
			tok, after, found := strings.Cut(s, ",")
			tok = strings.TrimSpace(tok)
			s = ""
			if found {
				s = after
			}
			switch strings.ToLower(tok) {
			case "null":
				v = nil
			case "true", "false":
				v = tok == "true"
			default:
				if i, perr := strconv.ParseInt(tok, 10, 64); perr == nil {
					v = i
				} else {
					err = fmt.Errorf("unsupported parameter literal %q", tok)
				}
			}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		s = strings.TrimSpace(s)
		s = strings.TrimPrefix(s, ",")
		s = strings.TrimSpace(s)
	}
	return out, nil
}

func parseTimestamp(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999 Z07:00", "2006-01-02 15:04:05.999999999 MST", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("bad timestamp literal %q", s)
}

// numberPlaceholders replaces each ? outside quotes with $1, $2, ...
func numberPlaceholders(q string) (string, int) {
	var b strings.Builder
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), n
}
