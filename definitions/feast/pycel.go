package feast

// Translation of the obvious Python on-demand transformations to CEL: a pandas-mode function
// whose every statement assigns an output column an arithmetic expression (+, -, *, /, unary
// minus, parentheses, numbers) of input columns, such as Feast's template:
//
//	def transformed_conv_rate(inputs: pd.DataFrame) -> pd.DataFrame:
//	    df = pd.DataFrame()
//	    df["conv_rate_plus_val1"] = inputs["conv_rate"] + inputs["val_to_add"]
//	    return df
//
// becomes driver_hourly_stats.conv_rate + double(vals_to_add.val_to_add). The CEL computes
// what pandas computes: an int operand of a float operation is converted with double() (pandas
// promotes int64 to float64), / is always float division (pandas' true division), a null
// input gives null (pandas' NaN). Anything else — a function or method call, an intermediate
// variable, //, %, ** (whose sign and overflow rules differ between Python and CEL), a
// comparison — is not translated.

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/quiverfs/quiver/definitions"
)

// pyColumn is an input column a transformation may read: inputs["name"].
type pyColumn struct {
	Input string // the Quiver input: a request source or feature view name
	Field string
	Type  definitions.Type
}

// translatePandas translates a pandas-mode transformation's source text. cols are the columns
// of inputs it may read (by bare and by full "view__feature" name); outputs the declared
// types of its output columns. It returns each output's CEL expression.
func translatePandas(src string, cols map[string]pyColumn, outputs map[string]definitions.Type) (map[string]string, error) {
	stmts, param, err := functionBody(src)
	if err != nil {
		return nil, err
	}
	frame := ""
	out := map[string]string{}
	for _, s := range stmts {
		toks, err := pyTokens(s)
		if err != nil {
			return nil, err
		}
		switch {
		case len(toks) == 2 && toks[0].text == "return" && toks[1].kind == tokName && frame != "" && toks[1].text == frame:
			continue
		case len(toks) >= 5 && toks[0].kind == tokName && toks[1].text == "=" && isCall(toks[2:], "pd", "DataFrame") && frame == "":
			frame = toks[0].text
			continue
		case len(toks) >= 6 && frame != "" && toks[0].text == frame && toks[1].text == "[" && toks[2].kind == tokString && toks[3].text == "]" && toks[4].text == "=":
			name := toks[2].text
			want, ok := outputs[name]
			if !ok {
				return nil, fmt.Errorf("%w: it assigns column %q, which is not in its schema", errUntranslatable, name)
			}
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("%w: it assigns column %q twice", errUntranslatable, name)
			}
			p := &pyParser{toks: toks[5:], param: param, cols: cols}
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			if p.pos != len(p.toks) {
				return nil, fmt.Errorf("%w: unexpected %q in the expression of %q", errUntranslatable, p.toks[p.pos].text, name)
			}
			cel, err := e.celAs(want)
			if err != nil {
				return nil, fmt.Errorf("%w: column %q: %v", errUntranslatable, name, err)
			}
			out[name] = cel
			continue
		}
		return nil, fmt.Errorf("%w: statement %q", errUntranslatable, s)
	}
	for name := range outputs {
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("%w: it does not assign column %q of its schema", errUntranslatable, name)
		}
	}
	return out, nil
}

func isCall(toks []pyToken, obj, fn string) bool {
	return len(toks) == 5 && toks[0].text == obj && toks[1].text == "." && toks[2].text == fn && toks[3].text == "(" && toks[4].text == ")"
}

// functionBody finds the transformation's def (after its decorator) and returns the body's
// logical lines (continuation lines joined, comments and blank lines removed) and the name of
// its one parameter.
func functionBody(src string) ([]string, string, error) {
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "def ") {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, "", fmt.Errorf("%w: no def found", errUntranslatable)
	}
	logical := joinLines(lines[start:])
	if len(logical) < 2 {
		return nil, "", fmt.Errorf("%w: empty function", errUntranslatable)
	}
	def := logical[0]
	open, close := strings.Index(def, "("), strings.Index(def, ")")
	if open < 0 || close < open {
		return nil, "", fmt.Errorf("%w: cannot read the def line %q", errUntranslatable, def)
	}
	params := strings.Split(def[open+1:close], ",")
	if len(params) != 1 {
		return nil, "", fmt.Errorf("%w: the function takes %d parameters", errUntranslatable, len(params))
	}
	param, _, _ := strings.Cut(params[0], ":")
	param = strings.TrimSpace(param)
	var body []string
	for _, l := range logical[1:] {
		if l != "" && !unicode.IsSpace(rune(l[0])) {
			break // the function ended
		}
		body = append(body, strings.TrimSpace(l))
	}
	return body, param, nil
}

// joinLines strips comments and blank lines and joins lines inside open brackets.
func joinLines(lines []string) []string {
	var out []string
	cur, depth := "", 0
	for _, l := range lines {
		l = stripComment(l)
		if strings.TrimSpace(l) == "" {
			continue
		}
		if depth > 0 {
			cur += " " + strings.TrimSpace(l)
		} else {
			cur = strings.TrimRight(l, " \t")
		}
		for _, r := range stripStrings(l) {
			switch r {
			case '(', '[', '{':
				depth++
			case ')', ']', '}':
				depth--
			}
		}
		if depth <= 0 {
			depth = 0
			out = append(out, cur)
		}
	}
	return out
}

// stripComment removes a # comment outside string literals.
func stripComment(l string) string {
	var quote rune
	for i, r := range l {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
		case r == '"' || r == '\'':
			quote = r
		case r == '#':
			return l[:i]
		}
	}
	return l
}

// stripStrings blanks out string literals so brackets inside them are not counted.
func stripStrings(l string) string {
	var b strings.Builder
	var quote rune
	for _, r := range l {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			r = ' '
		case r == '"' || r == '\'':
			quote = r
		}
		b.WriteRune(r)
	}
	return b.String()
}

type tokKind int

const (
	tokName tokKind = iota
	tokNumber
	tokString
	tokOp
)

type pyToken struct {
	kind tokKind
	text string // a string token's text is its value, without quotes
}

// pyTokens splits one logical line into names, numbers, simple string literals and operators.
func pyTokens(s string) ([]pyToken, error) {
	var out []pyToken
	r := []rune(s)
	for i := 0; i < len(r); {
		c := r[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case unicode.IsLetter(c) || c == '_':
			j := i
			for j < len(r) && (unicode.IsLetter(r[j]) || unicode.IsDigit(r[j]) || r[j] == '_') {
				j++
			}
			if j < len(r) && (r[j] == '"' || r[j] == '\'') {
				return nil, fmt.Errorf("%w: prefixed string literal in %q", errUntranslatable, s)
			}
			out = append(out, pyToken{tokName, string(r[i:j])})
			i = j
		case unicode.IsDigit(c) || (c == '.' && i+1 < len(r) && unicode.IsDigit(r[i+1])):
			j := i
			for j < len(r) && (unicode.IsDigit(r[j]) || r[j] == '.' || r[j] == '_' || r[j] == 'e' || r[j] == 'E' ||
				((r[j] == '+' || r[j] == '-') && (r[j-1] == 'e' || r[j-1] == 'E'))) {
				j++
			}
			out = append(out, pyToken{tokNumber, strings.ReplaceAll(string(r[i:j]), "_", "")})
			i = j
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(r) && r[j] != c {
				if r[j] == '\\' {
					return nil, fmt.Errorf("%w: escaped string literal in %q", errUntranslatable, s)
				}
				j++
			}
			if j >= len(r) {
				return nil, fmt.Errorf("%w: unterminated string in %q", errUntranslatable, s)
			}
			out = append(out, pyToken{tokString, string(r[i+1 : j])})
			i = j + 1
		default:
			op := string(c)
			if i+1 < len(r) {
				two := string(r[i : i+2])
				switch two {
				case "//", "**", "==", "!=", "<=", ">=", "+=", "-=", "*=", "/=":
					op = two
				}
			}
			out = append(out, pyToken{tokOp, op})
			i += len([]rune(op))
		}
	}
	return out, nil
}

// pyExpr is a translated expression: its CEL text and whether it is a CEL double (else int).
type pyExpr struct {
	cel    string
	double bool
	// literal is the Python number literal when the expression is one (so 2 can be written
	// 2.0 rather than double(2) where a double is needed).
	literal string
	// prec is the precedence of the expression's outermost operator: precAdd, precMul, or
	// precAtom for a number, a column, a call or a negation.
	prec int
}

const (
	precAdd = iota + 1
	precMul
	precAtom
)

func (e pyExpr) asDouble() string {
	switch {
	case e.double:
		return e.cel
	case e.literal != "":
		return e.literal + ".0"
	}
	return "double(" + e.cel + ")"
}

// celAs converts the expression to the declared output type: an int result of a float
// output is converted (pandas would store the int column into a float feature); a float
// result of an int output is not translated (pandas' cast truncates, CEL's int() too, but a
// NaN or an overflow differ).
func (e pyExpr) celAs(t definitions.Type) (string, error) {
	if t.Array {
		return "", fmt.Errorf("output type %s is not a scalar", t)
	}
	switch t.Elem {
	case definitions.Float32, definitions.Float64:
		return e.asDouble(), nil
	case definitions.Int32, definitions.Int64:
		if e.double {
			return "", fmt.Errorf("a float expression for output type %s", t)
		}
		return e.cel, nil
	}
	return "", fmt.Errorf("output type %s is not numeric", t)
}

type pyParser struct {
	toks  []pyToken
	pos   int
	param string
	cols  map[string]pyColumn
}

func (p *pyParser) peek() string {
	if p.pos < len(p.toks) && p.toks[p.pos].kind == tokOp {
		return p.toks[p.pos].text
	}
	return ""
}

// expr := term (('+' | '-') term)*
func (p *pyParser) expr() (pyExpr, error) {
	l, err := p.term()
	if err != nil {
		return l, err
	}
	for op := p.peek(); op == "+" || op == "-"; op = p.peek() {
		p.pos++
		r, err := p.term()
		if err != nil {
			return r, err
		}
		l = binary(l, op, r)
	}
	return l, nil
}

// term := unary (('*' | '/') unary)*
func (p *pyParser) term() (pyExpr, error) {
	l, err := p.unary()
	if err != nil {
		return l, err
	}
	for op := p.peek(); op == "*" || op == "/" || op == "//" || op == "%"; op = p.peek() {
		if op == "//" || op == "%" {
			return l, fmt.Errorf("%w: operator %s (Python floors, CEL truncates)", errUntranslatable, op)
		}
		p.pos++
		r, err := p.unary()
		if err != nil {
			return r, err
		}
		l = binary(l, op, r)
	}
	return l, nil
}

// unary := ('-' | '+') unary | atom
func (p *pyParser) unary() (pyExpr, error) {
	switch p.peek() {
	case "-":
		p.pos++
		e, err := p.unary()
		if err != nil {
			return e, err
		}
		neg := pyExpr{cel: "-" + paren(e, precAtom), double: e.double, prec: precAtom}
		if e.literal != "" {
			neg.literal = "-" + e.literal
		}
		return neg, nil
	case "+":
		p.pos++
		return p.unary()
	}
	e, err := p.atom()
	if err != nil {
		return e, err
	}
	if p.peek() == "**" {
		return e, fmt.Errorf("%w: operator ** (CEL has no power operator)", errUntranslatable)
	}
	return e, nil
}

// atom := NUMBER | param '[' STRING ']' | '(' expr ')'
func (p *pyParser) atom() (pyExpr, error) {
	if p.pos >= len(p.toks) {
		return pyExpr{}, fmt.Errorf("%w: the expression ends early", errUntranslatable)
	}
	t := p.toks[p.pos]
	switch {
	case t.kind == tokNumber:
		p.pos++
		if strings.ContainsAny(t.text, ".eE") {
			lit := t.text
			if strings.HasPrefix(lit, ".") {
				lit = "0" + lit
			}
			if strings.HasSuffix(lit, ".") {
				lit += "0"
			}
			return pyExpr{cel: lit, double: true, prec: precAtom}, nil
		}
		if len(t.text) > 1 && t.text[0] == '0' {
			return pyExpr{}, fmt.Errorf("%w: number %s", errUntranslatable, t.text)
		}
		return pyExpr{cel: t.text, literal: t.text, prec: precAtom}, nil
	case t.kind == tokName && t.text == p.param:
		if p.pos+3 >= len(p.toks) || p.toks[p.pos+1].text != "[" || p.toks[p.pos+2].kind != tokString || p.toks[p.pos+3].text != "]" {
			return pyExpr{}, fmt.Errorf("%w: %s is used other than as %s[\"column\"]", errUntranslatable, p.param, p.param)
		}
		name := p.toks[p.pos+2].text
		p.pos += 4
		if p.peek() == "." || p.peek() == "[" || p.peek() == "(" {
			return pyExpr{}, fmt.Errorf("%w: %s[%q] is used with a method or index", errUntranslatable, p.param, name)
		}
		c, ok := p.cols[name]
		if !ok {
			return pyExpr{}, fmt.Errorf("%w: column %q is none of the inputs' fields", errUntranslatable, name)
		}
		if c.Type.Array {
			return pyExpr{}, fmt.Errorf("%w: column %q is of type %s", errUntranslatable, name, c.Type)
		}
		switch c.Type.Elem {
		case definitions.Int32, definitions.Int64:
			return pyExpr{cel: c.Input + "." + c.Field, prec: precAtom}, nil
		case definitions.Float32, definitions.Float64:
			return pyExpr{cel: c.Input + "." + c.Field, double: true, prec: precAtom}, nil
		}
		return pyExpr{}, fmt.Errorf("%w: column %q is of type %s, not a number", errUntranslatable, name, c.Type)
	case t.kind == tokOp && t.text == "(":
		p.pos++
		e, err := p.expr()
		if err != nil {
			return e, err
		}
		if p.peek() != ")" {
			return e, fmt.Errorf("%w: unbalanced parentheses", errUntranslatable)
		}
		p.pos++
		return e, nil // the CEL is parenthesized by precedence where it is an operand
	}
	if t.kind == tokName {
		return pyExpr{}, fmt.Errorf("%w: it uses %s", errUntranslatable, t.text)
	}
	return pyExpr{}, fmt.Errorf("%w: unexpected %q", errUntranslatable, t.text)
}

// paren wraps an expression whose precedence is below min in parentheses.
func paren(e pyExpr, min int) string {
	if e.prec >= min {
		return e.cel
	}
	return "(" + e.cel + ")"
}

// binary combines two operands as pandas would: float if either is float or the operator is
// true division.
func binary(l pyExpr, op string, r pyExpr) pyExpr {
	double := l.double || r.double || op == "/"
	prec := precAdd
	if op == "*" || op == "/" {
		prec = precMul
	}
	// Python's grouping is kept: a left operand of lower precedence, and a right operand of
	// lower or equal precedence (a - (b - c); also a + (b + c), as float addition does not
	// associate), are parenthesized.
	operand := func(e pyExpr, min int) string {
		if double && !e.double {
			return e.asDouble()
		}
		return paren(e, min)
	}
	return pyExpr{cel: operand(l, prec) + " " + op + " " + operand(r, prec+1), double: double, prec: prec}
}
