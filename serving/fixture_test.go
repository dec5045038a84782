package serving_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	onlineredis "github.com/quiverfs/quiver/online/redis"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/open"
	"github.com/quiverfs/quiver/serving"
)

const defsYAML = `
entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
  - name: merchant
    join_keys: [{ name: merchant_id, type: string }]
sources:
  - name: src
    parquet: { path: data/src.parquet }
    timestamp_field: event_ts
feature_views:
  - name: user_stats
    entities: [user]
    source: src
    ttl: 7d
    online: true
    features:
      - { name: clicks_7d, type: int64 }
      - { name: spend_30d, type: float64 }
      - { name: is_vip, type: bool }
      - { name: embedding, type: "array<float32>" }
      - { name: country, type: string }
      - { name: last_seen, type: timestamp }
  - name: merchant_stats
    entities: [merchant]
    source: src
    online: true
    features:
      - { name: risk, type: float32 }
      - { name: orders, type: int32 }
  - name: offline_only
    entities: [user]
    source: src
    online: false
    features:
      - { name: label, type: int64 }
feature_services:
  - name: churn_v1
    features: [user_stats:clicks_7d, user_stats:spend_30d, user_stats:is_vip, "merchant_stats:*"]
  - name: profile
    features: ["user_stats:*"]
models:
  - name: churn
    feature_service: churn_v1
    runtime: onnx
    path: churn.onnx
`

// churnFeatures is churn_v1's features, in order: the model input order.
var churnFeatures = []string{"clicks_7d", "spend_30d", "is_vip", "risk", "orders"}

var projectSeq atomic.Int64

func projectName(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	return fmt.Sprintf("%s_%d_%d", name, projectSeq.Add(1), rand.Uint32())
}

// env is one test's world: a registry with the definitions applied, the shared Redis as the
// online store with rows written, and the time they were written against.
type env struct {
	project string
	reg     registry.Store
	store   *onlineredis.Store
	repo    *definitions.Repo
	now     time.Time
	dir     string
}

func parseRepo(t testing.TB, yaml string) *definitions.Repo {
	t.Helper()
	f, err := definitions.Parse("features.yaml", []byte(yaml))
	require.NoError(t, err)
	repo, err := definitions.NewRepo(f.Objects)
	require.NoError(t, err)
	return repo
}

// apply writes every object of repo to the registry as one new revision (and removes objects
// no longer there).
func apply(t testing.TB, reg registry.Store, project string, repo *definitions.Repo) int64 {
	t.Helper()
	ctx := context.Background()
	base, err := reg.CurrentRevision(ctx, project)
	require.NoError(t, err)
	req := registry.ApplyRequest{Project: project, BaseRevision: base, Author: "test"}
	seen := map[string]bool{}
	for _, o := range repo.Objects() {
		spec, err := definitions.Spec(o)
		require.NoError(t, err)
		req.Changes = append(req.Changes, registry.Change{Kind: o.ObjectKind(), Name: o.ObjectName(), Hash: definitions.HashSpec(spec), Spec: spec})
		seen[string(o.ObjectKind())+"/"+o.ObjectName()] = true
	}
	live, err := reg.ListObjects(ctx, project, "")
	require.NoError(t, err)
	for _, ov := range live {
		if !seen[string(ov.Kind)+"/"+ov.Name] {
			req.Changes = append(req.Changes, registry.Change{Kind: ov.Kind, Name: ov.Name, Delete: true})
		}
	}
	res, err := reg.Apply(ctx, req)
	require.NoError(t, err)
	return res.Revision
}

func openRedis(t testing.TB, addr string) *onlineredis.Store {
	t.Helper()
	s, err := onlineredis.Open(context.Background(), "redis://"+addr, onlineredis.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newEnv(t testing.TB, redisAddr string) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	reg, err := open.Open(ctx, "sqlite://"+filepath.Join(dir, "registry.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Close() })
	e := &env{project: projectName(t), reg: reg, store: openRedis(t, redisAddr), repo: parseRepo(t, defsYAML), now: time.Now().UTC().Truncate(time.Microsecond), dir: dir}
	apply(t, reg, e.project, e.repo)
	e.populate(t)
	return e
}

func (e *env) view(t testing.TB, name string) *online.View {
	t.Helper()
	ents := make([]definitions.Entity, len(e.repo.Entities))
	for i, en := range e.repo.Entities {
		ents[i] = *en
	}
	v, err := online.NewView(e.project, e.repo.FeatureView(name), ents)
	require.NoError(t, err)
	return v
}

// populate writes:
//   - user 1: fresh, every feature set;
//   - user 2: 8 days old (user_stats has a 7d TTL): OUTSIDE_MAX_AGE;
//   - user 3: fresh, with nulls;
//   - user 4: nothing (NOT_FOUND);
//   - merchant m1: fresh; merchant m2: nothing.
func (e *env) populate(t testing.TB) {
	t.Helper()
	require.NoError(t, e.tryPopulate(t))
}

func (e *env) tryPopulate(t testing.TB) error {
	t.Helper()
	ctx := context.Background()
	us := e.view(t, "user_stats")
	key := func(v *online.View, vals ...online.Value) online.EntityKey {
		k, err := v.Key(vals...)
		require.NoError(t, err)
		return k
	}
	if err := e.store.Write(ctx, us, []online.Row{
		{Key: key(us, online.Int64(1)), EventTS: e.now.Add(-time.Hour), Values: []online.Value{
			online.Int64(42), online.Float64(99.5), online.Bool(true), online.Float32s([]float32{0.25, -1}),
			online.String("NL"), online.Timestamp(e.now.Add(-2 * time.Hour)),
		}},
		{Key: key(us, online.Int64(2)), EventTS: e.now.Add(-8 * 24 * time.Hour), Values: []online.Value{
			online.Int64(7), online.Float64(1.5), online.Bool(false), online.Float32s(nil),
			online.String("DE"), online.Null(),
		}},
		{Key: key(us, online.Int64(3)), EventTS: e.now.Add(-time.Minute), Values: []online.Value{
			online.Int64(3), online.Null(), online.Null(), online.Null(), online.Null(), online.Null(),
		}},
	}); err != nil {
		return err
	}
	ms := e.view(t, "merchant_stats")
	return e.store.Write(ctx, ms, []online.Row{
		{Key: key(ms, online.String("m1")), EventTS: e.now.Add(-time.Hour), Values: []online.Value{online.Float32(0.75), online.Int32(12)}},
	})
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func (e *env) options(t testing.TB) serving.Options {
	return serving.Options{
		Project:         e.project,
		Registry:        e.reg,
		Store:           e.store,
		Logger:          testLogger(t),
		Registerer:      prometheus.NewRegistry(),
		RefreshInterval: 50 * time.Millisecond,
	}
}

// startBufconn runs the server in process over bufconn and returns a connected client; the
// server stops at the end of the test.
func startBufconn(t testing.TB, opts serving.Options) (*serving.Server, *grpc.ClientConn) {
	t.Helper()
	srv, err := serving.NewServer(context.Background(), opts)
	require.NoError(t, err)
	lis := bufconn.Listen(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		require.NoError(t, <-done)
	})
	return srv, conn
}

// Helpers to build wire values.
func i64(v int64) *pb.Value   { return &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: v}} }
func i32(v int32) *pb.Value   { return &pb.Value{Kind: &pb.Value_Int32Val{Int32Val: v}} }
func str(v string) *pb.Value  { return &pb.Value{Kind: &pb.Value_StringVal{StringVal: v}} }
func f64(v float64) *pb.Value { return &pb.Value{Kind: &pb.Value_DoubleVal{DoubleVal: v}} }
func col(vals ...*pb.Value) *pb.RepeatedValue {
	return &pb.RepeatedValue{Val: vals}
}

func users(ids ...int64) map[string]*pb.RepeatedValue {
	c := &pb.RepeatedValue{}
	for _, id := range ids {
		c.Val = append(c.Val, i64(id))
	}
	return map[string]*pb.RepeatedValue{"user_id": c}
}

func columnByName(t testing.TB, cols []*pb.FeatureColumn, name string) *pb.FeatureColumn {
	t.Helper()
	for _, c := range cols {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no column %q", name)
	return nil
}

// cell is row r of a feature column.
func cell(c *pb.FeatureColumn, r int) *pb.Value { return serving.VectorValue(c.Values, r) }
