// Command writebench measures the Redis online store's write path — online/redis through the
// online.Writer interface, stale-write guard and all — in the two shapes that call it, for
// docs/BENCHMARKS.md (run by online/redis/bench-write.sh, which puts redis-benchmark's
// pipelined HSET ceiling beside it on the same server):
//
//	materialize  batches of 2048 rows, 2 in flight (materialize's online flush)
//	push         batches of 1000 rows from 4 writers (PushFeatures from 4 clients, one Write
//	             of the batch's latest rows each)
//
// Rows are made batch by batch and dropped once written, so memory stays flat in -rows. Row i
// is entity i mod -entities, and every pass over the entities is one minute newer than the
// last: the first pass creates the keys, later ones rewrite them with newer rows (the rows of
// incremental materialization runs). The view has ten features (~145 bytes a row) and
// -ttl. It prints one JSON object: rows/s, the Redis server's CPU per row (utime + stime of
// -redis-pid from /proc over the run), EVALSHA's time per row from INFO commandstats, this
// process's CPU per row and its peak RSS. With -step N it writes N rows each time a line
// arrives on stdin and prints a JSON line per segment before the total, so a script can
// alternate two builds segment by segment on a machine whose load moves.
//
//	writebench -addr 127.0.0.1:6379 -redis-pid 1234 -shape materialize -rows 1000000
//
// It uses only what online/redis has exported since before issue 29, so bench-write.sh can
// build it against an older revision of the store for a before/after in one run.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/redis"
)

type result struct {
	Shape           string  `json:"shape"`
	Total           bool    `json:"total"` // the whole run (else one -step segment)
	First           int     `json:"first_row"`
	Rows            int     `json:"rows"`
	Entities        int     `json:"entities"`
	Batch           int     `json:"batch"`
	Writers         int     `json:"writers"`
	Seconds         float64 `json:"seconds"`
	RowsPerSecond   float64 `json:"rows_per_s"`
	RedisCPUSeconds float64 `json:"redis_cpu_s"`
	RedisCPUPerRow  float64 `json:"redis_cpu_us_per_row"`
	RedisBusy       float64 `json:"redis_busy"`
	EvalshaSeconds  float64 `json:"evalsha_s"`
	EvalshaUSPerRow float64 `json:"evalsha_us_per_row"`
	EvalshaCalls    int64   `json:"evalsha_calls"`
	ClientCPU       float64 `json:"client_cpu_s"`
	ClientCPUPerRow float64 `json:"client_cpu_us_per_row"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
	RedisUsedMiB    float64 `json:"redis_used_memory_mib"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "the Redis server's host:port")
	pid := flag.Int("redis-pid", 0, "the Redis server's process id, for its CPU time (0: not measured)")
	shape := flag.String("shape", "materialize", "materialize (2048-row batches, 2 in flight) or push (1000-row batches, 4 writers)")
	rows := flag.Int("rows", 1_000_000, "rows to write")
	entities := flag.Int("entities", 1_000_000, "distinct entities; row i is entity i mod entities")
	ttl := flag.Duration("ttl", 7*24*time.Hour, "the view's TTL (0: none)")
	project := flag.String("project", "writebench", "the project the keys are written under")
	step := flag.Int("step", 0, "write the rows in segments of this many, each when a line arrives on stdin, "+
		"printing a JSON line per segment and one for the total (so a script can alternate two builds)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the writes to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "writebench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "writebench:", err)
			os.Exit(1)
		}
	}
	err := run(*addr, *pid, *shape, *rows, *entities, *ttl, *project, *step)
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "writebench:", err)
		os.Exit(1)
	}
}

// bench writes rows through one store and measures each segment.
type bench struct {
	res     result // the shape, and the totals so far
	pid     int
	view    *online.View
	store   *redis.Store
	admin   *goredis.Client
	gen     *generator
	written int
}

func run(addr string, pid int, shape string, rows, entities int, ttl time.Duration, project string, step int) error {
	b := &bench{res: result{Shape: shape, Entities: entities}, pid: pid}
	switch shape {
	case "materialize":
		b.res.Batch, b.res.Writers = 2048, 2
	case "push":
		b.res.Batch, b.res.Writers = 1000, 4
	default:
		return fmt.Errorf("-shape %q: want materialize or push", shape)
	}
	if rows <= 0 || entities <= 0 || step < 0 {
		return fmt.Errorf("-rows and -entities must be positive and -step not negative (got %d, %d, %d)", rows, entities, step)
	}
	v, err := benchView(project, ttl)
	if err != nil {
		return err
	}
	b.view, b.gen = v, newGenerator(v, entities)
	ctx := context.Background()
	b.store = redis.New(goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true, PoolSize: 16}), redis.Options{})
	defer b.store.Close()
	b.admin = goredis.NewClient(&goredis.Options{Addr: addr})
	defer b.admin.Close()
	if err := b.admin.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", addr, err)
	}
	if step == 0 {
		step = rows
	}
	in := bufio.NewScanner(os.Stdin)
	for first := 0; first < rows; first += step {
		if step < rows && !in.Scan() {
			return fmt.Errorf("stdin closed before row %d", first)
		}
		seg, err := b.segment(ctx, first, min(first+step, rows))
		if err != nil {
			return err
		}
		if step < rows {
			if err := printJSON(seg); err != nil {
				return err
			}
		}
	}
	t := b.res
	t.Total, t.Rows = true, b.written
	t.finish()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		t.PeakRSSMiB = float64(ru.Maxrss) / 1024
	}
	if info, err := b.admin.Info(ctx, "memory").Result(); err == nil {
		if used, ok := infoField(info, "used_memory"); ok {
			t.RedisUsedMiB = used / (1 << 20)
		}
	}
	return printJSON(&t)
}

// segment writes rows [first, end) with the shape's writers and measures them.
func (b *bench) segment(ctx context.Context, first, end int) (*result, error) {
	calls0, usec0, err := evalsha(ctx, b.admin)
	if err != nil {
		return nil, err
	}
	redis0, err := procCPU(b.pid)
	if err != nil {
		return nil, err
	}
	self0 := selfCPU()
	start := time.Now()

	batch := b.res.Batch
	var next atomic.Int64 // the next batch to write
	nbatches := (end - first + batch - 1) / batch
	var wg sync.WaitGroup
	errs := make(chan error, b.res.Writers)
	for range b.res.Writers {
		wg.Go(func() {
			buf := b.gen.newBatch(batch)
			for {
				i := int(next.Add(1) - 1)
				if i >= nbatches {
					return
				}
				from := first + i*batch
				rows := b.gen.fill(buf, from, min(from+batch, end))
				if err := b.store.Write(ctx, b.view, rows); err != nil {
					errs <- err
					next.Store(int64(nbatches))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}

	elapsed := time.Since(start)
	self1 := selfCPU()
	redis1, err := procCPU(b.pid)
	if err != nil {
		return nil, err
	}
	calls1, usec1, err := evalsha(ctx, b.admin)
	if err != nil {
		return nil, err
	}
	seg := result{Shape: b.res.Shape, First: first, Rows: end - first, Entities: b.res.Entities, Batch: batch, Writers: b.res.Writers,
		Seconds: elapsed.Seconds(), RedisCPUSeconds: (redis1 - redis0).Seconds(), EvalshaSeconds: float64(usec1-usec0) / 1e6,
		EvalshaCalls: calls1 - calls0, ClientCPU: (self1 - self0).Seconds()}
	seg.finish()
	b.written += seg.Rows
	b.res.Seconds += seg.Seconds
	b.res.RedisCPUSeconds += seg.RedisCPUSeconds
	b.res.EvalshaSeconds += seg.EvalshaSeconds
	b.res.EvalshaCalls += seg.EvalshaCalls
	b.res.ClientCPU += seg.ClientCPU
	return &seg, nil
}

// finish computes the rates from the sums.
func (r *result) finish() {
	n := float64(r.Rows)
	r.RowsPerSecond = n / r.Seconds
	r.RedisCPUPerRow = r.RedisCPUSeconds * 1e6 / n
	r.RedisBusy = r.RedisCPUSeconds / r.Seconds
	r.EvalshaUSPerRow = r.EvalshaSeconds * 1e6 / n
	r.ClientCPUPerRow = r.ClientCPU * 1e6 / n
}

func printJSON(r *result) error {
	out, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(out))
	return err
}

// benchView is a view of ten features of the usual kinds, ~145 bytes a row encoded: the row
// the online/redis benchmarks and scripts/bench.sh's ceiling use.
func benchView(project string, ttl time.Duration) (*online.View, error) {
	types := []string{"int64", "float64", "float32", "int32", "bool", "string", "int64", "float64", "array<float32>", "timestamp"}
	fv := &definitions.FeatureView{Name: "writebench", Entities: []string{"user"}, TTL: definitions.Duration(ttl), Online: true}
	for j, ty := range types {
		t, err := definitions.ParseType(ty)
		if err != nil {
			return nil, err
		}
		fv.Features = append(fv.Features, definitions.Field{Name: "f" + strconv.Itoa(j), Type: t})
	}
	user := definitions.Entity{Name: "user", JoinKeys: []definitions.Field{{Name: "user_id", Type: definitions.Type{Elem: definitions.Int64}}}}
	return online.NewView(project, fv, []definitions.Entity{user})
}

// generator makes the rows: each batch's rows reuse their value slices.
type generator struct {
	view     *online.View
	entities int
	base     time.Time
	segments []online.Value
	vector   online.Value
}

func newGenerator(v *online.View, entities int) *generator {
	g := &generator{view: v, entities: entities, base: time.Now().Add(-24 * time.Hour).Truncate(time.Second),
		vector: online.Float32s([]float32{0.1, 0.2, 0.3, 0.4})}
	for i := range 17 {
		g.segments = append(g.segments, online.String("segment-"+strconv.Itoa(i)))
	}
	return g
}

func (g *generator) newBatch(n int) []online.Row {
	rows := make([]online.Row, n)
	for i := range rows {
		rows[i].Values = make([]online.Value, len(g.view.Features))
	}
	return rows
}

// fill makes rows [first, end) in buf and returns them.
func (g *generator) fill(buf []online.Row, first, end int) []online.Row {
	rows := buf[:end-first]
	var keyBuf []byte
	for i := range rows {
		n := first + i
		id := n % g.entities
		ev := g.base.Add(time.Duration(n/g.entities) * time.Minute)
		key, err := g.view.AppendKey(keyBuf[:0], online.Int64(int64(id)))
		if err != nil {
			panic(err) // an int64 key always encodes
		}
		r := &rows[i]
		r.Key, r.EventTS, r.CreatedTS = key, ev, ev
		vals := r.Values
		vals[0] = online.Int64(int64(id))
		vals[1] = online.Float64(float64(id) / 3)
		vals[2] = online.Float32(1.5)
		vals[3] = online.Int32(int32(id))
		vals[4] = online.Bool(id%2 == 0)
		vals[5] = g.segments[id%len(g.segments)]
		vals[6] = online.Int64(int64(id) * 7)
		vals[7] = online.Float64(0.25)
		vals[8] = g.vector
		vals[9] = online.Timestamp(ev)
	}
	return rows
}

// procCPU is the utime + stime of process pid (0: none), from /proc/PID/stat in clock ticks
// of 10 ms (USER_HZ is 100 on Linux).
func procCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("redis process CPU: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("redis process CPU: malformed /proc stat")
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime and stime are fields 14, 15
	if len(f) < 13 {
		return 0, errors.New("redis process CPU: short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("redis process CPU: malformed /proc stat")
	}
	return time.Duration(u+st) * 10 * time.Millisecond, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// evalsha returns EVALSHA's calls and microseconds from INFO commandstats.
func evalsha(ctx context.Context, c *goredis.Client) (calls, usec int64, err error) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, 0, fmt.Errorf("info commandstats: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, val, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				calls, _ = strconv.ParseInt(val, 10, 64)
			case "usec":
				usec, _ = strconv.ParseInt(val, 10, 64)
			}
		}
	}
	return calls, usec, nil
}

func infoField(info, name string) (float64, bool) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}
