package pitjoin

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
)

// TestAggregationMaxNaNAboveInfinity: NaN orders above every number in min and max
// (docs/aggregations.md), +Inf included, whatever order the events come in. Found against the
// real Trino (issue 30): merging two partials whose minimums were numbers took math.Max of
// their maximums, and math.Max(NaN, +Inf) is +Inf, so a window of NaN, 1 and +Inf had max +Inf.
func TestAggregationMaxNaNAboveInfinity(t *testing.T) {
	ctx := context.Background()
	nan, inf := math.NaN(), math.Inf(1)
	evSchema := arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: EventTSColumn, Type: tsType},
		{Name: CreatedTSColumn, Type: tsType, Nullable: true}, {Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil)
	entSchema := arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: DefaultEventTimestampColumn, Type: tsType}}, nil)
	hour := time.Hour.Microseconds()
	for _, order := range [][]float64{
		{nan, 1, inf}, {inf, nan, 1}, {1, inf, nan}, {nan, inf}, {inf, nan}, {1, nan, -inf, inf}, {inf, 1, 2, nan, 3},
	} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			events := table{schema: evSchema}
			for i, x := range order {
				events.rows = append(events.rows, []any{int64(1), int64(i) * hour, nil, x})
			}
			wantMin := math.Inf(1)
			for _, x := range order {
				if !math.IsNaN(x) {
					wantMin = math.Min(wantMin, x)
				}
			}
			ents := table{schema: entSchema, rows: [][]any{{int64(1), int64(len(order)) * hour}}}
			view := View{Name: "v", JoinKeys: []string{"user_id"}, Aggregations: []Aggregation{
				{Name: "x_max", Column: "x", Function: AggMax, Window: 24 * time.Hour},
				{Name: "x_min", Column: "x", Function: AggMin, Window: 24 * time.Hour},
			}, Open: events.open(memory.DefaultAllocator, []int{1})} // one event per batch: partials merge
			res, err := Join(ctx, ents.reader(memory.DefaultAllocator, nil), []View{view}, Options{TempDir: t.TempDir()})
			require.NoError(t, err)
			defer res.Release()
			got := collect(t, res)
			require.Len(t, got.rows, 1)
			require.True(t, math.IsNaN(got.rows[0][2].(float64)), "max %v", got.rows[0][2])
			require.Equal(t, wantMin, got.rows[0][3])
		})
	}
}
