package serving_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/quiverfs/quiver/internal/testenv"
	onlineredis "github.com/quiverfs/quiver/online/redis"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/registry/open"
	"github.com/quiverfs/quiver/serving/auth/authtest"
)

// BenchmarkTransports measures 1-entity GetOnlineFeatures (3 views × 10 features) over gRPC,
// over gRPC with JWT authentication and a policy (a second server), over HTTP/JSON in the
// typed form and in the plain form (/v1/online-features) against a real `quiver serve` process, pinned to its own CPU, and reports
// the server's CPU per call from /proc/PID/stat. scripts/bench-serving.sh runs it beside the
// redis-benchmark HMGET ceiling; see docs/BENCHMARKS.md.
//
//	QUIVER_BENCH_QUIVER   the quiver binary (required)
//	QUIVER_BENCH_REDIS    host:port of the Redis the server reads (default: the package's)
//	QUIVER_BENCH_CPU      the CPU list the server is pinned to with taskset (default: none)
//	QUIVER_BENCH_ONLY     "grpc": measure gRPC only, with flags any quiver serve takes (to
//	                      compare against a binary from before the HTTP/JSON API)
func BenchmarkTransports(b *testing.B) {
	bin := os.Getenv("QUIVER_BENCH_QUIVER")
	if bin == "" {
		b.Skip("QUIVER_BENCH_QUIVER is not set; run scripts/bench-serving.sh")
	}
	ctx := context.Background()
	dir, project, redisAddr := benchProcessRepo(b, strings.Replace(benchYAML(), "path: mlp30.onnx", "path: missing.onnx", 1))

	ports := make([]int, 3)
	for i := range ports {
		var err error
		ports[i], err = testenv.FreePort()
		require.NoError(b, err)
	}
	grpcAddr, httpAddr := "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1])
	jwtAddr := "127.0.0.1:" + strconv.Itoa(ports[2])
	grpcOnly := os.Getenv("QUIVER_BENCH_ONLY") == "grpc"
	start := func(repo, addr string, extra ...string) (*exec.Cmd, []*grpc.ClientConn) {
		return startServeProcess(b, bin, repo, addr, extra...)
	}
	var extra []string
	if !grpcOnly {
		extra = []string{"--http-addr", httpAddr, "--preload-models=false"}
	}
	cmd, conns := start(dir, grpcAddr, extra...)

	// A second server over the same registry and Redis with JWT authentication and a policy:
	// every call carries an ES256 token (verified once, then from the verified-token cache, as
	// a client that reuses its token gets) and is authorized against the policy.
	var jwtCmd *exec.Cmd
	var jwtConns []*grpc.ClientConn
	var token string
	if !grpcOnly {
		jdir := filepath.Join(dir, "jwt")
		require.NoError(b, os.MkdirAll(jdir, 0o755))
		signer := authtest.NewEC(b, "bench")
		require.NoError(b, os.WriteFile(filepath.Join(jdir, "jwks.json"), authtest.JWKS(b, signer), 0o644))
		require.NoError(b, os.WriteFile(filepath.Join(jdir, "quiver.yaml"), fmt.Appendf(nil,
			"project: %s\nregistry: sqlite://%s\nonline: redis://%s/0\nserving:\n  jwt: { jwks_file: jwks.json, issuer: https://idp.bench/, audience: quiver }\n  policy:\n    grants:\n      - { principals: ['subject:bench'], feature_services: [bench30] }\n",
			project, filepath.Join(dir, "registry.db"), redisAddr), 0o644))
		token = signer.Token(b, authtest.Claims{Issuer: "https://idp.bench/", Subject: "bench", Audience: []string{"quiver"},
			Expiry: time.Now().Add(time.Hour), IssuedAt: time.Now()})
		jwtCmd, jwtConns = start(jdir, jwtAddr, "--preload-models=false")
	}

	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	getOnline := func(ctx context.Context, conns []*grpc.ClientConn, g int, rng *rand.Rand) error {
		resp, err := pb.NewFeatureServingClient(conns[g%len(conns)]).GetOnlineFeatures(ctx, &pb.GetOnlineFeaturesRequest{
			Kind:     &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "bench30"},
			Entities: benchEntities(rng, 1),
		})
		if err == nil && (len(resp.Features) != benchViews*benchFeatures || resp.Features[0].Statuses[0] != pb.FieldStatus_PRESENT) {
			err = fmt.Errorf("unexpected response: %d features", len(resp.Features))
		}
		return err
	}
	grpcCall := func(g int, rng *rand.Rand) error { return getOnline(ctx, conns, g, rng) }
	jwtCtx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	jwtCall := func(g int, rng *rand.Rand) error { return getOnline(jwtCtx, jwtConns, g, rng) }
	url := "http://" + httpAddr + "/v1/get-online-features"
	httpCall := func(_ int, rng *rand.Rand) error {
		body := `{"feature_service":"bench30","entities":{"user_id":{"val":[{"int64_val":"` + strconv.Itoa(rng.IntN(benchUsers)) + `"}]}}}`
		resp, err := httpClient.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err == nil && (resp.StatusCode != http.StatusOK || !bytes.Contains(got, []byte(`"v2_f9"`)) || !bytes.Contains(got, []byte(`"PRESENT"`))) {
			err = fmt.Errorf("unexpected response %d: %.200s", resp.StatusCode, got)
		}
		return err
	}
	plainURL := "http://" + httpAddr + "/v1/online-features"
	plainCall := func(_ int, rng *rand.Rand) error {
		body := `{"feature_service":"bench30","entities":{"user_id":[` + strconv.Itoa(rng.IntN(benchUsers)) + `]}}`
		resp, err := httpClient.Post(plainURL, "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err == nil && (resp.StatusCode != http.StatusOK || !bytes.Contains(got, []byte(`"v2_f9"`)) || !bytes.Contains(got, []byte(`"PRESENT"`))) {
			err = fmt.Errorf("unexpected response %d: %.200s", resp.StatusCode, got)
		}
		return err
	}
	// The answer's bytes on the wire (the message, or the HTTP body), for one entity.
	answerBytes := map[string]int{}
	if !grpcOnly {
		one := &pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "bench30"},
			Entities: benchEntities(rand.New(rand.NewPCG(3, 4)), 1)}
		resp, err := pb.NewFeatureServingClient(conns[0]).GetOnlineFeatures(ctx, one)
		require.NoError(b, err)
		answerBytes["grpc"], answerBytes["grpc-jwt"] = proto.Size(resp), proto.Size(resp)
		for name, req := range map[string]struct{ url, body string }{
			"http-json":  {url, `{"feature_service":"bench30","entities":{"user_id":{"val":[{"int64_val":"1"}]}}}`},
			"http-plain": {plainURL, `{"feature_service":"bench30","entities":{"user_id":[1]}}`},
		} {
			r, err := httpClient.Post(req.url, "application/json", strings.NewReader(req.body))
			require.NoError(b, err)
			got, err := io.ReadAll(r.Body)
			require.NoError(b, err)
			_ = r.Body.Close()
			answerBytes[name] = len(got)
		}
	}
	for _, conc := range []int{1, 16} {
		for _, tr := range []struct {
			name string
			call func(int, *rand.Rand) error
			srv  *exec.Cmd
		}{{"grpc", grpcCall, cmd}, {"grpc-jwt", jwtCall, jwtCmd}, {"http-json", httpCall, cmd}, {"http-plain", plainCall, cmd}} {
			if grpcOnly && tr.name != "grpc" {
				continue
			}
			b.Run(fmt.Sprintf("%s/conc=%d", tr.name, conc), func(b *testing.B) {
				processLoad(b, tr.srv.Process.Pid, conc, tr.call)
				if n := answerBytes[tr.name]; n > 0 {
					b.ReportMetric(float64(n), "answer-B")
				}
			})
		}
	}
}

// processLoad makes b.N calls from conc goroutines and reports throughput, latency
// percentiles and the server process's CPU time per call.
func processLoad(b *testing.B, pid, conc int, call func(g int, rng *rand.Rand) error) {
	warm := rand.New(rand.NewPCG(1, 2))
	for g := range 4 * conc {
		require.NoError(b, call(g, warm))
	}
	var next atomic.Int64
	lat := make([][]time.Duration, conc)
	var failed atomic.Value
	cpu0 := processCPU(b, pid)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range conc {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			mine := make([]time.Duration, 0, b.N/conc+1)
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := call(g, rng); err != nil {
					failed.Store(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			lat[g] = mine
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := processCPU(b, pid) - cpu0
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "server-cpu-µs/call")
}

// processCPU is the user+system CPU time of process pid so far (/proc/PID/stat, in clock
// ticks of 10ms: run enough calls for that resolution not to matter).
func processCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(b, err)
	// The command name (field 2) may hold spaces; fields after its closing ')' are fixed.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, err := strconv.ParseInt(f[11], 10, 64) // field 14 of the whole line
	require.NoError(b, err)
	stime, err := strconv.ParseInt(f[12], 10, 64) // field 15
	require.NoError(b, err)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// benchProcessRepo is a feature repo for a `quiver serve` process: the definitions in yaml
// applied under a fresh project to a SQLite registry in a temporary directory, the benchmark
// rows written to Redis (QUIVER_BENCH_REDIS, default the package's), and its quiver.yaml.
func benchProcessRepo(b *testing.B, yaml string) (dir, project, redisAddr string) {
	b.Helper()
	redisAddr = os.Getenv("QUIVER_BENCH_REDIS")
	if redisAddr == "" {
		redisAddr = redisSrv.Addr
	}
	ctx := context.Background()
	dir = b.TempDir()
	project = fmt.Sprintf("bench_%d", rand.Uint32())
	reg, err := open.Open(ctx, "sqlite://"+filepath.Join(dir, "registry.db"))
	require.NoError(b, err)
	repo := parseRepo(b, yaml)
	apply(b, reg, project, repo)
	require.NoError(b, reg.Close())
	store, err := onlineredis.Open(ctx, "redis://"+redisAddr, onlineredis.Options{})
	require.NoError(b, err)
	require.NoError(b, writeBenchRows(ctx, store, project, repo))
	require.NoError(b, store.Close())
	require.NoError(b, os.WriteFile(filepath.Join(dir, "quiver.yaml"), fmt.Appendf(nil,
		"project: %s\nregistry: sqlite://%s\nonline: redis://%s/0\n", project, filepath.Join(dir, "registry.db"), redisAddr), 0o644))
	return dir, project, redisAddr
}

// startServeProcess runs `bin serve` from repo on addr (pinned with taskset to
// QUIVER_BENCH_CPU when set) until the benchmark ends, and waits until it answers health; it
// returns the process and a pool of 4 connections to it.
func startServeProcess(b *testing.B, bin, repo, addr string, extra ...string) (*exec.Cmd, []*grpc.ClientConn) {
	b.Helper()
	args := append([]string{bin, "-C", repo, "serve", "--addr", addr, "--metrics-addr", ""}, extra...)
	if cpu := os.Getenv("QUIVER_BENCH_CPU"); cpu != "" {
		args = append([]string{"taskset", "-c", cpu}, args...)
	}
	var serverLog bytes.Buffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &serverLog, &serverLog
	require.NoError(b, cmd.Start())
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	conns := make([]*grpc.ClientConn, 4)
	for i := range conns {
		var err error
		conns[i], err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(b, err)
		b.Cleanup(func() { _ = conns[i].Close() })
	}
	require.Eventually(b, func() bool {
		r, err := healthpb.NewHealthClient(conns[0]).Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, 20*time.Second, 20*time.Millisecond, "server did not start: %s", &serverLog)
	return cmd, conns
}
