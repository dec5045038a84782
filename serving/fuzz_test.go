package serving_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
)

// FuzzRequests feeds arbitrary wire bytes to both handlers, past gRPC and its panic recovery:
// they must never panic and must answer with a definite status, never UNKNOWN or INTERNAL.
func FuzzRequests(f *testing.F) {
	seeds := []proto.Message{
		&pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "churn_v1"},
			Entities: map[string]*pb.RepeatedValue{"user_id": col(i64(1), i64(2)), "merchant_id": col(str("m1"), str("m2"))}},
		&pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: []string{"user_stats:*", "merchant_stats:risk"}}},
			Entities: map[string]*pb.RepeatedValue{"user_id": col(i32(1)), "merchant_id": col(str("m1"))}, FullFeatureNames: true},
		&pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "profile"},
			Entities: map[string]*pb.RepeatedValue{"user_id": col(&pb.Value{Kind: &pb.Value_TimestampVal{TimestampVal: &timestamppb.Timestamp{Seconds: -1 << 62}}})}},
		&pb.PredictRequest{Model: &pb.ModelRef{Name: "churn"}, Entities: map[string]*pb.RepeatedValue{"user_id": col(i64(1)), "merchant_id": col(str("m1"))},
			RequestContext: map[string]*pb.RepeatedValue{"spend_30d": col(f64(1))}, IncludeFeatures: true},
	}
	for i, m := range seeds {
		b, err := proto.Marshal(m)
		require.NoError(f, err)
		f.Add(b, i%2 == 1)
	}
	e := newEnv(f, redisSrv.Addr)
	opts := e.options(f)
	opts.Models = sumOpener(&sumModel{})
	opts.MaxEntityRows = 64
	srv, err := serving.NewServer(context.Background(), opts)
	require.NoError(f, err)

	f.Fuzz(func(t *testing.T, data []byte, predict bool) {
		var err error
		if predict {
			req := &pb.PredictRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err = srv.Predict(context.Background(), req)
		} else {
			req := &pb.GetOnlineFeaturesRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err = srv.GetOnlineFeatures(context.Background(), req)
		}
		if err != nil {
			st, ok := status.FromError(err)
			require.True(t, ok, "not a status: %v", err)
			require.NotContains(t, []codes.Code{codes.Unknown, codes.Internal}, st.Code(), "%v", err)
		}
	})
}
