package redis

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Read coalescing (auto-pipelining). A Read's HMGETs normally go out as their own command or
// pipeline. When maxInflight reads are already waiting on a healthy Redis, a new read does
// not open another round trip: it queues, and the next round trip to finish sends every
// queued read's HMGETs in one pipeline. Under concurrency this turns N reads into one write and one read
// system call on each side instead of N of each, which is most of a 1-entity read's CPU in
// the server and in Redis (docs/BENCHMARKS.md). A read alone (or one of the first
// maxInflight) goes straight out as before, so no latency is added when the store is idle.

// maxInflight is how many round trips reads may have in flight before they start queueing.
const maxInflight = 2

// maxQueueWait is how long a read stays queued before it gives up on the stalled round trips
// ahead of it and goes out alone. A healthy round trip takes well under a millisecond.
const maxQueueWait = 5 * time.Millisecond

// hmgetJob is one Read's commands: the HMGET of keys[c] asks for fields[ends[c-1]:ends[c]].
type hmgetJob struct {
	ctx    context.Context
	keys   []string
	fields []string
	ends   []int

	cmds      []*goredis.SliceCmd
	err       error
	done      chan struct{}
	abandoned atomic.Bool // the caller stopped waiting (its ctx ended)
}

type coalescer struct {
	mu       sync.Mutex
	inflight int
	pending  []*hmgetJob
	failing  bool          // the last round trip failed: reads go straight out, none queue
	wait     time.Duration // maxQueueWait when 0 (tests set it)
}

// hmget runs the job's HMGETs, alone or in a shared pipeline, and returns their commands
// (each with its own error) and the first error.
func (s *Store) hmget(ctx context.Context, keys, fields []string, ends []int) ([]*goredis.SliceCmd, error) {
	j := &hmgetJob{ctx: ctx, keys: keys, fields: fields, ends: ends, cmds: make([]*goredis.SliceCmd, len(keys))}
	c := &s.coalesce
	c.mu.Lock()
	if c.inflight < maxInflight || c.failing {
		c.inflight++
		c.mu.Unlock()
		s.runJobs(ctx, []*hmgetJob{j})
		s.next(j.err)
		return j.cmds, j.err
	}
	j.done = make(chan struct{})
	c.pending = append(c.pending, j)
	c.mu.Unlock()
	wait := c.wait
	if wait == 0 {
		wait = maxQueueWait
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-j.done:
		return j.cmds, j.err
	case <-ctx.Done():
		j.abandoned.Store(true)
		return nil, ctx.Err()
	case <-timer.C:
	}
	// Queued too long: the round trips ahead are stalled (Redis slow, down, or being dialled).
	// Unless a batch has taken it already, go out alone, as without coalescing.
	c.mu.Lock()
	if i := slices.Index(c.pending, j); i >= 0 {
		c.pending = slices.Delete(c.pending, i, i+1)
		c.inflight++
		c.mu.Unlock()
		s.runJobs(ctx, []*hmgetJob{j})
		s.next(j.err)
		return j.cmds, j.err
	}
	c.mu.Unlock()
	select {
	case <-j.done:
		return j.cmds, j.err
	case <-ctx.Done():
		j.abandoned.Store(true)
		return nil, ctx.Err()
	}
}

// next hands the round trip just finished (whose error was err) to the reads queued
// meanwhile, all in one pipeline sent from a new goroutine (so that the caller returns now),
// or frees it. After a failed round trip reads do not queue: each queued read, and each new
// one until a round trip succeeds again, makes its own attempt under its own context, as
// without coalescing, so a store that is down or stalled answers each caller as before.
func (s *Store) next(err error) {
	c := &s.coalesce
	c.mu.Lock()
	c.settle(err)
	if len(c.pending) == 0 {
		c.inflight--
		c.mu.Unlock()
		return
	}
	batch := c.pending
	c.pending = nil
	if c.failing {
		c.inflight--
		c.mu.Unlock()
		for _, j := range batch {
			go func() {
				s.runJobs(j.ctx, []*hmgetJob{j})
				close(j.done)
				c.mu.Lock()
				c.settle(j.err)
				c.mu.Unlock()
			}()
		}
		return
	}
	c.mu.Unlock()
	go func() {
		ctx, cancel := batchContext(batch)
		s.runJobs(ctx, batch)
		cancel()
		var first error
		for _, j := range batch {
			if first == nil && !j.abandoned.Load() {
				first = j.err
			}
			close(j.done)
		}
		s.next(first)
	}()
}

// settle records how a round trip ended; c.mu is held. A caller's own cancellation says
// nothing about the store.
func (c *coalescer) settle(err error) {
	switch {
	case err == nil:
		c.failing = false
	case !errors.Is(err, context.Canceled):
		c.failing = true
	}
}

// batchContext is the context a shared pipeline runs under: no caller's cancellation (a
// caller that gives up abandons its job, not the others'), and the latest of the callers'
// deadlines, or none when one of them has none.
func batchContext(batch []*hmgetJob) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, j := range batch {
		d, ok := j.ctx.Deadline()
		if !ok {
			return context.Background(), func() {}
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.Background(), latest)
}

// runJobs sends the HMGETs of the jobs not abandoned: one plain command when that is all
// there is, else one pipeline.
func (s *Store) runJobs(ctx context.Context, jobs []*hmgetJob) {
	if len(jobs) == 1 && len(jobs[0].keys) == 1 {
		j := jobs[0]
		hmgetCmds(ctx, j)
		_ = s.client.Process(ctx, j.cmds[0])
		j.err = j.cmds[0].Err()
		return
	}
	pipe := s.client.Pipeline()
	n := 0
	for _, j := range jobs {
		if j.abandoned.Load() {
			continue
		}
		hmgetCmds(ctx, j)
		for _, cmd := range j.cmds {
			_ = pipe.Process(ctx, cmd)
		}
		n++
	}
	if n == 0 {
		return
	}
	if _, err := pipe.Exec(ctx); err != nil {
		for _, j := range jobs {
			if j.abandoned.Load() {
				continue
			}
			// The first failed command of each job is its error.
			for _, cmd := range j.cmds {
				if cerr := cmd.Err(); cerr != nil {
					j.err = cerr
					break
				}
			}
		}
	}
}
