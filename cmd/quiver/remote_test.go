package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/project"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
	"github.com/quiverfs/quiver/serving/model/onnx"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf certificate for cn (a server for 127.0.0.1 when server is true) and
// returns its certificate and key as PEM.
func (ca *testCA) issue(t *testing.T, cn string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// seenCall is what the test server's interceptor recorded of one call.
type seenCall struct {
	method        string
	authorization []string
	clientCN      string
	req           any
}

// startTLSServer serves the repo's features over TLS on a real TCP port, verifying client
// certificates from clientCA when one is given, and records every call's metadata.
func startTLSServer(t *testing.T, repo *contractRepo, lib string, serverCA, clientCA *testCA) (addr string, calls func() []seenCall) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg, err := config.Load(repo.dir, func(string) string { return "" })
	require.NoError(t, err)
	reg, err := project.OpenRegistry(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	store, err := project.OpenOnline(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	srv, err := serving.NewServer(ctx, serving.Options{Project: cfg.Project, Registry: reg, Store: store,
		Models:        serving.RuntimeOpener{BaseDir: cfg.Root, ONNX: onnx.Options{LibraryPath: lib, Sessions: 1}},
		ModelResolver: &serving.RegistryResolver{Models: reg, Project: cfg.Project}})
	require.NoError(t, err)

	certPEM, keyPEM := serverCA.issue(t, "quiver-serve", true)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCA.cert)
		tlsCfg.ClientCAs, tlsCfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	var mu sync.Mutex
	var seen []seenCall
	record := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		c := seenCall{method: info.FullMethod, req: req}
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			c.authorization = md.Get("authorization")
		}
		if p, ok := peer.FromContext(ctx); ok {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
				c.clientCN = ti.State.PeerCertificates[0].Subject.CommonName
			}
		}
		mu.Lock()
		seen = append(seen, c)
		mu.Unlock()
		return handler(ctx, req)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsCfg)), grpc.UnaryInterceptor(record))
	pb.RegisterFeatureServingServer(gs, srv)
	healthpb.RegisterHealthServer(gs, health.NewServer()) // SERVING
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String(), func() []seenCall {
		mu.Lock()
		defer mu.Unlock()
		out := seen
		seen = nil
		return out
	}
}

// TestRemoteClientsOverTLS: get-online, predict and health reach a TLS server on TCP with
// --server alone — run from a directory with no quiver.yaml — trusting --tls-ca, presenting
// --tls-cert/--tls-key, and sending --token (or $QUIVER_TOKEN) as "authorization: Bearer …"
// metadata, never printed. predict sends --request values as request_context.
func TestRemoteClientsOverTLS(t *testing.T) {
	lib := onnxLib(t)
	repo := prepareContractRepo(t, lib)
	serverCA, clientCA := newTestCA(t, "server CA"), newTestCA(t, "client CA")
	addr, calls := startTLSServer(t, repo, lib, serverCA, clientCA)

	files := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(files, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	caFile := write("ca.pem", serverCA.pem)
	cert, key := clientCA.issue(t, "cli-test", false)
	certFile, keyFile := write("client.pem", cert), write("client-key.pem", key)
	noRepo := t.TempDir() // no quiver.yaml here
	tlsArgs := []string{"-C", noRepo, "--server", addr, "--tls-ca", caFile, "--tls-cert", certFile, "--tls-key", keyFile}

	// get-online, token from --token.
	r := quiver(t, nil, append([]string{"-C", noRepo, "-o", "json", "get-online", "--service", "churn_v1", "--entity", "user_id=1", "--token", "tok-flag-1"}, tlsArgs[2:]...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var resp struct {
		Rows     int `json:"rows"`
		Features []struct {
			Name     string   `json:"name"`
			Statuses []string `json:"statuses"`
		} `json:"features"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &resp))
	require.Equal(t, 1, resp.Rows)
	require.Equal(t, "clicks_7d", resp.Features[0].Name)
	require.Equal(t, []string{"PRESENT"}, resp.Features[0].Statuses)
	got := calls()
	require.Len(t, got, 1)
	require.Equal(t, "/quiver.serving.v1.FeatureServing/GetOnlineFeatures", got[0].method)
	require.Equal(t, []string{"Bearer tok-flag-1"}, got[0].authorization)
	require.Equal(t, "cli-test", got[0].clientCN, "the client certificate was presented")
	require.NotContains(t, r.stdout+r.stderr, "tok-flag-1")

	// predict, token from $QUIVER_TOKEN, with request context values.
	env := map[string]string{"QUIVER_TOKEN": "tok-env-2"}
	r = quiver(t, env, append([]string{"-o", "json", "predict", "--model", "churn@production", "--entity", "user_id=1", "--entity", "user_id=4",
		"--request", "spend_30d=1000.0", "--request", "spend_30d=0.5", "--include-features"}, tlsArgs...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	got = calls()
	require.Len(t, got, 1)
	require.Equal(t, []string{"Bearer tok-env-2"}, got[0].authorization)
	preq := got[0].req.(*pb.PredictRequest)
	require.Equal(t, []float64{1000, 0.5}, []float64{preq.RequestContext["spend_30d"].Val[0].GetDoubleVal(), preq.RequestContext["spend_30d"].Val[1].GetDoubleVal()})
	require.Equal(t, int64(4), preq.Entities["user_id"].Val[1].GetInt64Val())
	var pred struct {
		Rows     int `json:"rows"`
		Features []struct {
			Name   string `json:"name"`
			Values struct {
				DoubleValues struct {
					Val []float64 `json:"val"`
				} `json:"double_values"`
			} `json:"values"`
		} `json:"features"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &pred), r.stdout)
	require.Equal(t, 2, pred.Rows)
	var spend []float64
	for _, f := range pred.Features {
		if f.Name == "spend_30d" {
			spend = f.Values.DoubleValues.Val
		}
	}
	require.Equal(t, []float64{1000, 0.5}, spend, "the model was fed the request values")
	require.NotContains(t, r.stdout+r.stderr, "tok-env-2")

	// health over the same TLS connection settings.
	r = quiver(t, env, append([]string{"-o", "json", "health"}, tlsArgs...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.JSONEq(t, `{"server":"`+addr+`","status":"SERVING"}`, r.stdout)
	got = calls()
	require.Len(t, got, 1)
	require.Equal(t, []string{"Bearer tok-env-2"}, got[0].authorization)

	// Refusals: no TLS to a TLS server; a server certificate from a CA not trusted; a
	// client key without its certificate; an unreadable CA file.
	r = quiver(t, nil, "-o", "json", "health", "-C", noRepo, "--server", addr)
	require.Equal(t, exitUnavailable, r.code, r.stderr)
	checkErrorJSON(t, "plaintext to TLS", r)
	r = quiver(t, nil, "health", "--server", addr, "--tls-ca", write("other.pem", newTestCA(t, "other").pem))
	require.Equal(t, exitUnavailable, r.code, r.stderr)
	r = quiver(t, nil, "health", "--server", addr, "--tls-key", keyFile)
	require.Equal(t, exitUsage, r.code, r.stderr)
	require.Contains(t, r.stderr, "--tls-cert and --tls-key go together")
	r = quiver(t, nil, "health", "--server", addr, "--tls-ca", filepath.Join(files, "missing.pem"))
	require.Equal(t, exitInvalid, r.code, r.stderr)
	require.Contains(t, r.stderr, "--tls-ca")
	require.Empty(t, calls(), "no refused connection reached a handler")
}
