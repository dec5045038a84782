package redis

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

// waitPending waits until n reads are queued behind the round trips in flight.
func waitPending(t *testing.T, s *Store, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		s.coalesce.mu.Lock()
		defer s.coalesce.mu.Unlock()
		return len(s.coalesce.pending) == n
	}, 10*time.Second, time.Millisecond)
}

// TestQueuedReadsShareOnePipeline: while maxInflight reads wait on a stalled Redis, further
// concurrent reads queue and then go out together in one pipeline, each getting its own
// entity's values.
func TestQueuedReadsShareOnePipeline(t *testing.T) {
	srv := testenv.StartRedis(t)
	client := newSingleClient(srv.Addr)
	hook := &roundTrips{}
	client.AddHook(hook)
	s := New(client, Options{})
	defer s.Close()
	s.coalesce.wait = time.Hour // queued reads stay queued however long the pause lasts
	ctx := context.Background()
	v := onlinetest.MustView(t, onlinetest.Project(t), onlinetest.FeatureView("v", []string{"user"}, 0, "int64"))
	const n = 20
	keys := make([]online.EntityKey, n)
	rows := make([]online.Row, n)
	for i := range keys {
		keys[i] = onlinetest.UserKey(t, v, int64(i))
		rows[i] = online.Row{Key: keys[i], EventTS: time.Now(), Values: []online.Value{online.Int64(int64(i * 10))}}
	}
	require.NoError(t, s.Write(ctx, v, rows))
	read := func(i int) (*online.ReadResult, error) {
		return s.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: keys[i : i+1]}}})
	}
	for range maxInflight + 1 { // open the connections the in-flight reads will use
		_, err := read(0)
		require.NoError(t, err)
	}

	srv.Pause()
	hook.reset()
	var wg sync.WaitGroup
	got := make([]int64, n)
	errs := make([]error, n)
	start := func(i int) {
		wg.Go(func() {
			res, err := read(i)
			errs[i] = err
			if err == nil {
				got[i] = res.Columns[0].Values[0].Int64()
			}
		})
	}
	for i := range maxInflight { // these go out at once and wait on the paused server
		start(i)
	}
	require.Eventually(t, func() bool {
		s.coalesce.mu.Lock()
		defer s.coalesce.mu.Unlock()
		return s.coalesce.inflight == maxInflight
	}, 10*time.Second, time.Millisecond)
	for i := maxInflight; i < n; i++ {
		start(i)
	}
	waitPending(t, s, n-maxInflight)
	srv.Resume()
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "read %d", i)
		require.Equal(t, int64(i*10), got[i], "read %d got another entity's value", i)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	require.Equal(t, maxInflight, hook.commands, "the first reads are plain HMGETs")
	require.Equal(t, []int{n - maxInflight}, hook.pipelines, "the queued reads share one pipeline")
}

// TestQueuedReadHonoursDeadline: a read queued behind a stalled round trip returns when its
// deadline passes, as unavailable and deadline exceeded, and the reads after it still work.
func TestQueuedReadHonoursDeadline(t *testing.T) {
	srv := testenv.StartRedis(t)
	s := New(newSingleClient(srv.Addr), Options{})
	defer s.Close()
	s.coalesce.wait = time.Hour // the read stays queued until its deadline
	v := onlinetest.MustView(t, onlinetest.Project(t), onlinetest.FeatureView("v", []string{"user"}, 0, "int64"))
	req := online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: []online.EntityKey{onlinetest.UserKey(t, v, 1)}}}}
	_, err := s.Read(context.Background(), req)
	require.NoError(t, err)

	srv.Pause()
	var wg sync.WaitGroup
	for range maxInflight {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = s.Read(ctx, req)
		})
	}
	require.Eventually(t, func() bool {
		s.coalesce.mu.Lock()
		defer s.coalesce.mu.Unlock()
		return s.coalesce.inflight == maxInflight
	}, 10*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = s.Read(ctx, req)
	require.ErrorIs(t, err, online.ErrUnavailable)
	require.ErrorContains(t, err, srv.Addr)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)

	srv.Resume()
	wg.Wait()
	res, err := s.Read(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, online.NotFound, res.Columns[0].Statuses[0])
}

// TestStalledRoundTripsAreNotWaitedOn: a read queued behind round trips that do not come back
// (Redis paused) leaves the queue after maxQueueWait and makes its own attempt, so its own
// deadline, not the stalled reads', bounds it.
func TestStalledRoundTripsAreNotWaitedOn(t *testing.T) {
	srv := testenv.StartRedis(t)
	s := New(newSingleClient(srv.Addr), Options{})
	defer s.Close()
	v := onlinetest.MustView(t, onlinetest.Project(t), onlinetest.FeatureView("v", []string{"user"}, 0, "int64"))
	req := online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: []online.EntityKey{onlinetest.UserKey(t, v, 1)}}}}
	_, err := s.Read(context.Background(), req)
	require.NoError(t, err)

	srv.Pause()
	var wg sync.WaitGroup
	for range maxInflight {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = s.Read(ctx, req)
		})
	}
	require.Eventually(t, func() bool {
		s.coalesce.mu.Lock()
		defer s.coalesce.mu.Unlock()
		return s.coalesce.inflight == maxInflight
	}, 10*time.Second, time.Millisecond)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = s.Read(ctx, req)
	}()
	// The third read is queued, then leaves the queue for its own round trip.
	require.Eventually(t, func() bool {
		s.coalesce.mu.Lock()
		defer s.coalesce.mu.Unlock()
		return s.coalesce.inflight == maxInflight+1 && len(s.coalesce.pending) == 0
	}, 10*time.Second, time.Millisecond)
	srv.Resume()
	<-done
	wg.Wait()
	s.coalesce.mu.Lock()
	defer s.coalesce.mu.Unlock()
	require.Zero(t, s.coalesce.inflight, "every round trip was handed back")
}
