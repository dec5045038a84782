package definitions

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const aggRepoHead = `
entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: transactions
    parquet: { path: t.parquet }
    timestamp_field: event_ts
feature_views:
  - name: txn_aggs
    entities: [user]
    source: transactions
`

func TestAggregationFeatures(t *testing.T) {
	f, err := Parse("a.yaml", []byte(aggRepoHead+`    columns:
      - { name: amount, type: float64 }
      - { name: qty, type: int32 }
      - { name: merchant_id, type: string }
    aggregations:
      - { column: amount, function: sum,   windows: [1h, 1d, 7d] }
      - { column: qty, function: max, windows: [90m] }
      - { column: merchant_id, function: count_distinct, windows: [1d] }
feature_services:
  - name: s
    features: [txn_aggs:amount_sum_1d, txn_aggs:merchant_id_count_distinct_1d]
`))
	require.NoError(t, err)
	repo, err := NewRepo(f.Objects)
	require.NoError(t, err)
	v := repo.FeatureView("txn_aggs")
	require.True(t, v.IsAggregation())
	var names []string
	for _, f := range v.Features {
		names = append(names, f.Name+":"+f.Type.String())
	}
	require.Equal(t, []string{"amount_sum_1h:float64", "amount_sum_1d:float64", "amount_sum_7d:float64", "qty_max_90m:int32", "merchant_id_count_distinct_1d:int64"}, names)
	require.Equal(t, 7*24*time.Hour, v.MaxWindow())
	rf, err := repo.ResolveService("s")
	require.NoError(t, err)
	require.Len(t, rf, 2)
	require.Equal(t, "txn_aggs:merchant_id_count_distinct_1d", rf[1].Ref())
}

func TestAggregationErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown column", `    columns: [{ name: amount, type: float64 }]
    aggregations:
      - { column: amont, function: sum, windows: [1h] }
`, `a.yaml:15:9: aggregation refers to unknown column "amont" of feature view "txn_aggs" (its columns: "amount"); did you mean "amount"?`},
		{"function not valid for the type", `    columns: [{ name: m, type: string }]
    aggregations:
      - { column: m, function: sum, windows: [1h] }
`, `a.yaml:15:9: aggregation function sum does not accept column "m" of type string (it accepts int32, int64, float32, float64)`},
		{"unknown function", `    columns: [{ name: m, type: string }]
    aggregations:
      - { column: m, function: median, windows: [1h] }
`, `a.yaml:15:32: unknown aggregation function "median" (valid functions: count, sum, mean, min, max, last, count_distinct)`},
		{"bad window", `    columns: [{ name: m, type: string }]
    aggregations:
      - { column: m, function: count, windows: [1h, 2x] }
`, `a.yaml:15:53: aggregation window "2x" is not a duration`},
		{"zero window", `    columns: [{ name: m, type: string }]
    aggregations:
      - { column: m, function: count, windows: [0] }
`, `a.yaml:15:49: aggregation window "0" must be longer than 0`},
		{"seconds window", `    columns: [{ name: m, type: string }]
    aggregations:
      - { column: m, function: count, windows: [90s] }
`, `a.yaml:15:49: aggregation window "90s" must be a whole number of minutes`},
		{"duplicate names", `    columns: [{ name: m, type: string }]
    aggregations:
      - { column: m, function: count, windows: [1d] }
      - { column: m, function: count, windows: [24h] }
`, `a.yaml:16:9: feature view "txn_aggs" makes feature "m_count_1d" twice (first at a.yaml:15:9)`},
		{"features and aggregations", `    features: [{ name: x, type: int64 }]
    columns: [{ name: m, type: string }]
    aggregations:
      - { column: m, function: count, windows: [1d] }
`, `has both features and aggregations`},
		{"no columns", `    aggregations:
      - { column: m, function: count, windows: [1d] }
`, `has aggregations but no columns`},
		{"ttl", `    ttl: 1d
    columns: [{ name: m, type: string }]
    aggregations:
      - { column: m, function: count, windows: [1d] }
`, `has aggregations and a ttl`},
		{"unknown key", `    columns: [{ name: m, type: string }]
    aggregations:
      - { column: m, function: count, window: [1d] }
`, `unknown key "window" in aggregation (valid keys: column, function, windows); did you mean "windows"?`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("a.yaml", []byte(aggRepoHead+c.yaml))
			require.ErrorIs(t, err, ErrInvalid)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

func TestAggOutputTypes(t *testing.T) {
	for _, c := range []struct {
		fn   AggFunc
		in   string
		out  string
		okay bool
	}{
		{AggCount, "array<int64>", "int64", true},
		{AggSum, "int32", "int64", true},
		{AggSum, "float32", "float64", true},
		{AggSum, "timestamp", "", false},
		{AggMean, "int64", "float64", true},
		{AggMin, "timestamp", "timestamp", true},
		{AggMax, "string", "", false},
		{AggLast, "bool", "bool", true},
		{AggLast, "string", "string", true}, // issue 27
		{AggLast, "bytes", "", false},
		{AggCountDistinct, "string", "int64", true},
		{AggCountDistinct, "float64", "", false},
	} {
		out, ok := AggOutputType(c.fn, MustType(c.in))
		require.Equal(t, c.okay, ok, "%s(%s)", c.fn, c.in)
		if ok {
			require.Equal(t, c.out, out.String(), "%s(%s)", c.fn, c.in)
		}
	}
}

// An aggregation view may read a push or a kafka source: pushed and streamed events are folded
// into its online tiles (docs/aggregations.md, issue 27).
func TestAggregationsOnPushSources(t *testing.T) {
	for _, src := range []string{
		"    push: {}\n",
		"    kafka: { brokers: [\"127.0.0.1:9092\"], topic: t, group: g, format: json }\n",
	} {
		f, err := Parse("a.yaml", []byte(`
entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: transactions
`+src+`    timestamp_field: event_ts
feature_views:
  - name: txn_aggs
    entities: [user]
    source: transactions
    columns: [{ name: amount, type: float64 }]
    aggregations:
      - { column: amount, function: sum, windows: [1d] }
`))
		require.NoError(t, err)
		r, err := NewRepo(f.Objects)
		require.NoError(t, err, src)
		require.True(t, r.Source("transactions").IsPush())
		require.Equal(t, []string{"amount_sum_1d"}, []string{r.FeatureView("txn_aggs").Features[0].Name})
	}
}

// TestAggregationLastOfString (issue 27): last accepts a string column and makes a string
// feature.
func TestAggregationLastOfString(t *testing.T) {
	f, err := Parse("a.yaml", []byte(`
entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: txns
    push: {}
    timestamp_field: event_ts
feature_views:
  - name: txn_aggs
    entities: [user]
    source: txns
    columns: [{ name: merchant, type: string }]
    aggregations:
      - { column: merchant, function: last, windows: [1d] }
`))
	require.NoError(t, err)
	r, err := NewRepo(f.Objects)
	require.NoError(t, err)
	require.Equal(t, Field{Name: "merchant_last_1d", Type: MustType("string")}, Field{Name: r.FeatureView("txn_aggs").Features[0].Name, Type: r.FeatureView("txn_aggs").Features[0].Type})
}
