package redis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

// Benchmarks run against the package's throwaway Redis, or against QUIVER_BENCH_REDIS
// (host:port) when set, so that bench.sh can put go-redis and redis-benchmark on the same
// server. See docs/BENCHMARKS.md.

const benchEntities = 10_000 // distinct entities written, then read at random

func benchAddr() string {
	if a := os.Getenv("QUIVER_BENCH_REDIS"); a != "" {
		return a
	}
	return single.Addr
}

// benchViews are three views of ten features each: 30 features per entity.
func benchViews(b *testing.B, project string) []*online.View {
	types := []string{"int64", "float64", "float32", "int32", "bool", "string", "int64", "float64", "array<float32>", "timestamp"}
	var views []*online.View
	for i := range 3 {
		fv := onlinetest.FeatureView(fmt.Sprintf("view_%d", i), []string{"user"}, 7*24*time.Hour)
		for j, ty := range types {
			fv.Features = append(fv.Features, definitions.Field{Name: fmt.Sprintf("f%d_%d", i, j), Type: definitions.MustType(ty)})
		}
		views = append(views, onlinetest.MustView(b, project, fv))
	}
	return views
}

func benchRow(v *online.View, key online.EntityKey, id int, ev time.Time) online.Row {
	return online.Row{Key: key, EventTS: ev, CreatedTS: ev, Values: []online.Value{
		online.Int64(int64(id)), online.Float64(float64(id) / 3), online.Float32(1.5), online.Int32(int32(id)),
		online.Bool(id%2 == 0), online.String("segment-" + fmt.Sprint(id%17)), online.Int64(int64(id) * 7),
		online.Float64(0.25), online.Float32s([]float32{0.1, 0.2, 0.3, 0.4}), online.Timestamp(ev),
	}}
}

var benchSeq atomic.Int64

func BenchmarkRead(b *testing.B) {
	ctx := context.Background()
	s := New(newBenchClient(), Options{})
	defer s.Close()
	project := fmt.Sprintf("bench%d", benchSeq.Add(1))
	views := benchViews(b, project)
	keys := make([]online.EntityKey, benchEntities)
	now := time.Now()
	for _, v := range views {
		rows := make([]online.Row, benchEntities)
		for i := range rows {
			if v == views[0] {
				keys[i] = onlinetest.UserKey(b, v, int64(i))
			}
			rows[i] = benchRow(v, keys[i], i, now)
		}
		if err := s.Write(ctx, v, rows); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range []int{1, 100} {
		for _, conc := range []int{1, 50} {
			b.Run(fmt.Sprintf("entities=%d/views=3/features=30/conc=%d", n, conc), func(b *testing.B) {
				request := func(seed int) online.ReadRequest {
					ks := make([]online.EntityKey, n)
					for i := range ks {
						ks[i] = keys[(seed*n+i*7919)%benchEntities]
					}
					req := online.ReadRequest{}
					for _, v := range views {
						req.Views = append(req.Views, online.ViewRead{View: v, Keys: ks})
					}
					return req
				}
				runLatency(b, conc, n, func(seed int) error {
					res, err := s.Read(ctx, request(seed))
					if err == nil && res.Columns[0].Statuses[0] != online.Present {
						err = fmt.Errorf("status %v", res.Columns[0].Statuses[0])
					}
					return err
				})
			})
		}
	}
}

// runLatency runs op with conc goroutines, b.N times in all, and reports ops/s, rows/s (rows
// per op), and p50/p99 latency.
func runLatency(b *testing.B, conc, rows int, op func(seed int) error) {
	b.ReportAllocs()
	var mu sync.Mutex
	var all []time.Duration
	var seq atomic.Int64
	b.ResetTimer()
	start := time.Now()
	if conc == 1 {
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t0 := time.Now()
			if err := op(int(seq.Add(1))); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		all = lat
	} else {
		var wg sync.WaitGroup
		var failed atomic.Value
		var next atomic.Int64
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lat := make([]time.Duration, 0, b.N/conc+1)
				for next.Add(1) <= int64(b.N) {
					t0 := time.Now()
					if err := op(int(seq.Add(1))); err != nil {
						failed.Store(err)
						return
					}
					lat = append(lat, time.Since(t0))
				}
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	ops := float64(len(all)) / elapsed.Seconds()
	b.ReportMetric(ops, "ops/s")
	b.ReportMetric(ops*float64(rows), "rows/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[min(len(all)-1, len(all)*99/100)].Microseconds()), "p99-µs")
}

// BenchmarkWrite writes batches of rows of a view of ten features, every row newer than the
// stored one (so each is really written: the guard does not rewrite a row identical to the
// stored one), and reports view-rows/s.
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	for _, conc := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("features=10/batch=2048/conc=%d", conc), func(b *testing.B) {
			s := New(newBenchClient(), Options{})
			defer s.Close()
			v := benchViews(b, fmt.Sprintf("bench%d", benchSeq.Add(1)))[0]
			const batch = 2048
			keys := make([]online.EntityKey, 100_000)
			for i := range keys {
				keys[i] = onlinetest.UserKey(b, v, int64(i))
			}
			// Rows are built up front: building them is the caller's work. Each write stamps
			// a copy of its batch with a new time, a microsecond per write later than the last.
			base := time.Now().Add(-time.Hour)
			batches := make([][]online.Row, len(keys)/batch)
			for j := range batches {
				batches[j] = make([]online.Row, batch)
				for i := range batches[j] {
					id := j*batch + i
					batches[j][i] = benchRow(v, keys[id], id, base)
				}
			}
			bufs := sync.Pool{New: func() any { return new([batch]online.Row) }}
			runLatency(b, conc, batch, func(seed int) error {
				buf := bufs.Get().(*[batch]online.Row)
				defer bufs.Put(buf)
				rows := buf[:]
				copy(rows, batches[seed%len(batches)])
				ev := base.Add(time.Duration(seed) * time.Microsecond)
				for i := range rows {
					rows[i].EventTS, rows[i].CreatedTS = ev, ev
				}
				return s.Write(ctx, v, rows)
			})
		})
	}
}

// newBenchClient has a connection per benchmark goroutine, as redis-benchmark -c 50 has. A
// server run under valgrind (QUIVER_BENCH_CALLGRIND) answers a pipeline in seconds.
func newBenchClient() *goredis.Client {
	o := &goredis.Options{Addr: benchAddr(), ContextTimeoutEnabled: true, PoolSize: 64}
	if os.Getenv("QUIVER_BENCH_CALLGRIND") != "" {
		o.ReadTimeout, o.WriteTimeout = 10*time.Minute, 10*time.Minute
	}
	return goredis.NewClient(o)
}

// round2WriteScript is the guard as of issue 17's round 2 (2d2ff85): every row probed with
// PEXPIRETIME, then HGET, HSET and PERSIST or PEXPIREAT as needed. BenchmarkGuard measures
// it beside writeScript; TestBatchedGuardMatchesPerKeyGuard holds writeScript to the
// per-row outcome.
const round2WriteScript = `
local field = ARGV[1]
local persist = ARGV[2] == '1'
local grace = tonumber(ARGV[3])
local unpack = struct.unpack
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local written = 0
for i, key in ipairs(KEYS) do
  local new = ARGV[2 + 2 * i]
  local exp = redis.call('PEXPIRETIME', key)
  local write = true
  if exp ~= -2 then
    local old = redis.call('HGET', key, field)
    if old and #old >= 17 and string.byte(old, 1) == string.byte(new, 1) then
      local n1, n2, n3, n4 = unpack('>I4I4I4I4', new, 2)
      local o1, o2, o3, o4 = unpack('>I4I4I4I4', old, 2)
      if n1 ~= o1 then write = n1 > o1
      elseif n2 ~= o2 then write = n2 > o2
      elseif n3 ~= o3 then write = n3 > o3
      else write = n4 >= o4 end
    end
  end
  if write then
    redis.call('HSET', key, field, new)
    if persist then
      if exp >= 0 then redis.call('PERSIST', key) end
    elseif exp ~= -1 then
      local target = math.max(tonumber(ARGV[3 + 2 * i]), now) + grace
      if exp == -2 or target > exp then redis.call('PEXPIREAT', key, target) end
    end
    written = written + 1
  end
end
return written
`

// BenchmarkGuard measures the stale-write guard's cost to Redis per row, for the round-2
// script and the current one side by side, on four kinds of batch: a first load (every
// entity new), newer rows of stored entities (an incremental run or a push), a replay (the
// same rows again) and stale rows (a backfill older than what is stored); 2048-row batches of
// 10 features, TTL 7 days. It reports Redis's CPU per row (utime + stime of the server, from
// INFO server's process_id and /proc: run it on the server's machine) and EVALSHA's time per
// row (INFO commandstats), besides the client's ns/op. Run against QUIVER_BENCH_REDIS or the
// package's throwaway server; see docs/BENCHMARKS.md, "Issue 29".
//
// CPU time on a shared machine moves with its load; instruction counts do not. With
// QUIVER_BENCH_CALLGRIND=1 and QUIVER_BENCH_REDIS a redis-server run under valgrind
// --tool=callgrind, the benchmark zeroes the server's counters before each measured loop and
// dumps them after it (callgrind_control), naming the dump "<benchmark> rows=<N>".
func BenchmarkGuard(b *testing.B) {
	ctx := context.Background()
	admin := newBenchClient()
	defer admin.Close()
	pid := redisPID(b, admin)
	callgrind := os.Getenv("QUIVER_BENCH_CALLGRIND") != ""
	control := func(args ...string) {
		if !callgrind {
			return
		}
		if out, err := exec.Command("callgrind_control", append(args, strconv.Itoa(pid))...).CombinedOutput(); err != nil {
			b.Fatalf("callgrind_control %v: %v\n%s", args, err, out)
		}
	}
	const batch = 2048
	for _, workload := range []string{"first-load", "newer-rows", "replay", "stale-rows"} {
		for _, sc := range []struct {
			name string
			src  *goredis.Script
		}{{"round2", goredis.NewScript(round2WriteScript)}, {"current", script}} {
			b.Run(fmt.Sprintf("%s/script=%s", workload, sc.name), func(b *testing.B) {
				s := New(newBenchClient(), Options{})
				defer s.Close()
				s.script = sc.src
				v := benchViews(b, fmt.Sprintf("guard%d", benchSeq.Add(1)))[0]
				base := time.Now().Add(-time.Hour)
				rows := make([]online.Row, batch)
				fill := func(first int, ev time.Time) []online.Row {
					for i := range rows {
						id := first + i
						rows[i] = benchRow(v, onlinetest.UserKey(b, v, int64(id)), id, ev)
					}
					return rows
				}
				const stored = 50 // batches written before the measurement, for the rewrites
				if workload != "first-load" {
					ev := base
					if workload == "stale-rows" {
						ev = base.Add(time.Hour)
					}
					for j := range stored {
						if err := s.Write(ctx, v, fill(j*batch, ev)); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportAllocs()
				// Building the rows is not timed and costs Redis nothing: Redis's time over the
				// loop is the writes'.
				_, us0 := commandStat(b, admin, "evalsha")
				c0 := procCPU(b, pid)
				control("-z")
				n := 0
				for b.Loop() {
					b.StopTimer()
					var r []online.Row
					switch workload {
					case "first-load":
						r = fill((stored+n)*batch, base)
					case "newer-rows":
						r = fill(n%stored*batch, base.Add(time.Duration(n+1)*time.Millisecond))
					case "replay":
						r = fill(n%stored*batch, base)
					case "stale-rows":
						r = fill(n%stored*batch, base.Add(-time.Duration(n+1)*time.Millisecond))
					}
					b.StartTimer()
					if err := s.Write(ctx, v, r); err != nil {
						b.Fatal(err)
					}
					n++
				}
				control("-d", fmt.Sprintf("%s rows=%d", b.Name(), n*batch))
				cpu := procCPU(b, pid) - c0
				_, us1 := commandStat(b, admin, "evalsha")
				evalUS := us1 - us0
				b.ReportMetric(float64(cpu.Microseconds())/float64(n*batch), "redis-cpu-µs/row")
				b.ReportMetric(float64(evalUS)/float64(n*batch), "evalsha-µs/row")
			})
		}
	}
}

// redisPID is the server's process id (INFO server).
func redisPID(b *testing.B, c *goredis.Client) int {
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				b.Fatal(err)
			}
			return pid
		}
	}
	b.Fatal("INFO server has no process_id")
	return 0
}

// procCPU is process pid's utime + stime (/proc/PID/stat, in 10 ms ticks).
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("redis-server's CPU time (is it on this machine?): %v", err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// commandStat returns a command's calls and microseconds from INFO commandstats.
func commandStat(b *testing.B, c *goredis.Client, name string) (calls, usec int64) {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+name+":")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return calls, usec
}
