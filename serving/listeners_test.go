package serving_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/serving"
	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/serving/auth/authtest"
)

// TestMetricsListenerLoopbackRule is issue 22 item 24: /metrics is never authenticated, so a
// server refuses a non-loopback metrics address as it refuses an unauthenticated gRPC or
// HTTP/JSON one — also when gRPC and HTTP are authenticated — unless told to accept it.
func TestMetricsListenerLoopbackRule(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	guard, err := auth.New(context.Background(), &auth.Config{APITokens: []auth.APIToken{{Name: "a", SHA256: sha256Of("t-a")}}},
		auth.Options{Project: e.project, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	port := mustListen(t)
	anyAddr := net.JoinHostPort("0.0.0.0", strconv.Itoa(port.Addr().(*net.TCPAddr).Port))
	require.NoError(t, port.Close())

	refused := []struct {
		name string
		opts func(o *serving.Options)
	}{
		{"with authentication", func(o *serving.Options) { o.Auth = guard; o.Addr = anyAddr; o.MetricsAddr = anyAddr }},
		{"without, gRPC on loopback", func(o *serving.Options) { o.MetricsAddr = anyAddr }},
		{"empty host", func(o *serving.Options) { o.Auth = guard; o.MetricsAddr = ":9464" }},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			opts := e.options(t)
			tc.opts(&opts)
			_, err := serving.NewServer(context.Background(), opts)
			require.ErrorIs(t, err, auth.ErrInsecureBind)
			require.ErrorContains(t, err, "--metrics-addr")
			require.ErrorContains(t, err, "--allow-unauthenticated-metrics")
		})
	}
	allowed := []struct {
		name string
		opts func(o *serving.Options)
	}{
		{"loopback", func(o *serving.Options) { o.Auth = guard; o.MetricsAddr = "127.0.0.1:9464" }},
		{"opted in", func(o *serving.Options) {
			o.Auth = guard
			o.MetricsAddr = anyAddr
			o.AllowUnauthenticatedMetrics = true
		}},
		{"the whole server opted in", func(o *serving.Options) {
			o.Addr, o.MetricsAddr = anyAddr, anyAddr
			o.AllowUnauthenticated = true
		}},
	}
	for _, tc := range allowed {
		t.Run(tc.name, func(t *testing.T) {
			opts := e.options(t)
			tc.opts(&opts)
			_, err := serving.NewServer(context.Background(), opts)
			require.NoError(t, err)
		})
	}
}

// TestHealthPortUnderRequiredClientCerts is issue 22 item 24's second half: with client
// certificates required (client_auth: require) the TLS handshake of the gRPC and HTTP/JSON
// ports needs one, health checks included, and Kubernetes probes cannot present one. The
// plain health port (HealthAddr, any address, no TLS, no credentials) answers them; it serves
// health and nothing else.
func TestHealthPortUnderRequiredClientCerts(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	dir := t.TempDir()
	ca := authtest.NewCA(t, "quiver-ca")
	certFile, keyFile := ca.Server(t).Write(t, dir, "server")
	caFile := filepath.Join(dir, "ca.pem")
	authtest.WriteFile(t, caFile, ca.PEM)
	cfg := &auth.Config{TLS: auth.TLSConfig{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile}}
	tlsCfg, err := auth.ServerTLS(cfg.TLS)
	require.NoError(t, err)
	require.Equal(t, tls.RequireAndVerifyClientCert, tlsCfg.ClientAuth)
	guard, err := auth.New(context.Background(), cfg, auth.Options{Project: e.project, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)

	opts := e.options(t)
	opts.Auth, opts.TLS = guard, tlsCfg
	hport := mustListen(t)
	port := hport.Addr().(*net.TCPAddr).Port
	require.NoError(t, hport.Close())
	opts.HealthAddr = net.JoinHostPort("0.0.0.0", strconv.Itoa(port)) // probes come from the node
	srv, err := serving.NewServer(context.Background(), opts)
	require.NoError(t, err)
	lis := mustListen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := serveAsync(srv, ctx, lis)
	t.Cleanup(func() {
		cancel()
		require.NoError(t, hangGuard(t, done))
	})

	// On the gRPC port, a health check without a client certificate gets no connection.
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12})))
	require.NoError(t, err)
	defer conn.Close()
	hctx, hcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer hcancel()
	_, err = healthpb.NewHealthClient(conn).Check(hctx, &healthpb.HealthCheckRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	// The health port answers a plain GET with no credentials at all.
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: 10 * time.Second}
	var body string
	require.Eventually(t, func() bool {
		r, err := client.Get(base + "/healthz")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		body = string(b)
		return r.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond)
	require.JSONEq(t, `{"status":"SERVING"}`, body)
	// ...and nothing else.
	for _, path := range []string{"/metrics", "/v1/get-online-features"} {
		r, err := client.Post(base+path, "application/json", strings.NewReader(`{"feature_service": "profile"}`))
		require.NoError(t, err)
		r.Body.Close()
		require.Equal(t, http.StatusNotFound, r.StatusCode, path)
	}
}
