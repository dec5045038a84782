package serving_test

import (
	"context"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/serving"
	"github.com/quiverfs/quiver/serving/model"
)

func TestGetOnlineFeaturesService(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	_, conn := startBufconn(t, e.options(t))
	c := pb.NewFeatureServingClient(conn)

	resp, err := c.GetOnlineFeatures(context.Background(), &pb.GetOnlineFeaturesRequest{
		Kind:     &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "profile"},
		Entities: users(1, 2, 3, 4),
	})
	require.NoError(t, err)
	require.EqualValues(t, 4, resp.Rows)
	names := make([]string, len(resp.Features))
	for i, f := range resp.Features {
		names[i] = f.Name
	}
	require.Equal(t, []string{"clicks_7d", "spend_30d", "is_vip", "embedding", "country", "last_seen"}, names)

	P, N, NF, OLD := pb.FieldStatus_PRESENT, pb.FieldStatus_NULL_VALUE, pb.FieldStatus_NOT_FOUND, pb.FieldStatus_OUTSIDE_MAX_AGE
	clicks := columnByName(t, resp.Features, "clicks_7d")
	require.Equal(t, pb.ValueType_INT64, clicks.Type)
	require.Equal(t, "user_stats", clicks.View)
	require.Equal(t, []pb.FieldStatus{P, OLD, P, NF}, clicks.Statuses)
	require.EqualValues(t, 42, cell(clicks, 0).GetInt64Val())
	require.EqualValues(t, 7, cell(clicks, 1).GetInt64Val(), "an expired value is still returned")
	require.Equal(t, []int64{42, 7, 3, 0}, clicks.Values.GetInt64Values().GetVal(), "an int64 column is one packed vector")
	require.Equal(t, []int64{e.now.Add(-time.Hour).UnixMicro(), e.now.Add(-8 * 24 * time.Hour).UnixMicro(), e.now.Add(-time.Minute).UnixMicro(), 0},
		clicks.EventTimestampsMicros)

	spend := columnByName(t, resp.Features, "spend_30d")
	require.Equal(t, []pb.FieldStatus{P, OLD, N, NF}, spend.Statuses)
	require.Equal(t, 99.5, cell(spend, 0).GetDoubleVal())

	require.True(t, cell(columnByName(t, resp.Features, "is_vip"), 0).GetBoolVal())
	emb := columnByName(t, resp.Features, "embedding")
	require.Equal(t, pb.ValueType_FLOAT32_LIST, emb.Type)
	require.Equal(t, []float32{0.25, -1}, cell(emb, 0).GetFloatListVal().GetVal())
	require.NotNil(t, cell(emb, 1).GetFloatListVal(), "an empty array is not null")
	require.Empty(t, cell(emb, 1).GetFloatListVal().GetVal())
	require.Equal(t, "NL", cell(columnByName(t, resp.Features, "country"), 0).GetStringVal())
	require.Equal(t, e.now.Add(-2*time.Hour), cell(columnByName(t, resp.Features, "last_seen"), 0).GetTimestampVal().AsTime())
}

func TestGetOnlineFeaturesRefs(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	_, conn := startBufconn(t, e.options(t))
	c := pb.NewFeatureServingClient(conn)

	resp, err := c.GetOnlineFeatures(context.Background(), &pb.GetOnlineFeaturesRequest{
		Kind: &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: []string{"merchant_stats:orders", "user_stats:clicks_7d", "merchant_stats:risk"}}},
		Entities: map[string]*pb.RepeatedValue{
			"user_id":     col(i32(1), i64(4)), // int32 is accepted for an int64 key
			"merchant_id": col(str("m1"), str("m2")),
		},
		FullFeatureNames: true,
	})
	require.NoError(t, err)
	require.Len(t, resp.Features, 3)
	require.Equal(t, "merchant_stats__orders", resp.Features[0].Name)
	require.Equal(t, "user_stats__clicks_7d", resp.Features[1].Name)
	require.Equal(t, "merchant_stats__risk", resp.Features[2].Name)
	require.EqualValues(t, 12, cell(resp.Features[0], 0).GetInt32Val())
	require.Equal(t, pb.FieldStatus_NOT_FOUND, resp.Features[0].Statuses[1])
	require.EqualValues(t, 42, cell(resp.Features[1], 0).GetInt64Val())
	require.Equal(t, pb.FieldStatus_NOT_FOUND, resp.Features[1].Statuses[1])
	require.Equal(t, float32(0.75), cell(resp.Features[2], 0).GetFloatVal())
	require.Len(t, resp.Entities, 2)
}

func TestErrors(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	opts := e.options(t)
	opts.MaxEntityRows = 3
	_, conn := startBufconn(t, opts)
	c := pb.NewFeatureServingClient(conn)
	svc := func(s string) *pb.GetOnlineFeaturesRequest_FeatureService {
		return &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: s}
	}
	refs := func(r ...string) *pb.GetOnlineFeaturesRequest_Features {
		return &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: r}}
	}
	for _, tc := range []struct {
		name string
		req  *pb.GetOnlineFeaturesRequest
		code codes.Code
		msg  []string
	}{
		{"unknown service", &pb.GetOnlineFeaturesRequest{Kind: svc("churn_v2"), Entities: users(1)}, codes.InvalidArgument,
			[]string{`unknown feature service "churn_v2"`, `did you mean "churn_v1"?`}},
		{"unknown view", &pb.GetOnlineFeaturesRequest{Kind: refs("user_stat:clicks_7d"), Entities: users(1)}, codes.InvalidArgument,
			[]string{`unknown feature view "user_stat"`, `did you mean "user_stats"?`}},
		{"unknown feature", &pb.GetOnlineFeaturesRequest{Kind: refs("user_stats:clicks_7"), Entities: users(1)}, codes.InvalidArgument,
			[]string{`unknown feature "clicks_7"`, `did you mean "clicks_7d"?`}},
		{"bad ref", &pb.GetOnlineFeaturesRequest{Kind: refs("clicks_7d"), Entities: users(1)}, codes.InvalidArgument,
			[]string{"view:feature"}},
		{"nothing requested", &pb.GetOnlineFeaturesRequest{Entities: users(1)}, codes.InvalidArgument, []string{"no features requested"}},
		{"offline view", &pb.GetOnlineFeaturesRequest{Kind: refs("offline_only:label"), Entities: users(1)}, codes.FailedPrecondition,
			[]string{`"offline_only" is not online`}},
		{"name collision", &pb.GetOnlineFeaturesRequest{Kind: refs("user_stats:clicks_7d", "user_stats:clicks_7d"), Entities: users(1)}, codes.InvalidArgument,
			[]string{"requested twice"}},
		{"no entities", &pb.GetOnlineFeaturesRequest{Kind: svc("profile")}, codes.InvalidArgument, []string{"no entities"}},
		{"unknown join key", &pb.GetOnlineFeaturesRequest{Kind: svc("profile"), Entities: map[string]*pb.RepeatedValue{"userid": col(i64(1))}},
			codes.InvalidArgument, []string{`unknown join key "userid"`, `did you mean "user_id"?`}},
		{"missing join key", &pb.GetOnlineFeaturesRequest{Kind: svc("churn_v1"), Entities: users(1)}, codes.InvalidArgument,
			[]string{`needs join key "merchant_id"`}},
		{"ragged columns", &pb.GetOnlineFeaturesRequest{Kind: svc("churn_v1"), Entities: map[string]*pb.RepeatedValue{"user_id": col(i64(1), i64(2)), "merchant_id": col(str("m1"))}},
			codes.InvalidArgument, []string{"one value per row"}},
		{"wrong key type", &pb.GetOnlineFeaturesRequest{Kind: svc("profile"), Entities: map[string]*pb.RepeatedValue{"user_id": col(str("1"))}},
			codes.InvalidArgument, []string{`join key "user_id" row 0: want int64, got string`}},
		{"null key", &pb.GetOnlineFeaturesRequest{Kind: svc("profile"), Entities: map[string]*pb.RepeatedValue{"user_id": col(&pb.Value{})}},
			codes.InvalidArgument, []string{"is null"}},
		{"empty columns", &pb.GetOnlineFeaturesRequest{Kind: svc("profile"), Entities: map[string]*pb.RepeatedValue{"user_id": col()}},
			codes.InvalidArgument, []string{"empty"}},
		{"batch too large", &pb.GetOnlineFeaturesRequest{Kind: svc("profile"), Entities: users(1, 2, 3, 4)}, codes.ResourceExhausted,
			[]string{"4 entity rows", "limit is 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.GetOnlineFeatures(context.Background(), tc.req)
			st := status.Convert(err)
			require.Equal(t, tc.code, st.Code(), st.Message())
			for _, m := range tc.msg {
				require.Contains(t, st.Message(), m)
			}
		})
	}

	t.Run("unknown model", func(t *testing.T) {
		_, err := c.Predict(context.Background(), &pb.PredictRequest{Model: &pb.ModelRef{Name: "chrn"}, Entities: users(1)})
		st := status.Convert(err)
		require.Equal(t, codes.NotFound, st.Code(), st.Message())
		require.Contains(t, st.Message(), `unknown model "chrn"`)
		require.Contains(t, st.Message(), `did you mean "churn"?`)
	})
	t.Run("unknown model version", func(t *testing.T) {
		_, err := c.Predict(context.Background(), &pb.PredictRequest{Model: &pb.ModelRef{Name: "churn", Selector: &pb.ModelRef_Version{Version: "7"}}, Entities: users(1)})
		require.Equal(t, codes.NotFound, status.Code(err))
	})
	t.Run("no model", func(t *testing.T) {
		_, err := c.Predict(context.Background(), &pb.PredictRequest{Entities: users(1)})
		require.Equal(t, codes.InvalidArgument, status.Code(err))
	})
	t.Run("message too large", func(t *testing.T) {
		big := &pb.RepeatedValue{}
		for range 1 << 18 {
			big.Val = append(big.Val, str(strings.Repeat("x", 16)))
		}
		_, err := c.GetOnlineFeatures(context.Background(), &pb.GetOnlineFeaturesRequest{Kind: svc("profile"), Entities: map[string]*pb.RepeatedValue{"user_id": big}})
		require.Equal(t, codes.ResourceExhausted, status.Code(err))
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second)) // already past
		defer cancel()
		_, err := c.GetOnlineFeatures(ctx, &pb.GetOnlineFeaturesRequest{Kind: svc("profile"), Entities: users(1)})
		require.Equal(t, codes.DeadlineExceeded, status.Code(err))
	})
}

func TestHealthReflectionMetrics(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	opts := e.options(t)
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	_, conn := startBufconn(t, opts)
	ctx := context.Background()

	for _, svc := range []string{"", serving.ServiceName} {
		h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.Status)
	}

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}))
	r, err := stream.Recv()
	require.NoError(t, err)
	var services []string
	for _, s := range r.GetListServicesResponse().GetService() {
		services = append(services, s.Name)
	}
	require.Contains(t, services, serving.ServiceName)
	require.Contains(t, services, "grpc.health.v1.Health")
	require.NoError(t, stream.CloseSend())

	c := pb.NewFeatureServingClient(conn)
	_, err = c.GetOnlineFeatures(ctx, &pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "profile"}, Entities: users(1)})
	require.NoError(t, err)
	_, err = c.GetOnlineFeatures(ctx, &pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "nope"}, Entities: users(1)})
	require.Error(t, err)

	got := gather(t, reg)
	require.Equal(t, 1.0, got[`quiver_serving_requests_total{code="OK",method="GetOnlineFeatures",service="profile"}`])
	require.Equal(t, 1.0, got[`quiver_serving_requests_total{code="InvalidArgument",method="GetOnlineFeatures",service="unknown"}`])
	require.Equal(t, 1.0, got[`quiver_serving_errors_total{code="InvalidArgument",method="GetOnlineFeatures"}`])
	require.Equal(t, 1.0, got[`quiver_serving_store_read_duration_seconds_count`])
	require.Equal(t, 1.0, got[`quiver_serving_request_duration_seconds_count{method="GetOnlineFeatures",service="profile"}`])
	require.Equal(t, 1.0, got[`quiver_serving_definitions_revision`])
}

// gather flattens a registry's counters, gauges and histogram counts to "name{labels}" → value.
func gather(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				n := mf.GetName() + "_count"
				if len(labels) > 0 {
					n += "{" + strings.Join(labels, ",") + "}"
				}
				out[n] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestRefreshDefinitions(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	srv, conn := startBufconn(t, e.options(t))
	c := pb.NewFeatureServingClient(conn)
	ctx := context.Background()
	req := &pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "vip"}, Entities: users(1)}
	_, err := c.GetOnlineFeatures(ctx, req)
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	rev := srv.Definitions().Revision

	repo := parseRepo(t, strings.Replace(defsYAML, "models:", "  - name: vip\n    features: [user_stats:is_vip]\nmodels:", 1))
	newRev := apply(t, e.reg, e.project, repo)
	require.Greater(t, newRev, rev)
	require.Eventually(t, func() bool { return srv.Definitions().Revision == newRev }, 10*time.Second, 20*time.Millisecond)
	resp, err := c.GetOnlineFeatures(ctx, req)
	require.NoError(t, err)
	require.True(t, cell(resp.Features[0], 0).GetBoolVal())
}

// sumModel is a stand-in model runtime: its one output per row is the sum of the row's
// inputs, NaN counted as 1000 so missing values show. When release is set, Predict closes
// started (once) and waits for release to be closed.
type sumModel struct {
	started, release chan struct{}
	closed           chan struct{}
}

func (m *sumModel) Predict(ctx context.Context, in *model.Batch) ([]model.Tensor, error) {
	if m.release != nil {
		close(m.started)
		<-m.release
	}
	out := model.Tensor{Name: "sum", Shape: []int64{int64(in.Rows), 1}, Float32: make([]float32, in.Rows)}
	for r := range in.Rows {
		for _, x := range in.Data[r*len(in.Features) : (r+1)*len(in.Features)] {
			if math.IsNaN(float64(x)) {
				x = 1000
			}
			out.Float32[r] += x
		}
	}
	return []model.Tensor{out}, nil
}

func (m *sumModel) Close() error {
	if m.closed != nil {
		close(m.closed)
	}
	return nil
}

func sumOpener(m *sumModel) serving.ModelOpener {
	return serving.ModelOpenerFunc(func(ctx context.Context, v model.Version) (model.Model, error) { return m, nil })
}

func TestPredictFeedsServiceFeatures(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	opts := e.options(t)
	closed := make(chan struct{})
	opts.Models = sumOpener(&sumModel{closed: closed})
	_, conn := startBufconn(t, opts)
	c := pb.NewFeatureServingClient(conn)

	resp, err := c.Predict(context.Background(), &pb.PredictRequest{
		Model: &pb.ModelRef{Name: "churn"},
		Entities: map[string]*pb.RepeatedValue{
			"user_id":     col(i64(1), i64(2), i64(4)),
			"merchant_id": col(str("m1"), str("m1"), str("m2")),
		},
		RequestContext:  map[string]*pb.RepeatedValue{"spend_30d": col(f64(0.5), f64(0.5), f64(0.5))},
		IncludeFeatures: true,
	})
	require.NoError(t, err)
	require.Equal(t, "churn", resp.ModelName)
	require.Equal(t, "1", resp.ModelVersion)
	require.Equal(t, "churn_v1", resp.FeatureService)
	require.Len(t, resp.Outputs, 1)
	got := resp.Outputs[0].Values
	// Row 1: 42 + 0.5 (request context) + 1 (vip) + 0.75 + 12.
	require.InDelta(t, 42+0.5+1+0.75+12, got[0].GetFloatVal(), 1e-4)
	// Row 2: user_stats is OUTSIDE_MAX_AGE: clicks and vip are missing (NaN); spend comes from
	// the request.
	require.InDelta(t, 1000+0.5+1000+0.75+12, got[1].GetFloatVal(), 1e-3)
	// Row 3: nothing stored.
	require.InDelta(t, 1000+0.5+1000+1000+1000, got[2].GetFloatVal(), 1e-3)

	require.Len(t, resp.Features, len(churnFeatures))
	for i, f := range resp.Features {
		require.Equal(t, churnFeatures[i], f.Name)
	}
	require.Equal(t, pb.FieldStatus_PRESENT, resp.Features[1].Statuses[2], "request-time values are PRESENT")
	require.Equal(t, pb.FieldStatus_OUTSIDE_MAX_AGE, resp.Features[0].Statuses[1])

	_, err = c.Predict(context.Background(), &pb.PredictRequest{
		Model: &pb.ModelRef{Name: "churn"}, Entities: map[string]*pb.RepeatedValue{"user_id": col(i64(1)), "merchant_id": col(str("m1"))},
		RequestContext: map[string]*pb.RepeatedValue{"spend_3d": col(f64(1))},
	})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code())
	require.Contains(t, st.Message(), `did you mean "spend_30d"?`)
}

func TestGracefulShutdownDrains(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	opts := e.options(t)
	closed := make(chan struct{})
	m := &sumModel{started: make(chan struct{}), release: make(chan struct{}), closed: closed}
	opts.Models = sumOpener(m)
	srv, err := serving.NewServer(context.Background(), opts)
	require.NoError(t, err)
	lisCtx, stop := context.WithCancel(context.Background())
	_, conn, done := serveTCP(t, lisCtx, srv)
	c := pb.NewFeatureServingClient(conn)

	result := make(chan error, 1)
	go func() {
		_, err := c.Predict(context.Background(), &pb.PredictRequest{Model: &pb.ModelRef{Name: "churn"},
			Entities: map[string]*pb.RepeatedValue{"user_id": col(i64(1)), "merchant_id": col(str("m1"))}})
		result <- err
	}()
	<-m.started // the call is in flight
	stop()
	// The server is shutting down (health says NOT_SERVING, or new calls are refused) while
	// the call is still in the model.
	health := healthpb.NewHealthClient(conn)
	require.Eventually(t, func() bool {
		resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err != nil || resp.Status == healthpb.HealthCheckResponse_NOT_SERVING
	}, 10*time.Second, 5*time.Millisecond)
	select {
	case err := <-result:
		t.Fatalf("the in-flight call ended before the model answered: %v", err)
	default:
	}
	close(m.release)
	require.NoError(t, <-result, "an in-flight call finishes during shutdown")
	require.NoError(t, <-done)
	select {
	case <-closed:
	default:
		t.Fatal("models are closed on shutdown")
	}
}

// TestModelReplacedOnApply: applying a new definition of a model serves the new version and
// closes the old one.
func TestModelReplacedOnApply(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	opts := e.options(t)
	var opened []string
	closed := map[string]chan struct{}{}
	opts.Models = serving.ModelOpenerFunc(func(ctx context.Context, v model.Version) (model.Model, error) {
		opened = append(opened, v.Version+":"+v.Path)
		closed[v.Version] = make(chan struct{})
		return &sumModel{closed: closed[v.Version]}, nil
	})
	srv, conn := startBufconn(t, opts)
	c := pb.NewFeatureServingClient(conn)
	req := &pb.PredictRequest{Model: &pb.ModelRef{Name: "churn"}, Entities: map[string]*pb.RepeatedValue{"user_id": col(i64(1)), "merchant_id": col(str("m1"))}}
	resp, err := c.Predict(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, "1", resp.ModelVersion)

	rev := apply(t, e.reg, e.project, parseRepo(t, strings.Replace(defsYAML, "path: churn.onnx", "path: churn2.onnx", 1)))
	require.Eventually(t, func() bool { return srv.Definitions().Revision == rev }, 10*time.Second, 10*time.Millisecond)
	select {
	case <-closed["1"]:
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced model version was not closed")
	}
	resp, err = c.Predict(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, "2", resp.ModelVersion)
	require.Equal(t, []string{"1:churn.onnx", "2:churn2.onnx"}, opened)
}

// TestRegistryResolver serves registered model versions and aliases.
func TestRegistryResolver(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	ctx := context.Background()
	opts := e.options(t)
	var opened []string
	opts.Models = serving.ModelOpenerFunc(func(ctx context.Context, v model.Version) (model.Model, error) {
		opened = append(opened, v.Version+":"+v.Path)
		return &sumModel{}, nil
	})
	clock := &manualClock{now: time.Now()}
	opts.ModelResolver = &serving.RegistryResolver{Models: e.reg, Project: e.project, TTL: time.Minute, Now: clock.Now}
	_, conn := startBufconn(t, opts)
	c := pb.NewFeatureServingClient(conn)
	predict := func(ref *pb.ModelRef) (*pb.PredictResponse, error) {
		return c.Predict(ctx, &pb.PredictRequest{Model: ref, Entities: map[string]*pb.RepeatedValue{"user_id": col(i64(1)), "merchant_id": col(str("m1"))}})
	}

	// No registered version yet: the definition answers.
	resp, err := predict(&pb.ModelRef{Name: "churn"})
	require.NoError(t, err)
	require.Equal(t, "1", resp.ModelVersion)

	for _, uri := range []string{"/models/churn/v1.onnx", "/models/churn/v2.onnx"} {
		_, err := e.reg.CreateModelVersion(ctx, registry.ModelVersion{Project: e.project, Name: "churn", ArtifactURI: uri, ArtifactHash: "sha256:x", Runtime: "onnx", FeatureService: "churn_v1"})
		require.NoError(t, err)
	}
	_, err = e.reg.SetModelAlias(ctx, registry.AliasUpdate{Project: e.project, Name: "churn", Alias: "production", Version: 1, By: "test"})
	require.NoError(t, err)
	resp, err = predict(&pb.ModelRef{Name: "churn"})
	require.NoError(t, err)
	require.Equal(t, "1", resp.ModelVersion, "within the TTL the cached resolution answers")
	clock.Advance(time.Minute) // past the resolver's TTL

	resp, err = predict(&pb.ModelRef{Name: "churn"})
	require.NoError(t, err)
	require.Equal(t, "2", resp.ModelVersion, "the latest version")
	require.Equal(t, "churn_v1", resp.FeatureService)
	resp, err = predict(&pb.ModelRef{Name: "churn", Selector: &pb.ModelRef_Alias{Alias: "production"}})
	require.NoError(t, err)
	require.Equal(t, "1", resp.ModelVersion)
	resp, err = predict(&pb.ModelRef{Name: "churn", Selector: &pb.ModelRef_Version{Version: "2"}})
	require.NoError(t, err)
	require.Equal(t, "2", resp.ModelVersion)
	require.Contains(t, opened, "2:/models/churn/v2.onnx")
	require.Contains(t, opened, "1:/models/churn/v1.onnx")

	// Moving the alias is seen by the running server, without a restart.
	_, err = e.reg.SetModelAlias(ctx, registry.AliasUpdate{Project: e.project, Name: "churn", Alias: "production", Version: 2, By: "test"})
	require.NoError(t, err)
	clock.Advance(time.Minute)
	resp, err = predict(&pb.ModelRef{Name: "churn", Selector: &pb.ModelRef_Alias{Alias: "production"}})
	require.NoError(t, err)
	require.Equal(t, "2", resp.ModelVersion)

	_, err = predict(&pb.ModelRef{Name: "churn", Selector: &pb.ModelRef_Alias{Alias: "staging"}})
	st := status.Convert(err)
	require.Equal(t, codes.NotFound, st.Code())
	require.Contains(t, st.Message(), `no alias "staging" (its aliases: production)`)
	_, err = predict(&pb.ModelRef{Name: "churn", Selector: &pb.ModelRef_Version{Version: "9"}})
	require.Equal(t, codes.NotFound, status.Code(err))
}

// manualClock is a clock that moves only when told to.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
