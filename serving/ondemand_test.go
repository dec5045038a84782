package serving_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
)

const onDemandYAML = `
request_sources:
  - name: txn
    fields: [{ name: amount, type: float64 }, { name: country, type: string }]
on_demand_feature_views:
  - name: txn_od
    inputs: [txn, user_stats]
    features:
      - { name: ratio, type: float64, expr: "txn.amount / user_stats.spend_30d" }
      - { name: foreign, type: bool, expr: "txn.country != 'DE'" }
      - { name: spend_or_zero, type: float64, expr: "has(user_stats.spend_30d) ? user_stats.spend_30d : 0.0" }
  - name: req_only
    inputs: [txn]
    features:
      - { name: double_amount, type: float64, expr: "txn.amount * 2.0" }
`

// onDemandEnv is the fixture with the on-demand views and two services applied on top.
func onDemandEnv(t *testing.T) pb.FeatureServingClient {
	e := newEnv(t, redisSrv.Addr)
	repo := parseRepo(t, strings.Replace(defsYAML, "feature_services:\n", `feature_services:
  - name: mixed
    features: [txn_od:ratio, user_stats:clicks_7d, txn_od:foreign, "merchant_stats:risk", txn_od:spend_or_zero]
  - name: request_only
    features: ["req_only:*"]
`, 1)+onDemandYAML)
	e.repo = repo
	apply(t, e.reg, e.project, repo)
	_, conn := startBufconn(t, e.options(t))
	return pb.NewFeatureServingClient(conn)
}

// A feature service mixing stored and on-demand features is served in its declared order; the
// stored feature an expression reads (spend_30d) is read though not requested; the null rule
// holds for every status (user 2 past the TTL, user 3 null, user 4 not found).
func TestOnDemandMixedServiceOrderAndNulls(t *testing.T) {
	client := onDemandEnv(t)
	ents := users(1, 2, 3, 4)
	ents["merchant_id"] = col(str("m1"), str("m1"), str("m2"), str("m1"))
	resp, err := client.GetOnlineFeatures(context.Background(), &pb.GetOnlineFeaturesRequest{
		Kind:     &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "mixed"},
		Entities: ents,
		RequestContext: map[string]*pb.RepeatedValue{
			"amount":  col(f64(199), f64(3), f64(4), f64(5)),
			"country": col(str("DE"), str("FR"), &pb.Value{}, str("")),
		},
	})
	require.NoError(t, err)
	var names, views []string
	for _, f := range resp.Features {
		names, views = append(names, f.Name), append(views, f.View)
	}
	require.Equal(t, []string{"ratio", "clicks_7d", "foreign", "risk", "spend_or_zero"}, names)
	require.Equal(t, []string{"txn_od", "user_stats", "txn_od", "merchant_stats", "txn_od"}, views)

	ratio := resp.Features[0]
	require.Equal(t, 199/99.5, cell(ratio, 0).GetDoubleVal())
	for r := 1; r < 4; r++ {
		require.True(t, serving.IsNull(ratio, r), "row %d", r)
		require.Equal(t, pb.FieldStatus_NULL_VALUE, ratio.Statuses[r])
	}
	require.Equal(t, pb.FieldStatus_PRESENT, ratio.Statuses[0])
	foreign := resp.Features[2]
	require.False(t, cell(foreign, 0).GetBoolVal())
	require.True(t, cell(foreign, 1).GetBoolVal())
	require.True(t, serving.IsNull(foreign, 2), "null request value")
	require.True(t, cell(foreign, 3).GetBoolVal())
	// has() keeps a value for every row.
	spend := resp.Features[4]
	for r, want := range []float64{99.5, 0, 0, 0} {
		require.False(t, serving.IsNull(spend, r))
		require.Equal(t, want, cell(spend, r).GetDoubleVal(), "row %d", r)
	}
	require.EqualValues(t, 42, cell(resp.Features[1], 0).GetInt64Val())
	require.Equal(t, float32(0.75), cell(resp.Features[3], 0).GetFloatVal())
}

func TestOnDemandRequestErrors(t *testing.T) {
	client := onDemandEnv(t)
	ents := users(1)
	ents["merchant_id"] = col(str("m1"))
	call := func(service string, rc map[string]*pb.RepeatedValue) error {
		_, err := client.GetOnlineFeatures(context.Background(), &pb.GetOnlineFeaturesRequest{
			Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: service}, Entities: ents, RequestContext: rc})
		return err
	}
	cases := []struct {
		name    string
		service string
		rc      map[string]*pb.RepeatedValue
		want    string
	}{
		{"missing field", "mixed", map[string]*pb.RepeatedValue{"amount": col(f64(1))}, `request_context is missing "country", field of request source "txn"`},
		{"no request context", "mixed", nil, `missing "amount"`},
		{"unknown field", "mixed", map[string]*pb.RepeatedValue{"amount": col(f64(1)), "country": col(str("x")), "amout": col(f64(1))}, `request_context "amout" is not read`},
		{"wrong type", "mixed", map[string]*pb.RepeatedValue{"amount": col(str("1")), "country": col(str("x"))}, `request_context "amount" row 0: want float64`},
		{"wrong length", "mixed", map[string]*pb.RepeatedValue{"amount": col(f64(1), f64(2)), "country": col(str("x"))}, `has 2 values for 1 entity rows`},
		{"context without on-demand features", "profile", map[string]*pb.RepeatedValue{"amount": col(f64(1))}, `not read by any requested feature`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := call(c.service, c.rc)
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			require.Contains(t, status.Convert(err).Message(), c.want)
		})
	}
}

// A service of on-demand features over request fields only reads nothing from the store.
func TestOnDemandRequestOnly(t *testing.T) {
	client := onDemandEnv(t)
	resp, err := client.GetOnlineFeatures(context.Background(), &pb.GetOnlineFeaturesRequest{
		Kind:           &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "request_only"},
		Entities:       users(1, 2),
		RequestContext: map[string]*pb.RepeatedValue{"amount": col(f64(1.25), i64(3))},
	})
	require.NoError(t, err)
	require.Len(t, resp.Features, 1)
	require.Equal(t, 2.5, cell(resp.Features[0], 0).GetDoubleVal())
	require.Equal(t, 6.0, cell(resp.Features[0], 1).GetDoubleVal(), "an int for a float field")
}
