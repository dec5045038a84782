package serving_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
)

// serveTCP serves srv on a loopback port until ctx is done; done yields Serve's result.
func serveTCP(t testing.TB, ctx context.Context, srv *serving.Server) (string, *grpc.ClientConn, <-chan error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return lis.Addr().String(), conn, done
}

// TestRunOverTCP runs the server as `quiver serve` does: Run on a TCP port with metrics.
func TestRunOverTCP(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	opts := e.options(t)
	port, err := testenv.FreePort()
	require.NoError(t, err)
	mport, err := testenv.FreePort()
	require.NoError(t, err)
	opts.Addr = net.JoinHostPort("127.0.0.1", itoa(port))
	opts.MetricsAddr = net.JoinHostPort("127.0.0.1", itoa(mport))
	srv, err := serving.NewServer(context.Background(), opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	conn, err := grpc.NewClient(opts.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	c := pb.NewFeatureServingClient(conn)
	var resp *pb.GetOnlineFeaturesResponse
	require.Eventually(t, func() bool {
		resp, err = c.GetOnlineFeatures(context.Background(), &pb.GetOnlineFeaturesRequest{
			Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "churn_v1"},
			Entities: map[string]*pb.RepeatedValue{
				"user_id":     col(i64(1)),
				"merchant_id": col(str("m1")),
			},
		})
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	require.EqualValues(t, 42, cell(resp.Features[0], 0).GetInt64Val())
	require.Equal(t, float32(0.75), cell(resp.Features[3], 0).GetFloatVal())

	r, err := http.Get("http://" + opts.MetricsAddr + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	r.Body.Close()
	require.Contains(t, string(body), `quiver_serving_requests_total{code="OK",method="GetOnlineFeatures",service="churn_v1"} 1`)
	require.Contains(t, string(body), "quiver_serving_store_read_duration_seconds_bucket")
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestRedisDownGivesUnavailable kills Redis while clients are calling: calls fail with
// UNAVAILABLE (never UNKNOWN or INTERNAL), and succeed again once Redis is back.
func TestRedisDownGivesUnavailable(t *testing.T) {
	rs := testenv.StartRedis(t)
	e := newEnv(t, rs.Addr)
	opts := e.options(t)
	opts.RequestTimeout = 2 * time.Second // a hang still shows as DeadlineExceeded; 500 ms was seen expiring under -race on a loaded machine
	_, conn := startBufconn(t, opts)
	c := pb.NewFeatureServingClient(conn)
	req := &pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "profile"}, Entities: users(1, 2)}

	var codesSeen sync.Map
	var calls atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				_, err := c.GetOnlineFeatures(context.Background(), req)
				codesSeen.Store(status.Code(err), true)
				calls.Add(1)
			}
		})
	}
	waitCalls := func(n int64) {
		start := calls.Load()
		require.Eventually(t, func() bool { return calls.Load() >= start+n }, 10*time.Second, time.Millisecond)
	}
	waitCalls(20)
	rs.Kill()
	waitCalls(20)
	_, err := c.GetOnlineFeatures(context.Background(), req)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "online store unavailable")

	rs.Start()
	// The restarted server persisted nothing; write again once the client reconnects.
	require.Eventually(t, func() bool { return e.tryPopulate(t) == nil }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		resp, err := c.GetOnlineFeatures(context.Background(), req)
		return err == nil && resp.Features[0].Statuses[0] == pb.FieldStatus_PRESENT
	}, 10*time.Second, 10*time.Millisecond, "the server recovers when Redis returns")
	waitCalls(20)
	stop()
	wg.Wait()
	codesSeen.Range(func(k, _ any) bool {
		code := k.(codes.Code)
		require.Contains(t, []codes.Code{codes.OK, codes.Unavailable, codes.DeadlineExceeded}, code)
		return true
	})
	_ = online.ErrUnavailable
}
