package auth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/serving/auth/authtest"
)

// BenchmarkAuthPath is the per-call cost of the unary interceptor: credentials taken from
// the call, verified (JWT signature and claims, or an API token hash, or the verified
// client certificate), and the request checked against a policy of 100 grants.
//
//	go test ./serving/auth -run '^$' -bench AuthPath -benchmem
func BenchmarkAuthPath(b *testing.B) {
	ec, rsaKey := authtest.NewEC(b, "ec"), authtest.NewRSA(b, "rsa")
	dir := b.TempDir()
	jwksFile := filepath.Join(dir, "jwks.json")
	authtest.WriteFile(b, jwksFile, authtest.JWKS(b, ec, rsaKey))
	policy := &auth.Policy{}
	for i := range 100 {
		policy.Grants = append(policy.Grants, auth.Grant{Principals: []string{"subject:svc-" + itoa(i), "group:team-" + itoa(i)}, FeatureServices: []string{"svc_" + itoa(i)}})
	}
	policy.Grants = append(policy.Grants,
		auth.Grant{Principals: []string{"subject:svc-a", "token:nightly", "cert:CN=scorer"}, FeatureServices: []string{"churn_v1"}})
	cfg := &auth.Config{
		TLS:       auth.TLSConfig{CertFile: "x", KeyFile: "x", ClientCAFile: "x"},
		JWT:       &auth.JWTConfig{JWKSFile: jwksFile, Issuer: issuer, Audiences: []string{audience}},
		APITokens: []auth.APIToken{{Name: "nightly", SHA256: sum("nightly-secret")}},
		Policy:    policy,
	}
	newG := func(b *testing.B) *auth.Guard {
		g, err := auth.New(context.Background(), cfg, auth.Options{Project: "shop", Registerer: prometheus.NewRegistry()})
		require.NoError(b, err)
		return g
	}
	req := &pb.GetOnlineFeaturesRequest{Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "churn_v1"}}
	info := &grpc.UnaryServerInfo{FullMethod: auth.MethodGetOnlineFeatures}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
	exp := time.Now().Add(time.Hour)
	withMD := func(tok string) context.Context {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: addr})
		return metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+tok))
	}
	run := func(b *testing.B, g *auth.Guard, ctx context.Context) {
		intercept := g.UnaryServerInterceptor()
		if _, err := intercept(ctx, req, info, handler); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := intercept(ctx, req, info, handler); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("jwt_es256_cached", func(b *testing.B) {
		run(b, newG(b), withMD(ec.Token(b, claims("svc-a", exp, map[string]any{"groups": []string{"growth"}}))))
	})
	b.Run("jwt_es256_full_verify", func(b *testing.B) {
		g := newG(b)
		auth.DisableTokenCache(g)
		run(b, g, withMD(ec.Token(b, claims("svc-a", exp, map[string]any{"groups": []string{"growth"}}))))
	})
	b.Run("jwt_rs256_full_verify", func(b *testing.B) {
		g := newG(b)
		auth.DisableTokenCache(g)
		run(b, g, withMD(rsaKey.Token(b, claims("svc-a", exp, map[string]any{"groups": []string{"growth"}}))))
	})
	b.Run("api_token", func(b *testing.B) {
		run(b, newG(b), withMD("nightly-secret"))
	})
	b.Run("mtls_cert", func(b *testing.B) {
		ca := authtest.NewCA(b, "ca")
		leaf := ca.Client(b, "scorer", "")
		state := tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf.Cert, ca.Cert}}}
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: addr, AuthInfo: credentials.TLSInfo{State: state}})
		run(b, newG(b), ctx)
	})
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }
