package serving_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
	"github.com/quiverfs/quiver/serving/auth"
)

// Issue 22 item 9: one body limit for both transports, the deadline enforced while decoding
// and evaluating, and a bound on the large bodies decoded at once.

// limitsEnv is the on-demand fixture (txn_od:foreign reads the request field country, a
// string as large as a test needs) with options for 1 MiB requests.
func limitsEnv(t *testing.T) serving.Options {
	t.Helper()
	e := newEnv(t, redisSrv.Addr)
	e.repo = parseRepo(t, defsYAML+onDemandYAML)
	apply(t, e.reg, e.project, e.repo)
	opts := e.options(t)
	opts.MaxRecvMsgBytes = 1 << 20
	return opts
}

// bigRequest asks for txn_od:foreign of user 1 with a country of n bytes.
func bigRequest(n int) *pb.GetOnlineFeaturesRequest {
	return &pb.GetOnlineFeaturesRequest{
		Kind:           &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: []string{"txn_od:foreign"}}},
		Entities:       users(1),
		RequestContext: map[string]*pb.RepeatedValue{"amount": col(f64(1)), "country": col(str(strings.Repeat("x", n)))},
	}
}

func bigJSON(n int) string {
	return `{"features": {"val": ["txn_od:foreign"]}, "entities": {"user_id": {"val": [{"int64_val": 1}]}},
		"request_context": {"amount": {"val": [{"double_val": 1}]}, "country": {"val": [{"string_val": "` + strings.Repeat("x", n) + `"}]}}}`
}

// onlyReader hides a body's length from net/http, so the request goes chunked.
type onlyReader struct{ io.Reader }

func httpCall(t *testing.T, url string, body io.Reader) (int, string) {
	t.Helper()
	r, err := (&http.Client{Timeout: 30 * time.Second}).Post(url, "application/json", body)
	require.NoError(t, err)
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return r.StatusCode, string(b)
}

func TestRequestBodyLimitSameOnBothTransports(t *testing.T) {
	opts := limitsEnv(t)
	c, base := serveBoth(t, opts)
	url := base + "/v1/get-online-features"

	// Within the limit: both answer.
	_, err := c.GetOnlineFeatures(context.Background(), bigRequest(900<<10))
	require.NoError(t, err)
	code, body := httpCall(t, url, strings.NewReader(bigJSON(900<<10)))
	require.Equal(t, http.StatusOK, code, body)

	// Over it (1.5 MiB against 1 MiB): refused alike, RESOURCE_EXHAUSTED naming the limit.
	_, err = c.GetOnlineFeatures(context.Background(), bigRequest(1536<<10))
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "1048576")
	for name, b := range map[string]io.Reader{
		"with a length": strings.NewReader(bigJSON(1536 << 10)),
		"chunked":       onlyReader{strings.NewReader(bigJSON(1536 << 10))},
	} {
		code, body := httpCall(t, url, b)
		require.Equal(t, http.StatusRequestEntityTooLarge, code, "%s: %.300s", name, body)
		var e struct{ Code, Message string }
		require.NoError(t, json.Unmarshal([]byte(body), &e), body)
		require.Equal(t, "RESOURCE_EXHAUSTED", e.Code, name)
		require.Contains(t, e.Message, "limit of 1048576 bytes", name)
		require.Contains(t, e.Message, "--max-recv-bytes", name)
	}
}

// TestDeadlineWhileDecodingAndEvaluating: a request whose deadline passes while its
// on-demand features are evaluated answers DEADLINE_EXCEEDED (504), never OK (200); so does an
// HTTP body that does not arrive before the deadline.
func TestDeadlineWhileDecodingAndEvaluating(t *testing.T) {
	opts := limitsEnv(t)
	opts.RequestTimeout = 300 * time.Millisecond
	c, base := serveBoth(t, opts, func(s *serving.Server) {
		// An evaluation that takes until the deadline.
		serving.SetTestHooks(s, nil, func(ctx context.Context) { <-ctx.Done() })
	})

	_, err := c.GetOnlineFeatures(context.Background(), bigRequest(10))
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	code, body := httpCall(t, base+"/v1/get-online-features", strings.NewReader(bigJSON(10)))
	require.Equal(t, http.StatusGatewayTimeout, code, body)
	require.Contains(t, body, "DEADLINE_EXCEEDED")

	// A client that sends its headers and then stalls in the body.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /v1/get-online-features HTTP/1.1\r\nHost: quiver\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"features\": ")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the server answers once the deadline passed, without the rest of the body")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusGatewayTimeout, resp.StatusCode, string(b))
	require.Contains(t, string(b), "DEADLINE_EXCEEDED")
}

// gauge reads a gauge of reg.
func gauge(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// admission holds every admitted large request until released, counting how many (and how
// many bytes) are held at once.
type admission struct {
	release         chan struct{}
	now, bytes      atomic.Int64
	peak, peakBytes atomic.Int64
	mu              sync.Mutex
	once            sync.Once
}

func newAdmission() *admission { return &admission{release: make(chan struct{})} }

// open releases every held request, and lets later ones through.
func (a *admission) open() { a.once.Do(func() { close(a.release) }) }

func (a *admission) admitted(n int64) {
	a.mu.Lock()
	a.peak.Store(max(a.peak.Load(), a.now.Add(1)))
	a.peakBytes.Store(max(a.peakBytes.Load(), a.bytes.Add(n)))
	a.mu.Unlock()
	select {
	case <-a.release:
	case <-time.After(time.Minute): // a server without the gate admits what should wait: fail, not hang
	}
	a.now.Add(-1)
	a.bytes.Add(-n)
}

// TestConcurrentLargeBodiesBounded: six ~900 KiB requests at once, over HTTP and gRPC, with
// room for 4 MiB of large requests (4 × the 1 MiB body limit, the default): four are
// admitted to decoding and serving, two wait, and all six are answered once room is made.
func TestConcurrentLargeBodiesBounded(t *testing.T) {
	opts := limitsEnv(t)
	opts.RequestTimeout = time.Minute // waiting is what this test is about
	reg := opts.Registerer.(*prometheus.Registry)
	adm := newAdmission()
	var srv *serving.Server
	c, base := serveBoth(t, opts, func(s *serving.Server) { srv = s; serving.SetTestHooks(s, adm.admitted, nil) })
	t.Cleanup(adm.open)

	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Go(func() {
			if i%2 == 0 {
				_, err := c.GetOnlineFeatures(context.Background(), bigRequest(900<<10))
				errs <- err
				return
			}
			r, err := http.Post(base+"/v1/get-online-features", "application/json", strings.NewReader(bigJSON(900<<10)))
			if err == nil {
				if r.StatusCode != http.StatusOK {
					b, _ := io.ReadAll(r.Body)
					err = status.Errorf(codes.Unknown, "HTTP %d: %.300s", r.StatusCode, b)
				}
				r.Body.Close()
			}
			errs <- err
		})
	}
	require.Eventually(t, func() bool {
		return adm.now.Load()+int64(gauge(t, reg, "quiver_serving_large_requests_waiting")) == 6
	}, 30*time.Second, 10*time.Millisecond, "every request reaches the gate")
	require.EqualValues(t, 4, adm.now.Load(), "four ~900 KiB bodies fit in 4 MiB")
	require.EqualValues(t, 2, gauge(t, reg, "quiver_serving_large_requests_waiting"))
	require.LessOrEqual(t, gauge(t, reg, "quiver_serving_large_request_bytes_in_flight"), float64(4<<20))
	adm.open()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 4, adm.peak.Load(), "never more than four at once")
	require.LessOrEqual(t, adm.peakBytes.Load(), int64(4<<20))
	require.Zero(t, gauge(t, reg, "quiver_serving_large_request_bytes_in_flight"))
	require.Zero(t, serving.PendingRequestSizes(srv), "every recorded size was taken")
}

// TestLargeRequestRefusedByAuthLeavesNothing: a large gRPC request refused by authentication
// takes no room and leaves nothing behind (its wire size, recorded when it was decoded, is
// taken before authentication runs).
func TestLargeRequestRefusedByAuthLeavesNothing(t *testing.T) {
	opts := limitsEnv(t)
	guard, err := auth.New(context.Background(), &auth.Config{APITokens: []auth.APIToken{{Name: "a", SHA256: sha256Of("t-a")}}},
		auth.Options{Project: opts.Project, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	opts.Auth = guard
	adm := newAdmission()
	t.Cleanup(adm.open)
	var srv *serving.Server
	c, _ := serveBoth(t, opts, func(s *serving.Server) { srv = s; serving.SetTestHooks(s, adm.admitted, nil) })
	for range 3 {
		_, err := c.GetOnlineFeatures(context.Background(), bigRequest(300<<10))
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	}
	require.Zero(t, adm.peak.Load(), "refused before the gate")
	require.Zero(t, serving.PendingRequestSizes(srv))
	// A granted one passes the gate.
	adm.open()
	_, err = c.GetOnlineFeatures(tokenCtx("a"), bigRequest(300<<10))
	require.NoError(t, err)
	require.EqualValues(t, 1, adm.peak.Load())
	require.Zero(t, serving.PendingRequestSizes(srv))
}

// TestLargeBodyRefusedWhenGateStaysFull: a large request that cannot be admitted before its
// deadline is refused with RESOURCE_EXHAUSTED saying why, and is never decoded.
func TestLargeBodyRefusedWhenGateStaysFull(t *testing.T) {
	opts := limitsEnv(t)
	opts.RequestTimeout = 500 * time.Millisecond
	opts.MaxInflightRequestBytes = 1 << 20 // one large request at a time
	adm := newAdmission()
	c, base := serveBoth(t, opts, func(s *serving.Server) { serving.SetTestHooks(s, adm.admitted, nil) })
	t.Cleanup(adm.open)
	held := make(chan struct{})
	go func() {
		defer close(held)
		r, err := http.Post(base+"/v1/get-online-features", "application/json", strings.NewReader(bigJSON(600<<10)))
		if err == nil {
			r.Body.Close()
		}
	}()
	require.Eventually(t, func() bool { return adm.now.Load() == 1 }, 30*time.Second, 10*time.Millisecond)
	// No deadline of its own: the server's (500ms) applies while it waits.
	_, err := c.GetOnlineFeatures(context.Background(), bigRequest(600<<10), grpc.WaitForReady(true))
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "--max-inflight-request-bytes")
	require.EqualValues(t, 1, adm.peak.Load(), "the refused request was never admitted")
	// A chunked body (no Content-Length) counts by what it turns out to be: a small one does
	// not wait, a large one does (and is refused alike, 429).
	code, body := httpCall(t, base+"/v1/get-online-features", onlyReader{strings.NewReader(bigJSON(100))})
	require.Equal(t, http.StatusOK, code, body)
	code, body = httpCall(t, base+"/v1/get-online-features", onlyReader{strings.NewReader(bigJSON(600 << 10))})
	require.Equal(t, http.StatusTooManyRequests, code, "%.300s", body)
	require.Contains(t, body, "RESOURCE_EXHAUSTED")
	require.EqualValues(t, 1, adm.peak.Load())
	adm.open()
	<-held
}
