package serving_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/quiverfs/quiver/internal/testenv"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
)

// startHTTP runs srv (gRPC on a loopback port, HTTP/JSON on opts.HTTPAddr) until the end of
// the test and returns the HTTP base URL.
func startHTTP(t *testing.T, opts serving.Options) string {
	t.Helper()
	port := mustListen(t)
	opts.HTTPAddr = port.Addr().String()
	require.NoError(t, port.Close())
	srv, err := serving.NewServer(context.Background(), opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := serveAsync(srv, ctx, mustListen(t))
	t.Cleanup(func() {
		cancel()
		require.NoError(t, hangGuard(t, done))
	})
	scheme := "http"
	if opts.TLSCertFile != "" {
		scheme = "https"
	}
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", opts.HTTPAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	return scheme + "://" + opts.HTTPAddr
}

func post(t *testing.T, client *http.Client, url, body string) (int, map[string]any, []byte) {
	t.Helper()
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return resp.StatusCode, m, b
}

// TestHTTPJSON: the same API over HTTP/JSON on a real TCP port: the answer is the gRPC
// answer (snake_case names, the null mask included), errors carry the HTTP status of their
// gRPC code and name the problem.
func TestHTTPJSON(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	writeNullsAndZeros(t, e)
	base := startHTTP(t, e.options(t))
	client := &http.Client{Timeout: 10 * time.Second}

	code, m, raw := post(t, client, base+"/v1/get-online-features", `{
		"feature_service": "churn_v1",
		"entities": {"user_id": {"val": [{"int64_val": 1}, {"int64_val": 5}]}, "merchant_id": {"val": [{"string_val": "m1"}, {"string_val": "m2"}]}}
	}`)
	require.Equal(t, http.StatusOK, code, string(raw))
	require.EqualValues(t, 2, m["rows"])
	var resp pb.GetOnlineFeaturesResponse
	require.NoError(t, protojson.Unmarshal(raw, &resp))
	spend := columnByName(t, resp.Features, "spend_30d")
	require.Equal(t, []pb.FieldStatus{pb.FieldStatus_PRESENT, pb.FieldStatus_OUTSIDE_MAX_AGE}, spend.Statuses)
	require.Equal(t, []bool{false, true}, spend.Nulls, "a stale null is null over HTTP too")
	require.Equal(t, 99.5, spend.Values.GetDoubleValues().Val[0])
	require.Contains(t, string(raw), `"event_timestamps_micros"`, "field names are the .proto's snake_case")
	require.Contains(t, string(raw), `"nulls"`)

	// camelCase input is accepted too; a reference list works.
	code, m, raw = post(t, client, base+"/v1/get-online-features", `{
		"features": {"val": ["merchant_stats:risk"]}, "fullFeatureNames": true,
		"entities": {"merchant_id": {"val": [{"stringVal": "m1"}]}}
	}`)
	require.Equal(t, http.StatusOK, code, string(raw))
	require.Equal(t, "merchant_stats__risk", m["features"].([]any)[0].(map[string]any)["name"])

	errs := []struct {
		name, path, body string
		status           int
		code, msg        string
	}{
		{"unknown service", "/v1/get-online-features", `{"feature_service": "churn_v2", "entities": {"user_id": {"val": [{"int64_val": 1}]}}}`,
			http.StatusBadRequest, "INVALID_ARGUMENT", `did you mean "churn_v1"?`},
		{"wrong join key type", "/v1/get-online-features", `{"feature_service": "profile", "entities": {"user_id": {"val": [{"string_val": "1"}]}}}`,
			http.StatusBadRequest, "INVALID_ARGUMENT", `join key "user_id" row 0: want int64, got string`},
		{"not JSON", "/v1/get-online-features", `{"feature_service": `,
			http.StatusBadRequest, "INVALID_ARGUMENT", ""},
		{"unknown field", "/v1/get-online-features", `{"feature_servic": "profile"}`,
			http.StatusBadRequest, "INVALID_ARGUMENT", "feature_servic"},
		{"too many rows", "/v1/get-online-features", `{"feature_service": "profile", "entities": {"user_id": {"val": [` + strings.Repeat(`{"int64_val": 1},`, 1000) + `{"int64_val": 1}]}}}`,
			http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "the limit is 1000"},
		{"view not online", "/v1/get-online-features", `{"features": {"val": ["offline_only:label"]}, "entities": {"user_id": {"val": [{"int64_val": 1}]}}}`,
			http.StatusPreconditionFailed, "FAILED_PRECONDITION", "is not online"},
		{"unknown model", "/v1/predict", `{"model": {"name": "chrun"}, "entities": {"user_id": {"val": [{"int64_val": 1}]}}}`,
			http.StatusNotFound, "NOT_FOUND", "chrun"},
		{"body too large", "/v1/get-online-features", `{"feature_service": "` + strings.Repeat("x", 5<<20) + `"}`,
			http.StatusRequestEntityTooLarge, "RESOURCE_EXHAUSTED", "larger than the limit of 4194304 bytes (--max-recv-bytes)"},
		{"no such endpoint", "/v1/get-features", `{}`,
			http.StatusNotFound, "NOT_FOUND", "POST /v1/get-online-features"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			code, m, raw := post(t, client, base+tc.path, tc.body)
			require.Equal(t, tc.status, code, string(raw))
			require.Equal(t, tc.code, m["code"], string(raw))
			require.Contains(t, m["message"], tc.msg)
		})
	}

	r, err := client.Get(base + "/v1/get-online-features")
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, r.StatusCode)

	r, err = client.Get(base + "/healthz")
	require.NoError(t, err)
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	require.Equal(t, http.StatusOK, r.StatusCode)
	require.JSONEq(t, `{"status":"SERVING"}`, string(b))
}

// TestHTTPJSONRedisDown: a store that cannot be reached is 503 over HTTP, as it is
// UNAVAILABLE over gRPC.
func TestHTTPJSONRedisDown(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	opts := e.options(t)
	r := testenv.StartRedis(t)
	opts.Store = openRedis(t, r.Addr)
	r.Kill()
	base := startHTTP(t, opts)
	code, m, raw := post(t, &http.Client{Timeout: 10 * time.Second}, base+"/v1/get-online-features",
		`{"feature_service": "profile", "entities": {"user_id": {"val": [{"int64_val": 1}]}}}`)
	require.Equal(t, http.StatusServiceUnavailable, code, string(raw))
	require.Equal(t, "UNAVAILABLE", m["code"])
}

// TestHTTPJSONPredictAndTLS: Predict over HTTPS with the server's certificate.
func TestHTTPJSONPredictAndTLS(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	opts := e.options(t)
	opts.Models = sumOpener(&sumModel{})
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	opts.TLSCertFile, opts.TLSKeyFile = certFile, keyFile
	base := startHTTP(t, opts)
	require.True(t, strings.HasPrefix(base, "https://"))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	code, m, raw := post(t, client, base+"/v1/predict", `{
		"model": {"name": "churn"},
		"entities": {"user_id": {"val": [{"int64_val": 1}]}, "merchant_id": {"val": [{"string_val": "m1"}]}},
		"request_context": {"spend_30d": {"val": [{"double_val": 0.5}]}}
	}`)
	require.Equal(t, http.StatusOK, code, string(raw))
	require.Equal(t, "churn", m["model_name"])
	out := m["outputs"].([]any)[0].(map[string]any)["values"].([]any)[0].(map[string]any)
	require.InDelta(t, 42+0.5+1+0.75+12, out["float_val"], 1e-4)

	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/healthz")
	if err == nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err, "a client that does not trust the certificate is refused")
}

// TestHTTPUnknownPathListsEveryEndpoint is issue 22 item 22: the 404 for an unknown path lists
// every endpoint the server routes (POST /v1/push-features was missing), one per method of the
// gRPC service plus health; each one listed is routed, and docs/serving.md lists each.
func TestHTTPUnknownPathListsEveryEndpoint(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	base := startHTTP(t, e.options(t))
	client := &http.Client{Timeout: 10 * time.Second}
	code, m, raw := post(t, client, base+"/v1/nope", `{}`)
	require.Equal(t, http.StatusNotFound, code, string(raw))
	msg := m["message"].(string)
	_, list, ok := strings.Cut(msg, "endpoints: ")
	require.True(t, ok, msg)
	endpoints := strings.Split(list, ", ")
	require.Contains(t, endpoints, "POST /v1/push-features")
	require.Contains(t, endpoints, "GET /healthz")
	var posts int
	docs, err := os.ReadFile(filepath.Join("..", "docs", "serving.md"))
	require.NoError(t, err)
	for _, ep := range endpoints {
		method, path, ok := strings.Cut(ep, " ")
		require.True(t, ok, ep)
		require.Contains(t, string(docs), "| `"+ep+"` |", "docs/serving.md's endpoint table lists %s", ep)
		req, err := http.NewRequest(method, base+path, strings.NewReader(`{}`))
		require.NoError(t, err)
		r, err := client.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		require.NotContains(t, string(b), "no such endpoint", "%s is routed", ep)
		if method == http.MethodPost && path != "/v1/online-features" { // the plain JSON form of GetOnlineFeatures
			posts++
		}
	}
	require.Contains(t, endpoints, "POST /v1/online-features")
	require.Equal(t, len(pb.FeatureServing_ServiceDesc.Methods), posts, "one typed POST endpoint per FeatureServing method: %v", endpoints)
}
