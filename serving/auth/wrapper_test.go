package auth_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving/auth"
)

// countingServer answers every call and counts them: it stands for the real server behind
// the wrapper, which is what an in-process HTTP gateway calls.
type countingServer struct {
	pb.UnimplementedFeatureServingServer
	calls int
}

func (s *countingServer) GetOnlineFeatures(context.Context, *pb.GetOnlineFeaturesRequest) (*pb.GetOnlineFeaturesResponse, error) {
	s.calls++
	return &pb.GetOnlineFeaturesResponse{Rows: 1}, nil
}

func (s *countingServer) Predict(context.Context, *pb.PredictRequest) (*pb.PredictResponse, error) {
	s.calls++
	return &pb.PredictResponse{Rows: 1}, nil
}

func TestFeatureServingWrapper(t *testing.T) {
	f := newGuard(t, &auth.Config{
		APITokens: []auth.APIToken{{Name: "nightly", SHA256: sum("n")}},
		Policy:    &auth.Policy{Grants: []auth.Grant{{Principals: []string{"token:nightly"}, FeatureServices: []string{"churn_v1"}}}},
	})
	inner := &countingServer{}
	srv := f.guard.FeatureServing(inner)
	granted := auth.WithPrincipal(context.Background(), &auth.Principal{Token: "nightly"})
	svc := func(name string) *pb.GetOnlineFeaturesRequest {
		return &pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: name}}
	}

	resp, err := srv.GetOnlineFeatures(granted, svc("churn_v1"))
	require.NoError(t, err)
	require.EqualValues(t, 1, resp.Rows)

	_, err = srv.GetOnlineFeatures(granted, svc("fraud_v1"))
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), `token:nightly is not granted feature service "fraud_v1"`)
	_, err = srv.Predict(granted, &pb.PredictRequest{Model: &pb.ModelRef{Name: "churn"}})
	require.Equal(t, codes.PermissionDenied, status.Code(err))

	_, err = srv.GetOnlineFeatures(context.Background(), svc("churn_v1"))
	require.Equal(t, codes.Unauthenticated, status.Code(err), "no principal in the context")
	require.Equal(t, 1, inner.calls, "refused calls never reach the server")
	require.Equal(t, 3.0, denials(t, f.reg))
}
