package serving_test

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
	"github.com/quiverfs/quiver/serving/model"
)

// Seen item 2 of issue 12: a stored null read past the view's TTL came back as 0 with
// OUTSIDE_MAX_AGE (doubleValues [0]), so a client could not tell it from a stored 0. Every
// response must tell null from any value, in every status.

// writeNullsAndZeros adds, beside populate's rows:
//   - user 5: 8 days old (past user_stats' 7d TTL), every feature null;
//   - user 6: fresh, every number 0 (stored zeros, not nulls);
//   - user 7: 8 days old, every number 0.
func writeNullsAndZeros(t *testing.T, e *env) {
	t.Helper()
	us := e.view(t, "user_stats")
	key := func(id int64) online.EntityKey {
		k, err := us.Key(online.Int64(id))
		require.NoError(t, err)
		return k
	}
	nulls := []online.Value{online.Null(), online.Null(), online.Null(), online.Null(), online.Null(), online.Null()}
	zeros := []online.Value{online.Int64(0), online.Float64(0), online.Bool(false), online.Float32s([]float32{}), online.String(""), online.Timestamp(time.Unix(0, 0))}
	require.NoError(t, e.store.Write(context.Background(), us, []online.Row{
		{Key: key(5), EventTS: e.now.Add(-8 * 24 * time.Hour), Values: nulls},
		{Key: key(6), EventTS: e.now.Add(-time.Minute), Values: zeros},
		{Key: key(7), EventTS: e.now.Add(-8 * 24 * time.Hour), Values: zeros},
	}))
}

func TestNullsInEveryStatus(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	writeNullsAndZeros(t, e)
	srv, conn := startBufconn(t, e.options(t))
	c := pb.NewFeatureServingClient(conn)

	// Rows: 1 PRESENT, 2 OUTSIDE_MAX_AGE (last_seen null), 3 NULL_VALUE (fresh nulls),
	// 4 NOT_FOUND, 5 OUTSIDE_MAX_AGE nulls, 6 PRESENT zeros, 7 OUTSIDE_MAX_AGE zeros.
	resp, err := c.GetOnlineFeatures(context.Background(), &pb.GetOnlineFeaturesRequest{
		Kind:     &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "profile"},
		Entities: users(1, 2, 3, 4, 5, 6, 7),
	})
	require.NoError(t, err)
	P, N, NF, OLD := pb.FieldStatus_PRESENT, pb.FieldStatus_NULL_VALUE, pb.FieldStatus_NOT_FOUND, pb.FieldStatus_OUTSIDE_MAX_AGE

	spend := columnByName(t, resp.Features, "spend_30d")
	require.Equal(t, []pb.FieldStatus{P, OLD, N, NF, OLD, P, OLD}, spend.Statuses)
	require.Equal(t, []bool{false, false, true, true, true, false, false}, spend.Nulls,
		"a stale stored null (row 4) is null, a stale or fresh stored 0 (rows 5, 6) is not")
	require.Equal(t, 0.0, spend.Values.GetDoubleValues().Val[4], "the null's slot holds a placeholder")

	require.Equal(t, []bool{false, false, false, true, true, false, false}, columnByName(t, resp.Features, "clicks_7d").Nulls, "user 3's clicks are 3")
	for _, name := range []string{"is_vip", "embedding", "country"} {
		fc := columnByName(t, resp.Features, name)
		require.Equal(t, []bool{false, false, true, true, true, false, false}, fc.Nulls, name)
	}
	lastSeen := columnByName(t, resp.Features, "last_seen")
	require.Equal(t, []bool{false, true, true, true, true, false, false}, lastSeen.Nulls, "user 2's stale last_seen is null")

	// A client reading the wire back into domain columns gets the same nulls.
	back := serving.FeaturesFromProto(resp)
	require.Equal(t, 7, back.Rows)
	require.Equal(t, "spend_30d", back.Columns[1].Name)
	require.Equal(t, online.OutsideMaxAge, back.Columns[1].Statuses[4])
	require.True(t, back.Columns[1].Values[4].IsNull(), "stale null")
	require.Equal(t, online.Float64(0), back.Columns[1].Values[6], "stale zero")
	require.Equal(t, online.Float64(99.5), back.Columns[1].Values[0])
	require.Equal(t, e.now.Add(-8*24*time.Hour), back.Columns[1].EventTS[4])

	// A column without nulls has no mask (and no NULL_VALUE or NOT_FOUND status).
	noNulls, err := c.GetOnlineFeatures(context.Background(), &pb.GetOnlineFeaturesRequest{
		Kind:     &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: []string{"user_stats:spend_30d"}}},
		Entities: users(1, 6, 7),
	})
	require.NoError(t, err)
	require.Empty(t, noNulls.Features[0].Nulls)
	require.Equal(t, []pb.FieldStatus{P, P, OLD}, noNulls.Features[0].Statuses)
	for r := range 3 {
		require.False(t, serving.IsNull(noNulls.Features[0], r))
	}

	// The same through the domain function every transport calls.
	f, err := srv.GetFeatures(context.Background(), serving.FeatureRequest{
		FeatureService: "profile",
		Entities:       map[string][]online.Value{"user_id": {online.Int64(5), online.Int32(6)}},
	})
	require.NoError(t, err)
	require.Equal(t, 2, f.Rows)
	require.Equal(t, "spend_30d", f.Columns[1].Name)
	require.True(t, f.Columns[1].Values[0].IsNull())
	require.Equal(t, online.OutsideMaxAge, f.Columns[1].Statuses[0])
	require.Equal(t, online.Float64(0), f.Columns[1].Values[1], "an int32 entity value widens to the int64 join key")

	// And for people: the table prints null, not 0.
	var out bytes.Buffer
	require.NoError(t, serving.WriteTable(&out, resp))
	var stale []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "4 ") {
			stale = append(stale, strings.Join(strings.Fields(line)[:4], " "))
		}
	}
	require.Contains(t, stale, "4 user_stats:spend_30d null OUTSIDE_MAX_AGE")
	require.Contains(t, stale, "4 user_stats:clicks_7d null OUTSIDE_MAX_AGE")

	// A response from a server without the mask still reads right from the statuses.
	old := &pb.FeatureColumn{Statuses: []pb.FieldStatus{P, N, NF, OLD}}
	require.Equal(t, []bool{false, true, true, false}, []bool{serving.IsNull(old, 0), serving.IsNull(old, 1), serving.IsNull(old, 2), serving.IsNull(old, 3)})
}

// TestPredictNulls: models get NaN for every null and every value they must not use — a
// stored null in any status, NOT_FOUND, OUTSIDE_MAX_AGE — and a stored 0 as 0. The features
// echoed with include_features carry the same null mask as GetOnlineFeatures.
func TestPredictNulls(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	writeNullsAndZeros(t, e)
	opts := e.options(t)
	rec := &recordingModel{}
	opts.Models = serving.ModelOpenerFunc(func(context.Context, model.Version) (model.Model, error) { return rec, nil })
	_, conn := startBufconn(t, opts)
	c := pb.NewFeatureServingClient(conn)

	resp, err := c.Predict(context.Background(), &pb.PredictRequest{
		Model: &pb.ModelRef{Name: "churn"},
		Entities: map[string]*pb.RepeatedValue{
			"user_id":     col(i64(3), i64(5), i64(6)),
			"merchant_id": col(str("m1"), str("m1"), str("m1")),
		},
		IncludeFeatures: true,
	})
	require.NoError(t, err)
	// churn_v1: clicks_7d, spend_30d, is_vip, risk, orders.
	nan := float32(math.NaN())
	want := [][]float32{
		{3, nan, nan, 0.75, 12}, // fresh row with nulls
		{nan, nan, nan, 0.75, 12},
		{0, 0, 0, 0.75, 12}, // stored zeros
	}
	require.Len(t, rec.last, 15)
	for r, row := range want {
		for i, x := range row {
			got := rec.last[r*5+i]
			if math.IsNaN(float64(x)) {
				require.True(t, math.IsNaN(float64(got)), "row %d feature %s: want NaN, got %v", r, churnFeatures[i], got)
			} else {
				require.Equal(t, x, got, "row %d feature %s", r, churnFeatures[i])
			}
		}
	}
	spend := columnByName(t, resp.Features, "spend_30d")
	require.Equal(t, []pb.FieldStatus{pb.FieldStatus_NULL_VALUE, pb.FieldStatus_OUTSIDE_MAX_AGE, pb.FieldStatus_PRESENT}, spend.Statuses)
	require.Equal(t, []bool{true, true, false}, spend.Nulls)
}

// recordingModel keeps the last batch it was fed and answers one 0 per row.
type recordingModel struct{ last []float32 }

func (m *recordingModel) Predict(_ context.Context, in *model.Batch) ([]model.Tensor, error) {
	m.last = append([]float32(nil), in.Data...)
	return []model.Tensor{{Name: "y", Shape: []int64{int64(in.Rows), 1}, Float32: make([]float32, in.Rows)}}, nil
}

func (m *recordingModel) Close() error { return nil }
