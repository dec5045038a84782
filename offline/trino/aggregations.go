package trino

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/quiverfs/quiver/offline"
)

// JoinAggregation is one windowed aggregation feature of a JoinView over an aggregation view's
// raw events (docs/aggregations.md): Function of Column over the events with the entity row's
// keys and T - Window < event_ts <= T.
type JoinAggregation struct {
	Name     string
	Column   string
	Function string // count, sum, mean, min, max, last, count_distinct
	Window   time.Duration
	// Float says the column is floating point (a sum is DOUBLE, else BIGINT).
	Float bool
}

// aggCTE writes the common table expression of an aggregation view: the entity rows joined to
// the events of their keys within the longest window (and, with the cutoff, created by T),
// grouped by entity row, with one FILTERed aggregate per feature. Entity rows without events
// are absent; the outer select turns their counts into 0. The offline table holds events
// already deduplicated on (keys, event_ts, created_ts), so every row counts.
func aggCTE(b *strings.Builder, name, table string, v JoinView, ts string, cutoff bool) error {
	q := QuoteIdent
	cols := append(append([]string{}, v.JoinKeys...), offline.EventTS, offline.CreatedTS)
	var maxW time.Duration
	for _, a := range v.Aggregations {
		if a.Window < time.Second || a.Window%time.Second != 0 {
			return fmt.Errorf("%w: aggregation %q of view %q: window %s is not a positive whole number of seconds", offline.ErrInvalidSource, a.Name, v.Name, a.Window)
		}
		maxW = max(maxW, a.Window)
		found := false
		for _, c := range cols {
			found = found || c == a.Column
		}
		if !found {
			cols = append(cols, a.Column)
		}
	}
	quoted := make([]string, len(cols))
	for j, c := range cols {
		quoted[j] = q(c)
	}
	secs := func(d time.Duration) string {
		return "INTERVAL '" + strconv.FormatInt(int64(d/time.Second), 10) + "' SECOND"
	}
	ev, et := "f."+q(offline.EventTS), "e."+q(ts)
	var on []string
	for _, k := range v.JoinKeys {
		on = append(on, "f."+q(k)+" = e."+q(k))
	}
	on = append(on, ev+" <= "+et, ev+" > "+et+" - "+secs(maxW))
	if cutoff {
		on = append(on, "(f."+q(offline.CreatedTS)+" IS NULL OR f."+q(offline.CreatedTS)+" <= "+et+")")
	}
	var aggs []string
	for _, a := range v.Aggregations {
		x := "f." + q(a.Column)
		in := ev + " > " + et + " - " + secs(a.Window)
		var e string
		switch a.Function {
		case "count":
			e = "COUNT(" + x + ")"
		case "sum":
			e = "SUM(" + x + ")"
		case "mean":
			e = "AVG(CAST(" + x + " AS DOUBLE))"
		case "min":
			e = "MIN(" + x + ")"
		case "max":
			e = "MAX(" + x + ")"
			if a.Float {
				// NaN orders above every number (docs/aggregations.md), but Trino's max skips
				// NaN unless every value is NaN: a window holding a NaN has the max of its NaNs.
				e = "CASE WHEN BOOL_OR(is_nan(" + x + ")) FILTER (WHERE " + in + ") THEN MAX(" + x + ") FILTER (WHERE " + in + " AND is_nan(" + x + ")) ELSE MAX(" + x + ") FILTER (WHERE " + in + ") END"
			}
		case "count_distinct":
			e = "COUNT(DISTINCT " + x + ")"
		case "last": // the latest non-null value by (event_ts, created_ts), a null created_ts lowest
			e = "(ARRAY_AGG(" + x + " ORDER BY " + ev + " DESC, f." + q(offline.CreatedTS) + " DESC NULLS LAST) FILTER (WHERE " + in + " AND " + x + " IS NOT NULL))[1]"
		default:
			return fmt.Errorf("%w: aggregation %q of view %q: unknown function %q (valid: count, sum, mean, min, max, last, count_distinct)", offline.ErrInvalidSource, a.Name, v.Name, a.Function)
		}
		if a.Function != "last" && (a.Function != "max" || !a.Float) {
			e += " FILTER (WHERE " + in + ")"
		}
		if a.Function == "sum" {
			e = "CAST(" + e + " AS " + sumType(a) + ")"
		}
		aggs = append(aggs, "    "+e+" AS "+q(a.Name))
	}
	fmt.Fprintf(b, ",\n%s AS (\n  SELECT e.%s,\n%s\n  FROM %s e\n  JOIN (SELECT %s FROM %s) AS f\n    ON %s\n  GROUP BY e.%s\n)",
		q(name), q("quiver_row"), strings.Join(aggs, ",\n"), q("quiver_entities"), strings.Join(quoted, ", "), table, strings.Join(on, "\n   AND "), q("quiver_row"))
	return nil
}

// sumType keeps a sum's type the same in every engine: BIGINT for integer columns (PostgreSQL
// would widen to NUMERIC), DOUBLE for floating ones.
func sumType(a JoinAggregation) string {
	if a.Float {
		return "DOUBLE"
	}
	return "BIGINT"
}
