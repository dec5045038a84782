package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

// TestConformanceSingleNode runs the suite, its unavailable case on a server of its own that
// it kills.
func TestConformanceSingleNode(t *testing.T) {
	onlinetest.RunStoreTests(t, func(t *testing.T) online.Store {
		return New(newSingleClient(single.Addr), Options{})
	}, func(t *testing.T) (online.Store, func()) {
		srv := testenv.StartRedis(t)
		// Few retries keep the test short; go-redis's defaults retry for a few seconds.
		client := goredis.NewClient(&goredis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true, MaxRetries: 1, DialerRetries: 1})
		return New(client, Options{}), srv.Kill
	})
}

// TestConformanceCluster: the same backend on a cluster (the unavailable case, a whole
// cluster lost, is the single node's; TestClusterNodeDown loses one node).
func TestConformanceCluster(t *testing.T) {
	onlinetest.RunStoreTests(t, func(t *testing.T) online.Store {
		return New(newClusterClient(cluster.Addrs()), Options{})
	}, nil)
}

// TestConformanceSmallBatches runs the suite with one row per script and tiny pipelines,
// the other edge of the write batching.
func TestConformanceSmallBatches(t *testing.T) {
	onlinetest.RunStoreTests(t, func(t *testing.T) online.Store {
		return New(newSingleClient(single.Addr), Options{WriteBatch: 3, RowsPerScript: 1})
	}, nil)
}

// roundTrips counts what a client sends: single commands and pipelines (with their size).
type roundTrips struct {
	mu        sync.Mutex
	commands  int
	names     []string
	pipelines []int
}

func (h *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if n := cmd.Name(); n == "hello" || n == "client" {
			return next(ctx, cmd) // a connection's handshake, not a request
		}
		h.mu.Lock()
		h.commands++
		h.names = append(h.names, cmd.Name())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		handshake := true
		for _, c := range cmds {
			if n := c.Name(); n != "hello" && n != "client" && n != "auth" && n != "select" {
				handshake = false
			}
		}
		if handshake {
			return next(ctx, cmds) // a new connection's set-up, not a request
		}
		h.mu.Lock()
		h.pipelines = append(h.pipelines, len(cmds))
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (h *roundTrips) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.commands, h.names, h.pipelines = 0, nil, nil
}

// TestReadIsOnePipeline: 100 entities × 3 views (two keyed by user, one by device) is one
// pipeline and nothing else, with one HMGET per distinct (entity row, entity key).
func TestReadIsOnePipeline(t *testing.T) {
	client := newSingleClient(single.Addr)
	hook := &roundTrips{}
	client.AddHook(hook)
	s := New(client, Options{})
	defer s.Close()
	ctx := context.Background()
	project := onlinetest.Project(t)
	a := onlinetest.MustView(t, project, onlinetest.FeatureView("a", []string{"user"}, 0, "int64"))
	b := onlinetest.MustView(t, project, onlinetest.FeatureView("b", []string{"user"}, 0, "string"))
	c := onlinetest.MustView(t, project, onlinetest.FeatureView("c", []string{"user"}, 0, "float64"))
	const n = 100
	keys := make([]online.EntityKey, n)
	for i := range n {
		keys[i] = onlinetest.UserKey(t, a, int64(i))
	}
	require.NoError(t, s.Write(ctx, a, []online.Row{{Key: keys[5], EventTS: time.Now(), Values: []online.Value{online.Int64(5)}}}))

	hook.reset()
	res, err := s.Read(ctx, online.ReadRequest{Views: []online.ViewRead{
		{View: a, Keys: keys}, {View: b, Keys: keys}, {View: c, Keys: keys},
	}})
	require.NoError(t, err)
	require.Equal(t, online.Present, res.Columns[0].Statuses[5])
	require.Equal(t, 0, hook.commands, "no command outside the pipeline")
	require.Equal(t, []int{n}, hook.pipelines, "one pipeline of one HMGET per entity for its 3 views")

	hook.reset()
	one := keys[5:6]
	res, err = s.Read(ctx, online.ReadRequest{Views: []online.ViewRead{
		{View: a, Keys: one}, {View: b, Keys: one}, {View: c, Keys: one},
	}})
	require.NoError(t, err)
	require.Equal(t, int64(5), res.Columns[0].Values[0].Int64())
	require.Equal(t, []string{"hmget"}, hook.names, "one entity × 3 views is a single HMGET")
	require.Empty(t, hook.pipelines)
}

// TestReadIsOnePipelineCluster: on a cluster the read is one client pipeline too (go-redis
// sends it to the masters concurrently, one round trip each).
func TestReadIsOnePipelineCluster(t *testing.T) {
	client := newClusterClient(cluster.Addrs())
	hook := &roundTrips{}
	client.AddHook(hook)
	s := New(client, Options{})
	defer s.Close()
	ctx := context.Background()
	project := onlinetest.Project(t)
	a := onlinetest.MustView(t, project, onlinetest.FeatureView("a", []string{"user"}, 0, "int64"))
	keys := make([]online.EntityKey, 100)
	for i := range keys {
		keys[i] = onlinetest.UserKey(t, a, int64(i))
	}
	require.NoError(t, client.Ping(ctx).Err()) // load the cluster state first
	hook.reset()
	_, err := s.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: a, Keys: keys}, {View: a, Features: []int{0}, Keys: keys}}})
	require.NoError(t, err)
	require.Equal(t, 0, hook.commands)
	require.Equal(t, []int{100}, hook.pipelines)
}

// TestStaleWriteNeverWinsAcrossClients: writers on separate connections race newer and older
// rows for the same keys; the newest always remains.
func TestStaleWriteNeverWinsAcrossClients(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func() *Store
	}{
		{"single", func() *Store { return New(newSingleClient(single.Addr), Options{RowsPerScript: 4}) }},
		{"cluster", func() *Store { return New(newClusterClient(cluster.Addrs()), Options{RowsPerScript: 4}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			v := onlinetest.MustView(t, onlinetest.Project(t), onlinetest.FeatureView("v", []string{"user"}, time.Hour, "int64"))
			keys := make([]online.EntityKey, 30)
			for i := range keys {
				keys[i] = onlinetest.UserKey(t, v, int64(i))
			}
			base := time.Now().Add(-time.Minute)
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := tc.open()
					defer s.Close()
					// Writer w writes versions in descending order when w is odd.
					for step := range 50 {
						ver := step
						if w%2 == 1 {
							ver = 49 - step
						}
						ev := ver*8 + w
						rows := make([]online.Row, len(keys))
						for i, k := range keys {
							rows[i] = online.Row{Key: k, EventTS: base.Add(time.Duration(ev) * time.Millisecond), Values: []online.Value{online.Int64(int64(ev))}}
						}
						if err := s.Write(ctx, v, rows); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			s := tc.open()
			defer s.Close()
			res, err := s.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: keys}}})
			require.NoError(t, err)
			for i := range keys {
				require.Equal(t, int64(49*8+7), res.Columns[0].Values[i].Int64())
			}
		})
	}
}

// TestDownServerErrorNamesAddress kills Redis mid-use: reads and writes fail with
// ErrUnavailable naming the address, and work again once it is back.
func TestDownServerErrorNamesAddress(t *testing.T) {
	srv := testenv.StartRedis(t)
	// Few retries keep the test short; go-redis's defaults retry for a few seconds.
	s := New(goredis.NewClient(&goredis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true, MaxRetries: 1, DialerRetries: 1}), Options{})
	defer s.Close()
	ctx := context.Background()
	v := onlinetest.MustView(t, onlinetest.Project(t), onlinetest.FeatureView("v", []string{"user"}, 0, "int64"))
	k := onlinetest.UserKey(t, v, 1)
	row := []online.Row{{Key: k, EventTS: time.Now(), Values: []online.Value{online.Int64(1)}}}
	req := online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: []online.EntityKey{k}}}}
	require.NoError(t, s.Write(ctx, v, row))

	srv.Kill()
	_, err := s.Read(ctx, req)
	require.ErrorIs(t, err, online.ErrUnavailable)
	require.ErrorContains(t, err, srv.Addr)
	err = s.Write(ctx, v, row)
	require.ErrorIs(t, err, online.ErrUnavailable)
	require.ErrorContains(t, err, srv.Addr)
	err = s.DeleteView(ctx, v)
	require.ErrorIs(t, err, online.ErrUnavailable)

	srv.Start() // an empty server: no data, no loaded script
	res, err := s.Read(ctx, req)
	require.NoError(t, err)
	require.Equal(t, online.NotFound, res.Columns[0].Statuses[0])
	require.NoError(t, s.Write(ctx, v, row), "the write script is loaded again")
	res, err = s.Read(ctx, req)
	require.NoError(t, err)
	require.Equal(t, online.Present, res.Columns[0].Statuses[0])

	_, err = Open(ctx, "redis://127.0.0.1:1/0", Options{})
	require.ErrorIs(t, err, online.ErrUnavailable)
	require.ErrorContains(t, err, "127.0.0.1:1")
}

// TestReadHonoursDeadline: a hung server (SIGSTOP) makes a read fail at the caller's
// deadline with an error that names the address and wraps context.DeadlineExceeded.
func TestReadHonoursDeadline(t *testing.T) {
	srv := testenv.StartRedis(t)
	s := New(newSingleClient(srv.Addr), Options{})
	defer s.Close()
	v := onlinetest.MustView(t, onlinetest.Project(t), onlinetest.FeatureView("v", []string{"user"}, 0, "int64"))
	req := online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: []online.EntityKey{onlinetest.UserKey(t, v, 1)}}}}
	_, err := s.Read(context.Background(), req) // open a connection first
	require.NoError(t, err)

	srv.Pause()
	defer srv.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = s.Read(ctx, req)
	require.Error(t, err)
	require.ErrorIs(t, err, online.ErrUnavailable)
	require.ErrorContains(t, err, srv.Addr)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
}

// TestKeyExpiry checks the per-key expiry documented in docs/online-format.md: the hash
// expires at the latest (event_ts + TTL, write time) + grace over its views, and never when
// one of its views has no TTL.
func TestKeyExpiry(t *testing.T) {
	client := newSingleClient(single.Addr)
	s := New(client, Options{ExpiryGrace: time.Hour})
	defer s.Close()
	ctx := context.Background()
	project := onlinetest.Project(t)
	short := onlinetest.MustView(t, project, onlinetest.FeatureView("short", []string{"user"}, 2*time.Hour, "int64"))
	long := onlinetest.MustView(t, project, onlinetest.FeatureView("long", []string{"user"}, 48*time.Hour, "int64"))
	forever := onlinetest.MustView(t, project, onlinetest.FeatureView("forever", []string{"user"}, 0, "int64"))
	k := onlinetest.UserKey(t, short, 1)
	redisKey := string(appendHashKey(nil, project, k))
	now := time.Now()
	write := func(v *online.View, ev time.Time) {
		require.NoError(t, s.Write(ctx, v, []online.Row{{Key: k, EventTS: ev, Values: []online.Value{online.Int64(1)}}}))
	}
	expiry := func() time.Duration {
		ms, err := client.PExpireTime(ctx, redisKey).Result()
		require.NoError(t, err)
		if ms < 0 {
			return ms
		}
		return time.Until(time.UnixMilli(int64(ms / time.Millisecond)))
	}
	write(short, now.Add(-time.Hour))
	require.InDelta(t, (2 * time.Hour).Seconds(), expiry().Seconds(), 120) // event+2h-1h, +1h grace
	write(short, now.Add(-10*time.Hour))                                   // stale row: no change
	require.InDelta(t, (2 * time.Hour).Seconds(), expiry().Seconds(), 120)
	write(long, now.Add(-24*time.Hour))
	require.InDelta(t, (25 * time.Hour).Seconds(), expiry().Seconds(), 120)
	write(short, now) // an earlier expiry never shortens a later one
	require.InDelta(t, (25 * time.Hour).Seconds(), expiry().Seconds(), 120)
	write(forever, now)
	require.Equal(t, time.Duration(-1), expiry(), "a view without TTL makes the hash persistent")
	write(long, now)
	require.Equal(t, time.Duration(-1), expiry())

	old := string(appendHashKey(nil, project, onlinetest.UserKey(t, short, 2)))
	require.NoError(t, s.Write(ctx, short, []online.Row{{Key: onlinetest.UserKey(t, short, 2), EventTS: now.Add(-1000 * time.Hour), Values: []online.Value{online.Int64(1)}}}))
	ms, err := client.PExpireTime(ctx, old).Result()
	require.NoError(t, err)
	require.InDelta(t, time.Hour.Seconds(), time.Until(time.UnixMilli(int64(ms/time.Millisecond))).Seconds(), 120, "an old row is kept for the grace after its write")
}

func TestOpenURLs(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "redis://"+single.Addr+"/0", Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	c := cluster.Addrs()
	s, err = Open(ctx, fmt.Sprintf("redis-cluster://%s,%s,%s", c[0], c[1], c[2]), Options{})
	require.NoError(t, err)
	require.True(t, s.cluster)
	require.NoError(t, s.Close())
	for _, bad := range []string{"postgres://x", "redis-cluster://", "redis://:x:y:z"} {
		_, err := Open(ctx, bad, Options{})
		require.ErrorIs(t, err, online.ErrInvalidArgument, bad)
	}
	_, err = Open(ctx, "redis-cluster://user:s3cret@127.0.0.1:1", Options{})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
}

func TestUseAfterClose(t *testing.T) {
	s := New(newSingleClient(single.Addr), Options{})
	require.NoError(t, s.Close())
	v := onlinetest.MustView(t, onlinetest.Project(t), onlinetest.FeatureView("v", []string{"user"}, 0, "int64"))
	_, err := s.Read(context.Background(), online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: []online.EntityKey{onlinetest.UserKey(t, v, 1)}}}})
	require.ErrorIs(t, err, online.ErrClosed)
}

func TestSlotOf(t *testing.T) {
	// Reference values from the Redis Cluster specification and CLUSTER KEYSLOT.
	require.Equal(t, uint16(12739), slotOf([]byte("123456789")))
	require.Equal(t, slotOf([]byte("user1000")), slotOf([]byte("foo{user1000}bar")))
	require.Equal(t, slotOf([]byte("foo{}bar")), slotOf([]byte("foo{}bar")))
	client := newSingleClient(cluster.Addrs()[0])
	defer client.Close()
	for _, k := range []string{"a", "q:p:{\x01\x01\x04user\x02\x00}", "x{y}z", "{}", "{a}{b}"} {
		want, err := client.ClusterKeySlot(context.Background(), k).Result()
		require.NoError(t, err)
		require.Equal(t, uint16(want), slotOf([]byte(k)), "%q", k)
	}
}

// TestClusterNodeDown kills one master of a private cluster: a read touching its slots fails
// with ErrUnavailable naming the cluster, and reads work again once the node is back.
func TestClusterNodeDown(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true, MaxRetries: 1, DialerRetries: 1})
	s := New(client, Options{})
	defer s.Close()
	ctx := context.Background()
	v := onlinetest.MustView(t, onlinetest.Project(t), onlinetest.FeatureView("v", []string{"user"}, 0, "int64"))
	keys := make([]online.EntityKey, 200) // spread over every master's slots
	rows := make([]online.Row, len(keys))
	for i := range keys {
		keys[i] = onlinetest.UserKey(t, v, int64(i))
		rows[i] = online.Row{Key: keys[i], EventTS: time.Now(), Values: []online.Value{online.Int64(int64(i))}}
	}
	require.NoError(t, s.Write(ctx, v, rows))
	req := online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: keys}}}

	c.Nodes[2].Kill()
	_, err := s.Read(ctx, req)
	require.ErrorIs(t, err, online.ErrUnavailable)
	require.ErrorContains(t, err, c.Nodes[0].Addr)

	c.Nodes[2].Start() // empty again (nothing persisted) but owning its slots
	require.NoError(t, c.WaitOK())
	var res *online.ReadResult
	for deadline := time.Now().Add(30 * time.Second); ; {
		if res, err = s.Read(ctx, req); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, err)
	present := 0
	for i := range keys {
		if res.Columns[0].Statuses[i] == online.Present {
			present++
			require.Equal(t, int64(i), res.Columns[0].Values[i].Int64())
		}
	}
	require.Greater(t, present, 0, "rows on the surviving masters are still there")
	require.Less(t, present, len(keys), "rows of the restarted master are gone")
}

// TestWrongPasswordIsUnavailable: a server that refuses our credentials is a store we cannot
// use, like one we cannot reach (the CLI exits 3 for both), and the password is never printed.
func TestWrongPasswordIsUnavailable(t *testing.T) {
	srv := testenv.StartRedis(t)
	require.NoError(t, srv.RequirePassword("right-pw"))
	ctx := context.Background()
	for _, u := range []string{"redis://:wrong-pw@" + srv.Addr + "/0", "redis://" + srv.Addr + "/0"} {
		_, err := Open(ctx, u, Options{})
		require.ErrorIs(t, err, online.ErrUnavailable, u)
		require.NotContains(t, err.Error(), "wrong-pw")
		require.ErrorContains(t, err, srv.Addr)
	}
	s, err := Open(ctx, "redis://:right-pw@"+srv.Addr+"/0", Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// TestUnparsableURLNeverPrintsPassword: the parser quotes the URL it rejects; Open must not.
func TestUnparsableURLNeverPrintsPassword(t *testing.T) {
	for _, u := range []string{"redis://:hunter2@localhost:port/0", "redis://:hun ter2@localhost:6379/0", "redis://u:hunter2@local host:6379/x"} {
		_, err := Open(context.Background(), u, Options{})
		require.ErrorIs(t, err, online.ErrInvalidArgument, u)
		require.NotContains(t, err.Error(), "hunter2", u)
		require.NotContains(t, err.Error(), "hun ter2", u)
		require.ErrorContains(t, err, "open redis online store")
	}
}
