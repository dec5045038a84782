package serving_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
	"github.com/quiverfs/quiver/serving/auth"
)

// authzYAML adds, to the fixture, on-demand views (txn_od reads user_stats; req_only reads
// request fields only), a service holding on-demand features and a model fed by it.
func authzYAML() string {
	return strings.Replace(strings.Replace(defsYAML, "feature_services:\n", `feature_services:
  - name: mixed
    features: [txn_od:ratio, user_stats:clicks_7d, txn_od:foreign, "merchant_stats:risk", txn_od:spend_or_zero]
`, 1), "models:\n", `models:
  - name: mixed_model
    feature_service: mixed
    runtime: onnx
    path: mixed.onnx
`, 1) + onDemandYAML
}

// serveBoth serves opts over TCP, gRPC and HTTP/JSON each on a loopback port, until the end
// of the test; it returns a gRPC client and the HTTP base URL.
func serveBoth(t *testing.T, opts serving.Options, setup ...func(*serving.Server)) (pb.FeatureServingClient, string) {
	t.Helper()
	grpcLis := mustListen(t)
	opts.Addr = grpcLis.Addr().String()
	httpLis := mustListen(t)
	opts.HTTPAddr = httpLis.Addr().String()
	require.NoError(t, httpLis.Close())
	srv, err := serving.NewServer(context.Background(), opts)
	require.NoError(t, err)
	for _, f := range setup {
		f(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := serveAsync(srv, ctx, grpcLis)
	t.Cleanup(func() {
		cancel()
		require.NoError(t, hangGuard(t, done))
	})
	conn, err := grpc.NewClient(opts.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", opts.HTTPAddr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	return pb.NewFeatureServingClient(conn), "http://" + opts.HTTPAddr
}

func tokenCtx(name string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer t-"+name)
}

// TestOnDemandInputsNeedGrants is issue 22 item 2: a grant on an on-demand view alone must not
// read the stored views its expressions read (amount=1 would return exactly 1/spend_30d).
// Asked for by reference, every stored view an on-demand view reads needs its own grant, on
// gRPC and HTTP/JSON alike, and the denial names that view. A feature service grant covers what
// the service declares, its on-demand features' inputs included, and a model grant covers its
// service (Predict).
func TestOnDemandInputsNeedGrants(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	e.repo = parseRepo(t, authzYAML())
	apply(t, e.reg, e.project, e.repo)
	grants := []auth.Grant{
		{Principals: []string{"token:od"}, FeatureViews: []string{"txn_od"}},
		{Principals: []string{"token:od-in"}, FeatureViews: []string{"txn_od", "user_stats"}},
		{Principals: []string{"token:req"}, FeatureViews: []string{"req_only"}},
		{Principals: []string{"token:svc"}, FeatureServices: []string{"mixed"}},
		{Principals: []string{"token:mdl"}, Models: []string{"mixed_model"}},
	}
	cfg := &auth.Config{Policy: &auth.Policy{Grants: grants}}
	for _, g := range grants {
		name := strings.TrimPrefix(g.Principals[0], auth.PrefixToken)
		cfg.APITokens = append(cfg.APITokens, auth.APIToken{Name: name, SHA256: sha256Of("t-" + name)})
	}
	guard, err := auth.New(context.Background(), cfg, auth.Options{Project: e.project, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	opts := e.options(t)
	opts.Auth = guard
	opts.Models = sumOpener(&sumModel{})
	c, httpBase := serveBoth(t, opts)

	refs := func(refs ...string) *pb.GetOnlineFeaturesRequest {
		return &pb.GetOnlineFeaturesRequest{
			Kind:           &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: refs}},
			Entities:       users(1),
			RequestContext: map[string]*pb.RepeatedValue{"amount": col(f64(1)), "country": col(str("NL"))},
		}
	}
	// The on-demand view alone: denied, naming the stored view it reads.
	_, err = c.GetOnlineFeatures(tokenCtx("od"), refs("txn_od:ratio"))
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), `token:od is not granted feature view "user_stats"`)
	require.Contains(t, status.Convert(err).Message(), `on-demand view "txn_od"`)
	// foreign reads only a request field, but the view's stored inputs are read for any of its
	// features (one evaluation per view): still denied.
	_, err = c.GetOnlineFeatures(tokenCtx("od"), refs("txn_od:foreign"))
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)

	// Granted the view and what it reads: the exact answer.
	resp, err := c.GetOnlineFeatures(tokenCtx("od-in"), refs("txn_od:ratio"))
	require.NoError(t, err)
	require.Equal(t, 1/99.5, cell(resp.Features[0], 0).GetDoubleVal())
	// An on-demand view of request fields only needs no other grant.
	resp, err = c.GetOnlineFeatures(tokenCtx("req"), &pb.GetOnlineFeaturesRequest{
		Kind:           &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: []string{"req_only:double_amount"}}},
		Entities:       users(1),
		RequestContext: map[string]*pb.RepeatedValue{"amount": col(f64(2))},
	})
	require.NoError(t, err)
	require.Equal(t, 4.0, cell(resp.Features[0], 0).GetDoubleVal())

	// A feature service grant covers what the service declares, on-demand inputs included.
	ents := users(1)
	ents["merchant_id"] = col(str("m1"))
	rc := map[string]*pb.RepeatedValue{"amount": col(f64(1)), "country": col(str("NL"))}
	resp, err = c.GetOnlineFeatures(tokenCtx("svc"), &pb.GetOnlineFeaturesRequest{
		Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "mixed"}, Entities: ents, RequestContext: rc})
	require.NoError(t, err)
	require.Equal(t, 1/99.5, cell(columnByName(t, resp.Features, "ratio"), 0).GetDoubleVal())
	// ...and a model grant its service.
	pred, err := c.Predict(tokenCtx("mdl"), &pb.PredictRequest{Model: &pb.ModelRef{Name: "mixed_model"}, Entities: ents, RequestContext: rc})
	require.NoError(t, err)
	require.EqualValues(t, 1, pred.Rows)
	// The on-demand view grant does not reach the service or the model.
	_, err = c.GetOnlineFeatures(tokenCtx("od"), &pb.GetOnlineFeaturesRequest{
		Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "mixed"}, Entities: ents, RequestContext: rc})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)

	// HTTP/JSON: 403 naming the input view; 200 with both grants.
	post := func(token, body string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, httpBase+"/v1/get-online-features", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer t-"+token)
		r, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		require.NoError(t, err)
		defer r.Body.Close()
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		return r.StatusCode, string(b)
	}
	body := `{"features": {"val": ["txn_od:ratio"]}, "entities": {"user_id": {"val": [{"int64_val": 1}]}},
		"request_context": {"amount": {"val": [{"double_val": 1}]}, "country": {"val": [{"string_val": "NL"}]}}}`
	code, got := post("od", body)
	require.Equal(t, http.StatusForbidden, code, got)
	require.Contains(t, got, `PERMISSION_DENIED`)
	require.Contains(t, got, `feature view \"user_stats\"`)
	require.NotContains(t, got, "0.01005", "no value of the input leaks")
	code, got = post("od-in", body)
	require.Equal(t, http.StatusOK, code, got)

	// The plain JSON form: the same policy.
	postPlain := func(token, body string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, httpBase+"/v1/online-features", strings.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer t-"+token)
		}
		r, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		require.NoError(t, err)
		defer r.Body.Close()
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		return r.StatusCode, string(b)
	}
	plain := `{"features": ["txn_od:ratio"], "entities": {"user_id": [1]}, "request_context": {"amount": [1.0], "country": ["NL"]}}`
	code, got = postPlain("", plain)
	require.Equal(t, http.StatusUnauthorized, code, got)
	code, got = postPlain("od", plain)
	require.Equal(t, http.StatusForbidden, code, got)
	require.Contains(t, got, `feature view \"user_stats\"`)
	require.NotContains(t, got, "0.01005", "no value of the input leaks")
	code, got = postPlain("svc", plain)
	require.Equal(t, http.StatusForbidden, code, got)
	require.Contains(t, got, `feature view \"txn_od\"`)
	code, got = postPlain("od-in", plain)
	require.Equal(t, http.StatusOK, code, got)
	require.Contains(t, got, `"ratio":[0.01005`)
	code, got = postPlain("svc", `{"feature_service": "mixed", "entities": {"user_id": [1], "merchant_id": ["m1"]}, "request_context": {"amount": [1], "country": ["NL"]}}`)
	require.Equal(t, http.StatusOK, code, got)
}
