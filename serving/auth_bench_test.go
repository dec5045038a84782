package serving_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/serving/auth/authtest"
)

// BenchmarkGetOnlineFeaturesAuth is BenchmarkGetOnlineFeatures' 1-entity call against a
// second server on the same store with authentication on: a bearer JWT (ES256, from a JWKS
// file) or an API token on every call, and a policy granting the feature service. Run it
// beside BenchmarkGetOnlineFeatures/entities=1 (auth off) in one go test invocation:
//
//	go test -run '^$' -bench 'GetOnlineFeatures(Auth)?/entities=1$/conc=1$' -benchtime 3s ./serving/
func BenchmarkGetOnlineFeaturesAuth(b *testing.B) {
	e := setupBench(b)
	signer := authtest.NewEC(b, "bench")
	jwks := filepath.Join(b.TempDir(), "jwks.json")
	authtest.WriteFile(b, jwks, authtest.JWKS(b, signer))
	cfg := &auth.Config{
		JWT:       &auth.JWTConfig{JWKSFile: jwks, Issuer: "https://idp.bench/", Audiences: []string{"quiver"}},
		APITokens: []auth.APIToken{{Name: "nightly", SHA256: sha256Of("nightly-secret")}},
		Policy:    &auth.Policy{Grants: []auth.Grant{{Principals: []string{"subject:svc-a", "token:nightly"}, FeatureServices: []string{"bench30"}}}},
	}
	jwt := signer.Token(b, authtest.Claims{Issuer: "https://idp.bench/", Subject: "svc-a", Audience: []string{"quiver"}, Expiry: time.Now().Add(time.Hour)})
	for _, tc := range []struct{ name, token string }{{"jwt", jwt}, {"api_token", "nightly-secret"}} {
		for _, conc := range []int{1, 32} {
			b.Run(fmt.Sprintf("entities=1/conc=%d/auth=%s", conc, tc.name), func(b *testing.B) {
				guard, err := auth.New(context.Background(), cfg, auth.Options{Project: e.opts.Project, Registerer: prometheus.NewRegistry()})
				require.NoError(b, err)
				opts := e.opts
				opts.Auth, opts.Registerer, opts.Gatherer = guard, prometheus.NewRegistry(), nil
				srv, err := serving.NewServer(context.Background(), opts)
				require.NoError(b, err)
				lis, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(b, err)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- srv.Serve(ctx, lis) }()
				b.Cleanup(func() { cancel(); <-done })
				var clients []pb.FeatureServingClient
				for range 4 {
					conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
					require.NoError(b, err)
					b.Cleanup(func() { _ = conn.Close() })
					clients = append(clients, pb.NewFeatureServingClient(conn))
				}
				callCtx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tc.token)
				runLoad(b, conc, 1, func(_ pb.FeatureServingClient, rng *rand.Rand) error {
					resp, err := clients[rng.IntN(len(clients))].GetOnlineFeatures(callCtx, &pb.GetOnlineFeaturesRequest{
						Kind:     &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "bench30"},
						Entities: benchEntities(rng, 1),
					})
					if err == nil && len(resp.Features) != benchViews*benchFeatures {
						err = fmt.Errorf("unexpected response: %d features", len(resp.Features))
					}
					return err
				})
			})
		}
	}
}

func sha256Of(s string) [32]byte { return sha256.Sum256([]byte(s)) }
