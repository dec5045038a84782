package serving

import (
	"context"
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
		if err := p.onDemand.compute(context.Background(), p, res, cols); err != nil {
			b.Fatal(err)
		}
	}
	require.Equal(b, 12.5/4, p.resultColumn(res, 2).Values[0].Float64())
	require.Equal(b, 11.0, p.resultColumn(res, 4).Values[0].Float64())
}

// expiringCtx's deadline passes after its Err has been asked `left` times: a deadline that
// passes in the middle of an evaluation, without a clock.
type expiringCtx struct {
	context.Context
	left, asked int
}

func (c *expiringCtx) Err() error {
	c.asked++
	if c.asked > c.left {
		return context.DeadlineExceeded
	}
	return nil
}

// TestComputeStopsAtTheDeadline is issue 22 item 9: on-demand evaluation of a large batch
// checks the request's deadline as it goes (every evalChunkRows rows) and stops with
// DeadlineExceeded instead of finishing past it.
func TestComputeStopsAtTheDeadline(t *testing.T) {
	f, err := definitions.Parse("f.yaml", []byte(odInternalYAML))
	require.NoError(t, err)
	repo, err := definitions.NewRepo(f.Objects)
	require.NoError(t, err)
	d, err := NewDefinitions("p", 1, repo, nil)
	require.NoError(t, err)
	p, err := servicePlan(d, "svc", false)
	require.NoError(t, err)
	const rows = 1000
	p.rows = rows
	col := func(v online.Value) online.Column {
		c := online.Column{Values: make([]online.Value, rows), Statuses: make([]online.Status, rows), EventTS: make([]time.Time, rows)}
		for r := range rows {
			c.Values[r], c.Statuses[r] = v, online.Present
		}
		return c
	}
	res := &online.ReadResult{Rows: rows, Columns: []online.Column{col(online.Float64(4)), col(online.Float64(1.5))}}
	reqCtx := map[string][]online.Value{"amount": col(online.Float64(12.5)).Values, "country": col(online.String("FR")).Values}
	cols, err := p.onDemand.requestColumns(reqCtx, rows, true)
	require.NoError(t, err)

	ctx := &expiringCtx{Context: context.Background(), left: 3}
	err = p.onDemand.compute(ctx, p, res, cols)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, 4, ctx.asked, "checked chunk by chunk, stopped at the first check past the deadline")

	// With time to spare, the same batch is computed in full.
	require.NoError(t, p.onDemand.compute(context.Background(), p, res, cols))
	require.Equal(t, 12.5/4, p.resultColumn(res, 2).Values[rows-1].Float64())
}
