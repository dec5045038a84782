package definitions

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const onDemandBase = `entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: src
    parquet: { path: data.parquet }
    timestamp_field: ts
feature_views:
  - name: user_stats
    entities: [user]
    source: src
    features:
      - { name: spend_30d, type: float64 }
      - { name: clicks, type: int64 }
      - { name: tags, type: "array<string>" }
request_sources:
  - name: txn_request
    fields: [{ name: amount, type: float64 }, { name: merchant_country, type: string }]
`

func loadOnDemand(t *testing.T, yaml string) (*Repo, error) {
	t.Helper()
	f, err := Parse("features.yaml", []byte(yaml))
	if err != nil {
		return nil, err
	}
	return NewRepo(f.Objects)
}

func TestOnDemandValid(t *testing.T) {
	repo, err := loadOnDemand(t, onDemandBase+`on_demand_feature_views:
  - name: txn_ratios
    inputs: [txn_request, user_stats]
    features:
      - { name: amount_over_avg, type: float64,
          expr: "user_stats.spend_30d > 0.0 ? txn_request.amount / user_stats.spend_30d : 0.0" }
      - { name: foreign, type: bool, expr: "txn_request.merchant_country != 'DE'" }
      - name: small
        type: float32
        expr: |
          has(user_stats.clicks) ? double(user_stats.clicks) : -1.0
feature_services:
  - name: svc
    features: [user_stats:clicks, txn_ratios:*]
`)
	require.NoError(t, err)
	c := repo.Compiled("txn_ratios")
	require.NotNil(t, c)
	require.Len(t, c.Asts, 3)
	require.Equal(t, []bool{true, true, false}, c.Inputs[1].Used)
	fs, err := repo.ResolveService("svc")
	require.NoError(t, err)
	var refs []string
	for _, f := range fs {
		refs = append(refs, f.Ref())
	}
	require.Equal(t, []string{"user_stats:clicks", "txn_ratios:amount_over_avg", "txn_ratios:foreign", "txn_ratios:small"}, refs)

	// The spec round-trips through the registry's encoding.
	spec, err := Spec(repo.OnDemandView("txn_ratios"))
	require.NoError(t, err)
	o, err := DecodeSpec(KindOnDemandView, spec)
	require.NoError(t, err)
	require.Equal(t, "txn_ratios", o.ObjectName())
}

// The acceptance case: five planted expression errors are all reported, each with the
// position of the mistake inside the expression.
func TestOnDemandFivePlantedErrors(t *testing.T) {
	_, err := loadOnDemand(t, onDemandBase+`on_demand_feature_views:
  - name: bad
    inputs: [txn_request, user_stats]
    features:
      - { name: unknown_input, type: float64, expr: "merchant_stats.x + 1.0" }
      - { name: unknown_field, type: float64, expr: "user_stats.spend_3d * 2.0" }
      - { name: mismatch, type: bool, expr: "txn_request.merchant_country > 1.0" }
      - { name: wrong_out, type: bool, expr: "txn_request.amount * 2.0" }
      - name: syntax
        type: float64
        expr: "txn_request.amount * (2.0 +"
`)
	var list ErrorList
	require.True(t, errors.As(err, &list), "%v", err)
	require.Len(t, list, 5, "%v", err)
	want := []struct{ pos, text string }{
		{"features.yaml:23:54", "undeclared reference to 'merchant_stats'"},
		{"features.yaml:24:64", "undefined field 'spend_3d'"},
		{"features.yaml:25:75", "no matching overload for '_>_'"},
		{"features.yaml:26:47", "declared bool but its expression is of type double"},
		{"features.yaml:29:43", "Syntax error"},
	}
	for i, w := range want {
		require.Equal(t, w.pos, list[i].Pos.String(), "%d: %s", i, list[i])
		require.True(t, strings.Contains(list[i].Msg, w.text), "%d: %s", i, list[i])
	}
}

func TestOnDemandBlockScalarPosition(t *testing.T) {
	_, err := loadOnDemand(t, onDemandBase+`on_demand_feature_views:
  - name: bad
    inputs: [txn_request]
    features:
      - name: f
        type: float64
        expr: |
          txn_request.amount +
            txn_request.nope
`)
	var list ErrorList
	require.True(t, errors.As(err, &list), "%v", err)
	require.Len(t, list, 1, "%v", err)
	require.Equal(t, "features.yaml:27:24", list[0].Pos.String(), "%v", list[0])
}

func TestOnDemandRejects(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown input", `on_demand_feature_views:
  - name: v
    inputs: [nope]
    features: [{ name: f, type: bool, expr: "true" }]
`, `unknown input "nope"`},
		{"array field", `on_demand_feature_views:
  - name: v
    inputs: [user_stats]
    features: [{ name: f, type: int64, expr: "size(user_stats.tags)" }]
`, "scalar features only"},
		{"too slow", `on_demand_feature_views:
  - name: v
    inputs: [txn_request]
    features: [{ name: f, type: bool, expr: "txn_request.merchant_country.matches(txn_request.merchant_country + txn_request.merchant_country + txn_request.merchant_country)" }]
`, "too slow"},
		{"name clash with a view", `on_demand_feature_views:
  - name: user_stats
    inputs: [txn_request]
    features: [{ name: f, type: bool, expr: "true" }]
`, "names must differ"},
		{"array output", `on_demand_feature_views:
  - name: v
    inputs: [txn_request]
    features: [{ name: f, type: "array<int64>", expr: "[1]" }]
`, "on-demand features are scalars"},
		{"service unknown feature", `on_demand_feature_views:
  - name: v
    inputs: [txn_request]
    features: [{ name: f, type: bool, expr: "true" }]
feature_services:
  - name: s
    features: [v:g]
`, `unknown feature "g" of on-demand view "v"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadOnDemand(t, onDemandBase+c.yaml)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}
