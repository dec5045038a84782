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
// process's CPU per row and its peak RSS.
//
//	writebench -addr 127.0.0.1:6379 -redis-pid 1234 -shape materialize -rows 1000000
//
// It uses only what online/redis has exported since before issue 29, so bench-write.sh can
// build it against an older revision of the store for a before/after in one run.
package main

import (
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
	Shape             string  `json:"shape"`
	Rows              int     `json:"rows"`
	Entities          int     `json:"entities"`
	Batch             int     `json:"batch"`
	Writers           int     `json:"writers"`
	Seconds           float64 `json:"seconds"`
	RowsPerSecond     float64 `json:"rows_per_s"`
	RedisCPUPerRow    float64 `json:"redis_cpu_us_per_row"`
	RedisBusy         float64 `json:"redis_busy"`
	EvalshaUSPerRow   float64 `json:"evalsha_us_per_row"`
	EvalshaCalls      int64   `json:"evalsha_calls"`
	ClientCPUPerRow   float64 `json:"client_cpu_us_per_row"`
	PeakRSSMiB        float64 `json:"peak_rss_mib"`
	RedisUsedMemoryMB float64 `json:"redis_used_memory_mib"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "the Redis server's host:port")
	pid := flag.Int("redis-pid", 0, "the Redis server's process id, for its CPU time (0: not measured)")
	shape := flag.String("shape", "materialize", "materialize (2048-row batches, 2 in flight) or push (1000-row batches, 4 writers)")
	rows := flag.Int("rows", 1_000_000, "rows to write")
	entities := flag.Int("entities", 1_000_000, "distinct entities; row i is entity i mod entities")
	ttl := flag.Duration("ttl", 7*24*time.Hour, "the view's TTL (0: none)")
	project := flag.String("project", "writebench", "the project the keys are written under")
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
	res, err := run(*addr, *pid, *shape, *rows, *entities, *ttl, *project)
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "writebench:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

func run(addr string, pid int, shape string, rows, entities int, ttl time.Duration, project string) (*result, error) {
	res := &result{Shape: shape, Rows: rows, Entities: entities}
	switch shape {
	case "materialize":
		res.Batch, res.Writers = 2048, 2
	case "push":
		res.Batch, res.Writers = 1000, 4
	default:
		return nil, fmt.Errorf("-shape %q: want materialize or push", shape)
	}
	if rows <= 0 || entities <= 0 {
		return nil, fmt.Errorf("-rows and -entities must be positive (got %d and %d)", rows, entities)
	}
	v, err := benchView(project, ttl)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	store := redis.New(goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true, PoolSize: 16}), redis.Options{})
	defer store.Close()
	admin := goredis.NewClient(&goredis.Options{Addr: addr})
	defer admin.Close()
	if err := admin.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis %s: %w", addr, err)
	}

	gen := newGenerator(v, entities)
	calls0, usec0, err := evalsha(ctx, admin)
	if err != nil {
		return nil, err
	}
	redis0, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	self0 := selfCPU()
	start := time.Now()

	var next atomic.Int64 // the next batch to write
	nbatches := (rows + res.Batch - 1) / res.Batch
	var wg sync.WaitGroup
	errs := make(chan error, res.Writers)
	for range res.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := gen.newBatch(res.Batch)
			for {
				b := int(next.Add(1) - 1)
				if b >= nbatches {
					return
				}
				first := b * res.Batch
				batch := gen.fill(buf, first, min(first+res.Batch, rows))
				if err := store.Write(ctx, v, batch); err != nil {
					errs <- err
					next.Store(int64(nbatches))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}

	elapsed := time.Since(start)
	self1 := selfCPU()
	redis1, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	calls1, usec1, err := evalsha(ctx, admin)
	if err != nil {
		return nil, err
	}
	n := float64(rows)
	res.Seconds = elapsed.Seconds()
	res.RowsPerSecond = n / elapsed.Seconds()
	if pid > 0 {
		res.RedisCPUPerRow = float64((redis1 - redis0).Microseconds()) / n
		res.RedisBusy = (redis1 - redis0).Seconds() / elapsed.Seconds()
	}
	res.EvalshaCalls = calls1 - calls0
	res.EvalshaUSPerRow = float64(usec1-usec0) / n
	res.ClientCPUPerRow = float64((self1 - self0).Microseconds()) / n
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		res.PeakRSSMiB = float64(ru.Maxrss) / 1024
	}
	if info, err := admin.Info(ctx, "memory").Result(); err == nil {
		if used, ok := infoField(info, "used_memory"); ok {
			res.RedisUsedMemoryMB = used / (1 << 20)
		}
	}
	return res, nil
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
