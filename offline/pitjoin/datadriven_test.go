package pitjoin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
)

// The test language of testdata/*.test (in the spirit of Prometheus' promqltest). A file is a
// list of blocks separated by blank lines; '#' starts a comment line.
//
//	entities                                  entity rows: a header of name:type, then rows
//	id:int64  event_timestamp:ts  label:string
//	1         10                  a
//
//	view NAME keys=k1,k2 [ttl=5s]             a view's feature rows, same table layout
//	id:int64  event_ts:ts  created_ts:ts  clicks:int64
//	1         8            9              3
//
//	join [cutoff] [full_names] VIEW:FEATURE...
//	id  event_timestamp  label  clicks        the expected output: names, then rows
//	1   10               a      3
//
//	join VIEW:FEATURE... error "substring"    Join must fail with an error containing it
//
// Types: int32 int64 float32 float64 bool string bytes ts list<T>. Values: null; ts as seconds
// since the epoch, with up to 6 decimals ("10", "9.999999"); lists as [1,2,null]; strings bare
// or "quoted". Each join runs twice, in memory and with a 1-byte budget (all spilled).

func TestDataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/*.test")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runTestFile(t, f) })
	}
}

type ddBlock struct {
	line int
	cmd  []string
	rows [][]string
}

func tokenize(line string) ([]string, error) {
	var out []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		if line[0] == '"' {
			end := 1
			for end < len(line) && (line[end] != '"' || line[end-1] == '\\') {
				end++
			}
			if end == len(line) {
				return nil, fmt.Errorf("unterminated string")
			}
			out = append(out, line[:end+1])
			line = line[end+1:]
			continue
		}
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			i = len(line)
		}
		out = append(out, line[:i])
		line = line[i:]
	}
	return out, nil
}

func parseBlocks(t *testing.T, path string) []ddBlock {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var blocks []ddBlock
	var cur *ddBlock
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if trimmed == "" {
			cur = nil
			continue
		}
		toks, err := tokenize(trimmed)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, i+1, err)
		}
		if cur == nil {
			blocks = append(blocks, ddBlock{line: i + 1, cmd: toks})
			cur = &blocks[len(blocks)-1]
			continue
		}
		cur.rows = append(cur.rows, toks)
	}
	return blocks
}

func parseType(s string) (arrow.DataType, error) {
	if inner, ok := strings.CutPrefix(s, "list<"); ok {
		elem, err := parseType(strings.TrimSuffix(inner, ">"))
		if err != nil {
			return nil, err
		}
		return arrow.ListOf(elem), nil
	}
	switch s {
	case "int32":
		return i32, nil
	case "int64":
		return i64, nil
	case "float32":
		return f32, nil
	case "float64":
		return f64, nil
	case "bool":
		return boolean, nil
	case "string":
		return str, nil
	case "bytes":
		return bin, nil
	case "ts":
		return tsType, nil
	}
	return nil, fmt.Errorf("unknown type %q", s)
}

func parseTS(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || len(frac) > 6 {
		return 0, fmt.Errorf("bad timestamp %q (want seconds with up to 6 decimals)", s)
	}
	us := int64(0)
	if frac != "" {
		if us, err = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64); err != nil {
			return 0, fmt.Errorf("bad timestamp %q", s)
		}
	}
	if strings.HasPrefix(whole, "-") {
		us = -us
	}
	return sec*1_000_000 + us, nil
}

func parseValue(dt arrow.DataType, s string) (any, error) {
	if s == "null" {
		return nil, nil
	}
	unq := s
	if strings.HasPrefix(s, `"`) {
		var err error
		if unq, err = strconv.Unquote(s); err != nil {
			return nil, fmt.Errorf("bad string %s", s)
		}
	}
	switch dt.ID() {
	case arrow.INT32:
		v, err := strconv.ParseInt(s, 10, 32)
		return int32(v), err
	case arrow.INT64:
		return strconv.ParseInt(s, 10, 64)
	case arrow.FLOAT32:
		v, err := strconv.ParseFloat(s, 32)
		return float32(v), err
	case arrow.FLOAT64:
		return strconv.ParseFloat(s, 64)
	case arrow.BOOL:
		return strconv.ParseBool(s)
	case arrow.STRING:
		return unq, nil
	case arrow.BINARY:
		return []byte(unq), nil
	case arrow.TIMESTAMP:
		return parseTS(s)
	case arrow.LIST:
		inner, _ := strings.CutPrefix(s, "[")
		inner, ok := strings.CutSuffix(inner, "]")
		if !ok {
			return nil, fmt.Errorf("bad list %q", s)
		}
		out := []any{}
		if inner == "" {
			return out, nil
		}
		for _, e := range strings.Split(inner, ",") {
			v, err := parseValue(dt.(*arrow.ListType).Elem(), e)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("no parser for %s", dt)
}

// parseTable reads a typed header (name:type) and rows.
func parseTable(rows [][]string) (table, error) {
	if len(rows) == 0 {
		return table{}, fmt.Errorf("missing header")
	}
	var fields []arrow.Field
	for _, h := range rows[0] {
		name, typ, ok := strings.Cut(h, ":")
		if !ok {
			return table{}, fmt.Errorf("header %q: want name:type", h)
		}
		dt, err := parseType(typ)
		if err != nil {
			return table{}, err
		}
		fields = append(fields, arrow.Field{Name: name, Type: dt, Nullable: true})
	}
	tb := table{schema: arrow.NewSchema(fields, nil)}
	for _, r := range rows[1:] {
		row, err := parseRow(fields, r)
		if err != nil {
			return table{}, err
		}
		tb.rows = append(tb.rows, row)
	}
	return tb, nil
}

func parseRow(fields []arrow.Field, r []string) ([]any, error) {
	if len(r) != len(fields) {
		return nil, fmt.Errorf("row %v has %d values, want %d", r, len(r), len(fields))
	}
	row := make([]any, len(r))
	for i, s := range r {
		v, err := parseValue(fields[i].Type, s)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", fields[i].Name, err)
		}
		row[i] = v
	}
	return row, nil
}

type ddView struct {
	keys []string
	ttl  time.Duration
	rows table
}

func runTestFile(t *testing.T, path string) {
	var ent table
	views := map[string]*ddView{}
	for _, b := range parseBlocks(t, path) {
		where := fmt.Sprintf("%s:%d", path, b.line)
		fail := func(err error) { t.Fatalf("%s: %v", where, err) }
		switch b.cmd[0] {
		case "entities":
			tb, err := parseTable(b.rows)
			if err != nil {
				fail(err)
			}
			ent = tb
		case "view":
			if len(b.cmd) < 3 {
				fail(fmt.Errorf("want: view NAME keys=K1,K2 [ttl=DUR]"))
			}
			v := &ddView{}
			for _, arg := range b.cmd[2:] {
				k, val, _ := strings.Cut(arg, "=")
				switch k {
				case "keys":
					v.keys = strings.Split(val, ",")
				case "ttl":
					d, err := time.ParseDuration(val)
					if err != nil {
						fail(err)
					}
					v.ttl = d
				default:
					fail(fmt.Errorf("unknown view argument %q", arg))
				}
			}
			tb, err := parseTable(b.rows)
			if err != nil {
				fail(err)
			}
			v.rows = tb
			views[b.cmd[1]] = v
		case "join":
			runJoinBlock(t, where, ent, views, b)
		default:
			fail(fmt.Errorf("unknown command %q", b.cmd[0]))
		}
	}
}

func runJoinBlock(t *testing.T, where string, ent table, views map[string]*ddView, b ddBlock) {
	var opts Options
	var order []string
	byView := map[string]*View{}
	wantErr := ""
	args := b.cmd[1:]
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "cutoff":
			opts.CreatedCutoff = true
		case "full_names":
			opts.FullFeatureNames = true
		case "error":
			if i+1 >= len(args) {
				t.Fatalf("%s: error needs a quoted substring", where)
			}
			s, err := strconv.Unquote(args[i+1])
			if err != nil {
				t.Fatalf("%s: error needs a quoted substring", where)
			}
			wantErr = s
			i++
		default:
			vn, fn, ok := strings.Cut(a, ":")
			dv := views[vn]
			if !ok || dv == nil {
				t.Fatalf("%s: %q is not VIEW:FEATURE of a defined view", where, a)
			}
			v := byView[vn]
			if v == nil {
				v = &View{Name: vn, JoinKeys: dv.keys, TTL: dv.ttl}
				byView[vn] = v
				order = append(order, vn)
			}
			v.Features = append(v.Features, fn)
		}
	}
	for _, budget := range []int64{0, 1} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		o := opts
		o.MemoryBudget, o.Allocator, o.TempDir = budget, mem, t.TempDir()
		var vs []View
		for _, vn := range order {
			v := *byView[vn]
			v.Open = views[vn].rows.open(mem, []int{2, 1, 3})
			vs = append(vs, v)
		}
		rdr := ent.reader(mem, []int{3, 1})
		res, err := Join(context.Background(), rdr, vs, o)
		if wantErr != "" {
			if err == nil {
				res.Release()
				t.Fatalf("%s: join succeeded, want an error containing %q", where, wantErr)
			}
			require.Contains(t, err.Error(), wantErr, where)
			rdr.Release()
			mem.AssertSize(t, 0)
			continue
		}
		if err != nil {
			t.Fatalf("%s: join: %v", where, err)
		}
		got := collect(t, res)
		res.Release()
		rdr.Release()
		mem.AssertSize(t, 0)
		if len(b.rows) == 0 {
			t.Fatalf("%s: join has no expected table", where)
		}
		header := b.rows[0]
		var names []string
		for _, f := range got.schema.Fields() {
			names = append(names, f.Name)
		}
		require.Equal(t, header, names, "%s: output columns", where)
		var want [][]any
		for _, r := range b.rows[1:] {
			row, err := parseRow(got.schema.Fields(), r)
			if err != nil {
				t.Fatalf("%s: expected row: %v", where, err)
			}
			want = append(want, row)
		}
		require.Equal(t, want, got.rows, "%s (budget %d)", where, budget)
	}
}
