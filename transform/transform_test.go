package transform

import (
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
)

const repoYAML = `entities:
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
      - { name: clicks, type: int32 }
request_sources:
  - name: txn
    fields: [{ name: amount, type: float64 }, { name: country, type: string }]
on_demand_feature_views:
  - name: od
    inputs: [txn, user_stats]
    features:
      - { name: ratio, type: float64, expr: "txn.amount / user_stats.spend_30d" }
      - { name: safe, type: float64, expr: "has(user_stats.spend_30d) ? user_stats.spend_30d : -1.0" }
      - { name: foreign, type: bool, expr: "txn.country != 'DE'" }
      - { name: clicks2, type: int32, expr: "user_stats.clicks * 2" }
      - { name: amount32, type: float32, expr: "txn.amount" }
`

func compile(t *testing.T) *View {
	t.Helper()
	f, err := definitions.Parse("f.yaml", []byte(repoYAML))
	require.NoError(t, err)
	repo, err := definitions.NewRepo(f.Objects)
	require.NoError(t, err)
	s, err := Compile(repo)
	require.NoError(t, err)
	v := s.View("od")
	require.NotNil(t, v)
	return v
}

func TestEvalNullRule(t *testing.T) {
	v := compile(t)
	var names []string
	for _, n := range v.Needs() {
		names = append(names, n.Input+"."+n.Field.Name)
	}
	require.Equal(t, []string{"txn.amount", "txn.country", "user_stats.spend_30d", "user_stats.clicks"}, names)
	cols := [][]online.Value{
		{online.Float64(10), online.Float64(10), online.Null(), online.Float64(1)},
		{online.String("DE"), online.Null(), online.String("FR"), online.String("")},
		{online.Float64(4), online.Null(), online.Float64(0), online.Float64(math.Inf(-1))},
		{online.Int32(3), online.Null(), online.Int32(math.MaxInt32), online.Int32(-1)},
	}
	out := make([][]online.Value, 5)
	require.NoError(t, v.Eval(4, cols, []int{0, 1, 2, 3, 4}, out))
	// ratio: a null input gives null; float division by zero is +Inf (IEEE), not an error.
	require.Equal(t, []online.Value{online.Float64(2.5), online.Null(), online.Null(), online.Float64(math.Copysign(0, -1))}, out[0])
	// has() tests presence: never null.
	require.Equal(t, []online.Value{online.Float64(4), online.Float64(-1), online.Float64(0), online.Float64(math.Inf(-1))}, out[1])
	require.Equal(t, []online.Value{online.Bool(false), online.Null(), online.Bool(true), online.Bool(true)}, out[2])
	// int32 result out of range is null.
	require.Equal(t, []online.Value{online.Int32(6), online.Null(), online.Null(), online.Int32(-2)}, out[3])
	require.Equal(t, []online.Value{online.Float32(10), online.Float32(10), online.Null(), online.Float32(1)}, out[4])
}

func BenchmarkEval1Row(b *testing.B) {
	f, _ := definitions.Parse("f.yaml", []byte(repoYAML))
	repo, _ := definitions.NewRepo(f.Objects)
	s, _ := Compile(repo)
	v := s.View("od")
	cols := [][]online.Value{{online.Float64(10)}, {online.String("DE")}, {online.Float64(4)}, {online.Int32(3)}}
	out := make([][]online.Value, 3)
	b.ReportAllocs()
	for b.Loop() {
		_ = v.Eval(1, cols, []int{0, 1, 2}, out)
	}
}

// One View serves concurrent requests: each evaluation has its own input objects.
func TestEvalConcurrent(t *testing.T) {
	v := compile(t)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				amount := float64(g*1000 + i)
				cols := [][]online.Value{{online.Float64(amount)}, {online.String("DE")}, {online.Float64(2)}, {online.Int32(1)}}
				out := make([][]online.Value, 1)
				if err := v.Eval(1, cols, []int{0}, out); err != nil || out[0][0].Float64() != amount/2 {
					errs <- fmt.Sprintf("goroutine %d call %d: %v %v", g, i, out[0][0].Float64(), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
