package definitions

import (
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quiverfs/quiver/internal/aggfn"
	"github.com/quiverfs/quiver/internal/yamlx"
)

// AggFunc is a windowed aggregation function: aggfn's, the kernel the offline join and the
// online tiles share.
type AggFunc = aggfn.Func

// The aggregation functions. Every function ignores null values (SQL semantics): count counts
// the events whose column is not null, last is the latest non-null value.
const (
	AggCount         = aggfn.Count
	AggSum           = aggfn.Sum
	AggMean          = aggfn.Mean
	AggMin           = aggfn.Min
	AggMax           = aggfn.Max
	AggLast          = aggfn.Last
	AggCountDistinct = aggfn.CountDistinct
)

// AggFuncs lists every function, for error messages.
var AggFuncs = []AggFunc{AggCount, AggSum, AggMean, AggMin, AggMax, AggLast, AggCountDistinct}

const validWindows = `a whole number with a unit s, m, h or d (e.g. "1h", "1d", "7d")`

// MaxWindow is the longest aggregation window.
const MaxWindow = 366 * day

// Aggregation is one entry of a feature view's aggregations: a function of one event column
// over one or more windows ending at the entity row's time. Each window makes one feature,
// named <column>_<function>_<window> (AggFeatureName).
type Aggregation struct {
	Column   string     `json:"column"`
	Function AggFunc    `json:"function"`
	Windows  []Duration `json:"windows"`
	Pos      Pos        `json:"-"`
}

// AggFeature is one feature an aggregation makes: the function of Column over Window.
type AggFeature struct {
	Name     string
	Column   Field
	Function AggFunc
	Window   time.Duration
}

// AggFeatureName is the name of the feature made by fn over column in window w ("amount_sum_1d").
func AggFeatureName(column string, fn AggFunc, w Duration) string {
	return column + "_" + string(fn) + "_" + w.String()
}

// IsAggregation reports whether the view is an aggregation view: its offline table holds raw
// events (its Columns), and its Features are made by its Aggregations.
func (v *FeatureView) IsAggregation() bool { return len(v.Aggregations) > 0 }

// AggFeatures returns the features the view's aggregations make, in declaration order (the
// order of v.Features). It is nil for a view without aggregations.
func (v *FeatureView) AggFeatures() []AggFeature {
	var out []AggFeature
	for _, a := range v.Aggregations {
		col, _ := v.Column(a.Column)
		for _, w := range a.Windows {
			out = append(out, AggFeature{Name: AggFeatureName(a.Column, a.Function, w), Column: col, Function: a.Function, Window: w.Std()})
		}
	}
	return out
}

// Column returns the event column of an aggregation view with the given name.
func (v *FeatureView) Column(name string) (Field, bool) {
	for _, c := range v.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Field{}, false
}

// MaxWindow is the longest window of the view's aggregations, 0 for a view without any.
func (v *FeatureView) MaxWindow() time.Duration {
	var m time.Duration
	for _, a := range v.Aggregations {
		for _, w := range a.Windows {
			m = max(m, w.Std())
		}
	}
	return m
}

// AggOutputType is the type of fn's result over a column of type t, and whether fn accepts t.
// count and count_distinct give int64; sum gives int64 over integers and float64 over floats;
// mean gives float64; min, max and last give t (last also of a string column).
func AggOutputType(fn AggFunc, t Type) (Type, bool) {
	scalar := func(ok bool) bool { return ok && !t.Array }
	switch fn {
	case AggCount:
		return Type{Elem: Int64}, true
	case AggCountDistinct:
		return Type{Elem: Int64}, scalar(t.Elem == Int32 || t.Elem == Int64 || t.Elem == Bool || t.Elem == String || t.Elem == Bytes || t.Elem == Timestamp)
	case AggSum:
		if t.Elem == Float32 || t.Elem == Float64 {
			return Type{Elem: Float64}, scalar(true)
		}
		return Type{Elem: Int64}, scalar(t.Elem == Int32 || t.Elem == Int64)
	case AggMean:
		return Type{Elem: Float64}, scalar(t.Elem == Int32 || t.Elem == Int64 || t.Elem == Float32 || t.Elem == Float64)
	case AggMin, AggMax:
		return t, scalar(t.Elem == Int32 || t.Elem == Int64 || t.Elem == Float32 || t.Elem == Float64 || t.Elem == Timestamp)
	case AggLast:
		return t, scalar(t.Elem == Int32 || t.Elem == Int64 || t.Elem == Float32 || t.Elem == Float64 || t.Elem == Timestamp || t.Elem == Bool || t.Elem == String)
	}
	return Type{}, false
}

// aggValidTypes says which column types a function accepts, for error messages.
func aggValidTypes(fn AggFunc) string {
	switch fn {
	case AggCountDistinct:
		return "int32, int64, bool, string, bytes, timestamp"
	case AggSum, AggMean:
		return "int32, int64, float32, float64"
	case AggMin, AggMax:
		return "int32, int64, float32, float64, timestamp"
	case AggLast:
		return "int32, int64, float32, float64, bool, timestamp, string"
	}
	return "any type"
}

// aggregations decodes a view's aggregations list.
func (d *decoder) aggregations(kv keyValue) []Aggregation {
	n := kv.Value
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, "aggregations must be a list of { column, function, windows } mappings, got %s", yamlx.Describe(n))
		return nil
	}
	var out []Aggregation
	for _, item := range n.Content {
		item = yamlx.Resolve(item)
		a := Aggregation{Pos: d.pos(item)}
		for _, akv := range d.Mapping(item, "aggregation", []string{"column", "function", "windows"}) {
			switch akv.Key {
			case "column":
				a.Column = d.Str(akv, "aggregation")
			case "function":
				s := d.Str(akv, "aggregation")
				if s == "" {
					continue
				}
				if !slices.Contains(AggFuncs, AggFunc(s)) {
					names := make([]string, len(AggFuncs))
					for i, f := range AggFuncs {
						names[i] = string(f)
					}
					d.Errorf(akv.Value, "unknown aggregation function %q (valid functions: %s)%s", s, strings.Join(names, ", "), Suggest(s, names))
					continue
				}
				a.Function = AggFunc(s)
			case "windows":
				if akv.Value.Kind != yaml.SequenceNode || len(akv.Value.Content) == 0 {
					d.Errorf(akv.Value, "aggregation windows must be a non-empty list of durations like [1h, 1d, 7d], got %s", yamlx.Describe(akv.Value))
					continue
				}
				for _, wn := range akv.Value.Content {
					wn = yamlx.Resolve(wn)
					if wn.Kind != yaml.ScalarNode || wn.Tag == "!!null" {
						d.Errorf(wn, "aggregation window must be a duration like 1h, got %s", yamlx.Describe(wn))
						continue
					}
					w, err := ParseDuration(wn.Value)
					switch {
					case err != nil:
						d.Errorf(wn, "aggregation window %q is not a duration; want %s", wn.Value, validWindows)
					case w <= 0:
						d.Errorf(wn, "aggregation window %q must be longer than 0; want %s", wn.Value, validWindows)
					case w.Std() > MaxWindow:
						d.Errorf(wn, "aggregation window %q is too long; the longest is %s", wn.Value, Duration(MaxWindow))
					case w.Std()%time.Minute != 0:
						d.Errorf(wn, "aggregation window %q must be a whole number of minutes (online tiles are 1/60 of a window)", wn.Value)
					default:
						a.Windows = append(a.Windows, w)
					}
				}
			}
		}
		if item.Kind != yaml.MappingNode {
			continue
		}
		if a.Column == "" {
			d.Errorf(item, "aggregation has no column; name one of the view's columns")
		}
		if a.Function == "" && !d.hasKey(item, "function") {
			d.Errorf(item, "aggregation of %q has no function (valid functions: count, sum, mean, min, max, last, count_distinct)", a.Column)
		}
		if len(a.Windows) == 0 && !d.hasKey(item, "windows") {
			d.Errorf(item, "aggregation of %q has no windows; add windows: [1h, 1d]", a.Column)
		}
		out = append(out, a)
	}
	return out
}

func (d *decoder) hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if yamlx.Resolve(n.Content[i]).Value == key {
			return true
		}
	}
	return false
}

// finishAggregations checks an aggregation view's columns and aggregations and sets its
// Features to the features they make. It reports unknown columns, functions that do not accept
// a column's type, and duplicate feature names.
func (d *decoder) finishAggregations(v *FeatureView, n *yaml.Node) {
	if len(v.Features) > 0 {
		d.Errorf(n, "feature view %q has both features and aggregations; an aggregation view's features are made by its aggregations (declare the event columns under columns:)", v.Name)
		return
	}
	if v.TTL != 0 {
		d.Errorf(n, "feature view %q has aggregations and a ttl; an aggregation's windows bound the events it reads, remove the ttl", v.Name)
	}
	if len(v.Columns) == 0 {
		d.Errorf(n, "feature view %q has aggregations but no columns; declare the event columns they read: columns: [{ name: amount, type: float64 }]", v.Name)
		return
	}
	seenCol := map[string]bool{}
	for _, c := range v.Columns {
		if seenCol[c.Name] {
			d.errs.add(c.Pos, "feature view %q has column %q twice", v.Name, c.Name)
		}
		if slices.Contains(ReservedColumns, c.Name) {
			d.errs.add(c.Pos, "feature view %q: column %q uses a reserved column name (%s)", v.Name, c.Name, strings.Join(ReservedColumns, ", "))
		}
		seenCol[c.Name] = true
	}
	names := make([]string, len(v.Columns))
	for i, c := range v.Columns {
		names[i] = c.Name
	}
	seen := map[string]Pos{}
	for _, a := range v.Aggregations {
		col, ok := v.Column(a.Column)
		if !ok {
			if a.Column != "" {
				d.errs.add(a.Pos, "aggregation refers to unknown column %q of feature view %q (its columns: %s)%s", a.Column, v.Name, quoteList(names), Suggest(a.Column, names))
			}
			continue
		}
		if a.Function == "" {
			continue
		}
		out, ok := AggOutputType(a.Function, col.Type)
		if !ok {
			d.errs.add(a.Pos, "aggregation function %s does not accept column %q of type %s (it accepts %s)", a.Function, a.Column, col.Type, aggValidTypes(a.Function))
			continue
		}
		for _, w := range a.Windows {
			name := AggFeatureName(a.Column, a.Function, w)
			if prev, dup := seen[name]; dup {
				d.errs.add(a.Pos, "feature view %q makes feature %q twice (first at %s); each column, function and window may appear once", v.Name, name, prev)
				continue
			}
			seen[name] = a.Pos
			v.Features = append(v.Features, Field{Name: name, Type: out, Pos: a.Pos})
		}
	}
}
