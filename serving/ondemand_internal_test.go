package serving

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
)

const odInternalYAML = `entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: src
    parquet: { path: data/src.parquet }
    timestamp_field: event_ts
feature_views:
  - name: view_0
    entities: [user]
    source: src
    features:
      - { name: v0_f0, type: float64 }
      - { name: v0_f1, type: float64 }
request_sources:
  - name: txn
    fields: [{ name: amount, type: float64 }, { name: country, type: string }]
on_demand_feature_views:
  - name: txn_od
    inputs: [txn, view_0]
    features:
      - { name: amount_over_f0, type: float64, expr: "view_0.v0_f0 > 0.0 ? txn.amount / view_0.v0_f0 : 0.0" }
      - { name: foreign, type: bool, expr: "txn.country != 'DE'" }
      - { name: amount_minus_f1, type: float64, expr: "txn.amount - view_0.v0_f1" }
feature_services:
  - name: svc
    features: ["view_0:*", "txn_od:*"]
`

// BenchmarkOnDemandCompute is the on-demand work of one 1-entity request alone, after the
// store read: request fields checked and converted, three features computed (the same
// expressions as BenchmarkGetOnlineFeaturesOnDemand).
func BenchmarkOnDemandCompute(b *testing.B) {
	f, err := definitions.Parse("f.yaml", []byte(odInternalYAML))
	require.NoError(b, err)
	repo, err := definitions.NewRepo(f.Objects)
	require.NoError(b, err)
	d, err := NewDefinitions("p", 1, repo, nil)
	require.NoError(b, err)
	p, err := servicePlan(d, "svc", false)
	require.NoError(b, err)
	p.rows = 1
	ts := make([]time.Time, 1)
	res := &online.ReadResult{Rows: 1, Columns: []online.Column{
		{Values: []online.Value{online.Float64(4)}, Statuses: []online.Status{online.Present}, EventTS: ts},
		{Values: []online.Value{online.Float64(1.5)}, Statuses: []online.Status{online.Present}, EventTS: ts},
	}}
	reqCtx := map[string][]online.Value{"amount": {online.Float64(12.5)}, "country": {online.String("FR")}}
	b.ReportAllocs()
	for b.Loop() {
		cols, err := p.onDemand.requestColumns(reqCtx, 1, true)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.onDemand.compute(p, res, cols); err != nil {
			b.Fatal(err)
		}
	}
	require.Equal(b, 12.5/4, p.resultColumn(res, 2).Values[0].Float64())
	require.Equal(b, 11.0, p.resultColumn(res, 4).Values[0].Float64())
}
