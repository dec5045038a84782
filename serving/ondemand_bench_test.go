package serving_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	onlineredis "github.com/quiverfs/quiver/online/redis"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/registry/open"
	"github.com/quiverfs/quiver/serving"
)

// onDemandBenchYAML is the serving benchmark's repo (3 views × 10 features) plus a request
// source and three on-demand features over it, served as bench30_od: bench30's 30 stored
// features and the 3 on-demand ones.
func onDemandBenchYAML() string {
	y := benchYAML()
	y = strings.Replace(y, "feature_services:\n", `request_sources:
  - name: txn
    fields: [{ name: amount, type: float64 }, { name: country, type: string }]
on_demand_feature_views:
  - name: txn_od
    inputs: [txn, view_0]
    features:
      - { name: amount_over_f0, type: float64, expr: "view_0.v0_f0 > 0.0 ? txn.amount / view_0.v0_f0 : 0.0" }
      - { name: foreign, type: bool, expr: "txn.country != 'DE'" }
      - { name: amount_minus_f1, type: float64, expr: "txn.amount - view_0.v0_f1" }
feature_services:
  - name: bench30_od
    features: ["view_0:*", "view_1:*", "view_2:*", "txn_od:*"]
  - name: bench27_od
    features: ["view_0:*", "view_1:*", view_2:v2_f0, view_2:v2_f1, view_2:v2_f2, view_2:v2_f3, view_2:v2_f4, view_2:v2_f5, view_2:v2_f6, "txn_od:*"]
`, 1)
	return y
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGetOnlineFeaturesOnDemand compares, in one run and against one server, the
// 1-entity GetOnlineFeatures call of 30 stored features (bench30) with the same call plus
// three on-demand features (bench30_od, 33 columns) and with 27 stored and three on-demand
// features (bench27_od: the same 30 response columns, three of them computed). The handler is called in process (no transport), so
// cpu-µs/call is the server's own CPU per call (Redis runs in its own process).
func BenchmarkGetOnlineFeaturesOnDemand(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	reg, err := open.Open(ctx, "sqlite://"+filepath.Join(dir, "registry.db"))
	require.NoError(b, err)
	defer reg.Close()
	project := fmt.Sprintf("bench_od_%d", rand.Uint32())
	repo := parseRepo(b, onDemandBenchYAML())
	apply(b, reg, project, repo)
	store, err := onlineredis.Open(ctx, "redis://"+redisSrv.Addr, onlineredis.Options{})
	require.NoError(b, err)
	defer store.Close()
	require.NoError(b, writeBenchRows(ctx, store, project, repo))
	srv, err := serving.NewServer(ctx, serving.Options{Project: project, Registry: reg, Store: store, Registerer: prometheus.NewRegistry()})
	require.NoError(b, err)

	request := func(service string, user int64) *pb.GetOnlineFeaturesRequest {
		req := &pb.GetOnlineFeaturesRequest{
			Kind:     &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: service},
			Entities: map[string]*pb.RepeatedValue{"user_id": {Val: []*pb.Value{i64(user)}}},
		}
		if service != "bench30" {
			req.RequestContext = map[string]*pb.RepeatedValue{
				"amount":  {Val: []*pb.Value{f64(12.5)}},
				"country": {Val: []*pb.Value{{Kind: &pb.Value_StringVal{StringVal: "FR"}}}},
			}
		}
		return req
	}
	// Both shapes alternate in rounds of 100 calls, so drift on a shared machine (other
	// processes, GC, CPU frequency) lands on both alike; cpu-µs/call is the process's CPU
	// (user + system) per call of each shape, and overhead-% their difference.
	resp, err := srv.GetOnlineFeatures(ctx, request("bench30_od", 1))
	require.NoError(b, err)
	require.Len(b, resp.Features, 33)
	require.Equal(b, pb.FieldStatus_PRESENT, resp.Features[31].Statuses[0])
	// Requests are built before the loop: the client's work is not the server's.
	rng := rand.New(rand.NewPCG(1, 2))
	const round = 100
	shapes := []string{"bench30", "bench30_od", "bench27_od"}
	var reqs [3][round]*pb.GetOnlineFeaturesRequest
	for i, service := range shapes {
		for j := range round {
			reqs[i][j] = request(service, int64(rng.IntN(benchUsers)))
		}
	}
	var cpu [3]time.Duration
	calls := 0
	b.ReportAllocs()
	for b.Loop() {
		// The order rotates each round: whatever a round leaves behind (garbage to collect) is
		// not always billed to the same shape.
		for j := range reqs {
			i := (j + calls/round) % len(reqs)
			c0 := cpuTime()
			for _, req := range reqs[i] {
				if _, err := srv.GetOnlineFeatures(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			cpu[i] += cpuTime() - c0
		}
		calls += round
	}
	per := func(i int) float64 { return float64(cpu[i].Microseconds()) / float64(calls) }
	b.ReportMetric(per(0), "stored30-cpu-µs/call")
	b.ReportMetric(per(1), "stored30+od3-cpu-µs/call")
	b.ReportMetric(per(2), "stored27+od3-cpu-µs/call")
	b.ReportMetric(100*(per(1)-per(0))/per(0), "od3-added-%")
	b.ReportMetric(100*(per(2)-per(0))/per(0), "od3-instead-of-3-stored-%")
}
