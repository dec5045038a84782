package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	goredis "github.com/redis/go-redis/v9"

	"github.com/quiverfs/quiver/online"
)

// writeScript stores rows of one view in the hashes of their entities, skipping any row older
// than the stored one. KEYS are the entities' hash keys. ARGV[1] is the view's hash field,
// ARGV[2] 1 when the view has no TTL, ARGV[3] the expiry grace in ms; then for each key i,
// ARGV[2+2i] is the encoded row and ARGV[3+2i] the row's event time plus the view's TTL, in
// ms since the epoch (empty, and unread, for a view without TTL). Rows are compared on bytes
// 2..17 of their encoding: (event_ts, created_ts) as order-preserving big-endian integers,
// read as four unsigned 32-bit numbers (exact in Lua's doubles). It returns the number of
// rows written.
//
// The outcome is that of the per-row guard it replaced (legacyWriteScript in the tests):
// HGET, compare, HSET, then PERSIST or PEXPIREAT ... GT on every row —
//   - a view without TTL leaves the key without expiry;
//   - a view with TTL moves the key's expiry to max(event + TTL, now) + grace when that is
//     later, never earlier, and never gives an expiry to a key that had none (another view
//     without TTL keeps it), except a key it creates.
//
// What it costs is set by the Redis calls it makes, each with the same fixed price in Lua
// (argument conversion, command lookup, timing, reply conversion), so it makes as few as it
// can per row and none it can skip:
//   - The first key is probed with PEXPIRETIME (-2: no such key, -1: no expiry, else the
//     expiry). When it does not exist, one EXISTS over the other keys tells whether this call
//     writes only new keys (a first materialization): then each row is an HSETNX, plus
//     PEXPIREAT with a TTL — no HGET, no probe. HSETNX fails only for a key an earlier row of
//     the call created, and that row goes on as below.
//   - Otherwise each row starts with HGET. A stored row tells the key exists: after the HSET,
//     PEXPIREAT ... GT or PERSIST says the rest in one call, whatever the key's expiry. Only
//     a row without a stored value is probed with PEXPIRETIME, to tell a new key (which gets
//     the row's expiry) from an existing one (which keeps a missing expiry).
//   - A row identical to the stored one (a replay) is not written again; a stale row costs
//     its HGET alone.
//   - Numbers passed to redis.call are printed with "%.17g" by Redis; the expiry is passed
//     as a string made with "%d", which is cheaper.
//   - TIME is read once, when a row with a TTL is first written.
const writeScript = `
local call = redis.call
local field = ARGV[1]
local persist = ARGV[2] == '1'
local grace = tonumber(ARGV[3])
local sunpack, byte, fmt, max = struct.unpack, string.byte, string.format, math.max
local n = #KEYS
local first = call('PEXPIRETIME', KEYS[1])
local fresh = first == -2
if fresh then
  for j = 2, n, 1000 do
    if call('EXISTS', unpack(KEYS, j, math.min(j + 999, n))) > 0 then
      fresh = false
      break
    end
  end
end
local now
local written = 0
for i = 1, n do
  local key, new = KEYS[i], ARGV[2 + 2 * i]
  -- probed: exp is the key's PEXPIRETIME before this row (-2: no key, -1: no expiry);
  -- otherwise the key exists and its expiry is unknown. stored: the row is in the hash.
  local probed, exp, write, stored = false, 0, true, false
  if (i == 1 and first == -2) or (fresh and i > 1) then
    -- A key that did not exist when the call started: HSETNX fails only when an earlier row
    -- of this call created it.
    if call('HSETNX', key, field, new) == 1 then
      probed, exp, stored = true, -2, true
    end
  elseif i == 1 then
    probed, exp = true, first
  end
  if not stored then
    local old = call('HGET', key, field)
    if old then
      if old == new then
        stored = true
      elseif #old >= 17 and byte(old, 1) == byte(new, 1) then
        local n1, n2 = sunpack('>I4I4', new, 2)
        local o1, o2 = sunpack('>I4I4', old, 2)
        if n1 ~= o1 then write = n1 > o1
        elseif n2 ~= o2 then write = n2 > o2
        else
          n1, n2 = sunpack('>I4I4', new, 10)
          o1, o2 = sunpack('>I4I4', old, 10)
          if n1 ~= o1 then write = n1 > o1 else write = n2 >= o2 end
        end
      end
    elseif not probed then
      probed, exp = true, call('PEXPIRETIME', key)
    end
  end
  if write then
    if not stored then call('HSET', key, field, new) end
    if persist then
      if not probed or exp >= 0 then call('PERSIST', key) end
    else
      if not now then
        local t = call('TIME')
        now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      end
      local target = max(tonumber(ARGV[3 + 2 * i]), now) + grace
      if not probed then
        call('PEXPIREAT', key, fmt('%d', target), 'GT')
      elseif exp == -2 or (exp ~= -1 and target > exp) then
        call('PEXPIREAT', key, fmt('%d', target))
      end
    end
    written = written + 1
  end
end
return written
`

var script = goredis.NewScript(writeScript)

var _ online.KeptWriter = (*Store)(nil)

// Write implements online.Writer: rows are encoded and checked first, then sent in pipelines
// of Options.WriteBatch rows, RowsPerScript rows per EVALSHA of a script that keeps the newer
// of the stored and the written row (on a cluster, a call's rows share a hash slot).
func (s *Store) Write(ctx context.Context, v *online.View, rows []online.Row) error {
	_, err := s.WriteKept(ctx, v, rows)
	return err
}

// WriteKept implements online.KeptWriter: Write, counting the rows the script stored.
func (s *Store) WriteKept(ctx context.Context, v *online.View, rows []online.Row) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	w, err := encodeRows(v, rows, s.cluster)
	if err != nil {
		return 0, err
	}
	persist := "0"
	if v.TTL == 0 {
		persist = "1"
	}
	c := callConsts{sha: s.script.Hash(), field: field(v), persist: persist, grace: strconv.FormatInt(s.opts.ExpiryGrace.Milliseconds(), 10)}
	var kept int64
	order := make([]int32, 0, min(len(rows), s.opts.WriteBatch))
	for start := 0; start < len(rows); start += s.opts.WriteBatch {
		end := min(start+s.opts.WriteBatch, len(rows))
		order = order[:0]
		for i := start; i < end; i++ {
			order = append(order, int32(i))
		}
		if s.cluster {
			// A script's keys must share a slot: rows of a slot go together, in their order
			// (rows of one key are one slot's, so a later row of a key stays later).
			slices.SortStableFunc(order, func(a, b int32) int { return int(w.slot[a]) - int(w.slot[b]) })
		}
		var n int64
		if v.TTL == 0 && s.firstLoads.try(c.field) {
			// A view without TTL: rows of keys that have no row of it go without the script.
			var rest []int32
			n, rest, err = s.writeNew(ctx, v, w, order, &c)
			kept += n
			if err != nil {
				return kept, err
			}
			s.firstLoads.note(c.field, len(order)-len(rest), len(order))
			order = rest
		}
		if s.watched && len(order) > 0 {
			// Single node: rows out of Lua, decided in the client under WATCH; the rows of
			// a transaction another writer interfered with go on to the script. Off by
			// default: measured, it does not pay (see defaultWatched).
			var rest []int32
			n, rest, err = s.writeWatched(ctx, v, w, order, &c)
			kept += n
			if err != nil {
				return kept, err
			}
			order = rest
		}
		n, err = s.writeChunk(ctx, v, w, order, &c)
		kept += n
		if err != nil {
			return kept, err
		}
	}
	return kept, nil
}

// writeRows is a Write's rows encoded: for row i, strs[3i] is its hash key, strs[3i+1] the
// encoded row and strs[3i+2] the expiry argument (empty for a view without TTL). They are
// slices of one string and the script calls point at them, so a Write allocates per
// pipeline, not per row. slot holds each row's cluster hash slot (on a cluster only).
type writeRows struct {
	strs []string
	slot []uint16
}

// encodeRows encodes and checks every row, so that an invalid row fails the call before
// anything is written.
func encodeRows(v *online.View, rows []online.Row, cluster bool) (*writeRows, error) {
	ends := make([]int, 3*len(rows))
	var arena []byte
	ttlMS := v.TTL.Milliseconds()
	var err error
	for i := range rows {
		r := &rows[i]
		if r.Key == "" {
			return nil, fmt.Errorf("write view %q row %d: empty entity key: %w", v.Name, i, online.ErrInvalidArgument)
		}
		arena = appendHashKey(arena, v.Project, r.Key)
		ends[3*i] = len(arena)
		arena, err = online.EncodeRow(arena, v, r)
		if err != nil {
			return nil, fmt.Errorf("write view %q row %d: %w", v.Name, i, err)
		}
		ends[3*i+1] = len(arena)
		if v.TTL != 0 {
			arena = strconv.AppendInt(arena, r.EventTS.UnixMilli()+ttlMS, 10)
		}
		ends[3*i+2] = len(arena)
		if i == 0 {
			// Rows of a view are about the same size: make room for the others at once.
			arena = slices.Grow(arena, len(arena)*(len(rows)-1)*9/8+64)
		}
	}
	w := &writeRows{strs: make([]string, 3*len(rows))}
	// The string shares arena's memory instead of copying it (as strings.Builder does): arena
	// is not written again, and nothing but these strings keeps it. The copy was 15% of a
	// writer's CPU (a 400 KB string per 2048 rows).
	str := unsafe.String(unsafe.SliceData(arena), len(arena))
	from := 0
	for i, e := range ends {
		w.strs[i] = str[from:e]
		from = e
	}
	if cluster {
		w.slot = make([]uint16, len(rows))
		from := 0
		for i := range rows {
			w.slot[i] = slotOf(arena[from:ends[3*i]])
			from = ends[3*i+2]
		}
	}
	return w, nil
}

// callConsts are a Write's arguments shared by every script call.
type callConsts struct{ sha, field, persist, grace string }

// writeNew writes the rows of order (one pipeline's) that are the first of their view in their
// key with no script: per row, HSETNX of the row, then PEXPIRETIME of the key, pipelined. A
// row is done when HSETNX set the field (the key held no row of the view: there is nothing to
// compare) and the key then has no expiry (-1): a view without TTL leaves its keys without
// expiry, and a key that has none after the field is set cannot be given one by any writer
// (the script gives an expiry only to a key it creates, or moves an existing one later). Every
// other row — the field was there (the script compares), or the key has an expiry (another
// view's TTL, which this row's view lifts) or is gone (it expired meanwhile) — is returned,
// in order, for the script, which then reaches the outcome it would have reached alone (a row
// HSETNX stored compares equal to itself). So a first load of a view without TTL costs two
// plain commands a row instead of a script's calls, and the outcome is the script's. It
// returns the rows done.
func (s *Store) writeNew(ctx context.Context, v *online.View, w *writeRows, order []int32, c *callConsts) (int64, []int32, error) {
	if len(order) == 0 {
		return 0, nil, nil
	}
	if !s.cluster {
		return s.writeNewTx(ctx, v, w, order, c)
	}
	args := make([]any, 0, 6*len(order))
	pipe := s.client.Pipeline()
	for _, i := range order {
		from := len(args)
		args = append(args, "hsetnx", &w.strs[3*i], &c.field, &w.strs[3*i+1], "pexpiretime", &w.strs[3*i])
		pipe.Do(ctx, args[from:from+4:from+4]...)
		pipe.Do(ctx, args[from+4:from+6:from+6]...)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		return 0, nil, s.wrap(ctx, fmt.Sprintf("write view %q", v.Name), err)
	}
	var done int64
	var rest []int32
	for j, i := range order {
		set, _ := cmds[2*j].(*goredis.Cmd).Int64()
		exp, _ := cmds[2*j+1].(*goredis.Cmd).Int64()
		if set == 1 && exp == -1 {
			done++
		} else {
			rest = append(rest, i)
		}
	}
	return done, rest, nil
}

// writeNewTx is writeNew on a single node, one command a row: in one MULTI/EXEC, EXISTS over
// the pipeline's keys and HSETNX of each row. When no key existed (a first load), a row whose
// HSETNX set the field created its key, without expiry, in the same atomic step: it is done.
// Otherwise the rows HSETNX stored are probed with PEXPIRETIME, as writeNew does, and done
// when their key has no expiry.
func (s *Store) writeNewTx(ctx context.Context, v *online.View, w *writeRows, order []int32, c *callConsts) (int64, []int32, error) {
	args := make([]any, 0, 1+len(order)+4*len(order))
	args = append(args, "exists")
	for _, i := range order {
		args = append(args, &w.strs[3*i])
	}
	pipe := s.client.TxPipeline()
	pipe.Do(ctx, args...)
	for _, i := range order {
		from := len(args)
		args = append(args, "hsetnx", &w.strs[3*i], &c.field, &w.strs[3*i+1])
		pipe.Do(ctx, args[from:from+4:from+4]...)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		return 0, nil, s.wrap(ctx, fmt.Sprintf("write view %q", v.Name), err)
	}
	existed, err := cmds[0].(*goredis.Cmd).Int64()
	if err != nil {
		return 0, nil, s.wrap(ctx, fmt.Sprintf("write view %q", v.Name), err)
	}
	set := make([]bool, len(order))
	var probe []int // indexes into order of the rows HSETNX stored, when some key existed
	var done int64
	for j := range order {
		n, _ := cmds[1+j].(*goredis.Cmd).Int64()
		set[j] = n == 1
		switch {
		case !set[j]:
		case existed == 0:
			done++
		default:
			probe = append(probe, j)
		}
	}
	if len(probe) > 0 {
		pipe := s.client.Pipeline()
		for _, j := range probe {
			pipe.Do(ctx, "pexpiretime", &w.strs[3*order[j]])
		}
		res, err := pipe.Exec(ctx)
		if err != nil {
			return done, nil, s.wrap(ctx, fmt.Sprintf("write view %q", v.Name), err)
		}
		for k, j := range probe {
			if exp, _ := res[k].(*goredis.Cmd).Int64(); exp != -1 {
				set[j] = false // the script settles its expiry
			} else {
				done++
			}
		}
	}
	var rest []int32
	for j, i := range order {
		if !set[j] {
			rest = append(rest, i)
		}
	}
	return done, rest, nil
}

// firstLoads remembers, per view field, whether writeNew is worth trying: a write of rows whose
// keys already hold rows of the view pays its two commands on top of the script's, so after a
// pipeline that writeNew mostly could not finish, the next skipFor pipelines of that view go
// straight to the script.
type firstLoads struct{ m sync.Map } // field -> *atomic.Int32: pipelines left to skip

const skipFor = 16

func (f *firstLoads) try(field string) bool {
	c, ok := f.m.Load(field)
	if !ok {
		return true
	}
	n := c.(*atomic.Int32)
	for {
		left := n.Load()
		if left <= 0 {
			return true
		}
		if n.CompareAndSwap(left, left-1) {
			return false
		}
	}
}

func (f *firstLoads) note(field string, done, rows int) {
	if done*10 >= rows*9 {
		return
	}
	c, _ := f.m.LoadOrStore(field, new(atomic.Int32))
	c.(*atomic.Int32).Store(skipFor)
}

// writeChunk sends the rows of order (one pipeline's) as script calls of up to RowsPerScript
// rows — on a cluster, of one slot each — in one pipeline, loading the script and retrying
// once when the server does not have it. Arguments are pointers to strings, which go-redis
// writes without allocating. It returns the number of rows the scripts stored.
func (s *Store) writeChunk(ctx context.Context, v *online.View, w *writeRows, order []int32, c *callConsts) (int64, error) {
	if len(order) == 0 {
		return 0, nil
	}
	per := s.opts.RowsPerScript
	// Script calls, as [from, to) spans of order.
	var calls [][2]int
	for from := 0; from < len(order); {
		to := min(from+per, len(order))
		if s.cluster {
			sl := w.slot[order[from]]
			for j := from + 1; j < to; j++ {
				if w.slot[order[j]] != sl {
					to = j
					break
				}
			}
		}
		calls = append(calls, [2]int{from, to})
		from = to
	}
	args := make([]any, 0, 6*len(calls)+3*len(order))
	numKeys := make([]string, len(calls))
	cmds := make([][]any, len(calls))
	for ci, span := range calls {
		rows := order[span[0]:span[1]]
		numKeys[ci] = strconv.Itoa(len(rows))
		first := len(args)
		args = append(args, "evalsha", &c.sha, &numKeys[ci])
		for _, i := range rows {
			args = append(args, &w.strs[3*i])
		}
		args = append(args, &c.field, &c.persist, &c.grace)
		for _, i := range rows {
			args = append(args, &w.strs[3*i+1], &w.strs[3*i+2])
		}
		cmds[ci] = args[first:len(args):len(args)]
	}
	for attempt := 0; ; attempt++ {
		pipe := s.client.Pipeline()
		for _, cmd := range cmds {
			pipe.Do(ctx, cmd...)
		}
		res, err := pipe.Exec(ctx)
		if err == nil {
			var kept int64
			for _, r := range res {
				if n, err := r.(*goredis.Cmd).Int64(); err == nil {
					kept += n
				}
			}
			return kept, nil
		}
		if attempt == 0 && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			if lerr := s.script.Load(ctx, s.client).Err(); lerr != nil {
				return 0, s.wrap(ctx, fmt.Sprintf("write view %q: load script", v.Name), lerr)
			}
			continue
		}
		return 0, s.wrap(ctx, fmt.Sprintf("write view %q", v.Name), err)
	}
}

// defaultWatched is whether a new Store writes rows through writeWatched before the script.
// It is off: on Redis 7.0.15 the path costs Redis more instructions a row than the script for
// a first load with TTL (26.8 k against 24.6 k) and saves only a fifth to a third on rewrites
// (docs/BENCHMARKS.md, "Issue 29" — "The stale-write guard's Redis cost": every plain command
// pays its parsing, lookup and queueing, and WATCH scans the connection's watched keys), while
// it adds a round trip per transaction. It stays, tested against the per-key guard, for a
// Redis where WATCH is cheap; online/redis/bench-write-callgrind.sh measures it ("watch").
const defaultWatched = false

// The WATCH path's shape. Redis 7.0's WATCH checks each key against every key the connection
// already watches (a list scan: 124 k instructions a key when 2,048 keys are watched at once,
// against ~1.5 k at 16), so a pipeline's rows go in transactions of watchGroup rows, spread
// over watchConns connections; each connection chains its transactions, one round trip each
// (the EXEC of one and the WATCH and reads of the next travel together).
var (
	watchGroup = 32
	watchConns = 4
)

// writeWatched writes the rows of order (one pipeline's) without the script, on a single node:
// for each group of rows (all rows of a key in one group), WATCH of the group's keys, then
// HGET of the view's field and PEXPIRETIME of each key; the client decides as the script
// would — which rows win, which are replays, the key's resulting expiry — and sends one
// MULTI of at most one HSET and one PERSIST or PEXPIREAT per key, EXEC. When EXEC aborts (a
// watched key changed or expired in between), none of the group's writes happened and its rows
// are returned, in order, for the script. The outcome of a committed transaction is the
// script's on the same stored rows, since nothing changed them between the reads and the EXEC
// (TestBatchedGuardMatchesPerKeyGuard, TestWatchedWritersRace). On a cluster, or a client
// that is not a single node's, every row is returned: a transaction's keys must share a slot
// there, which rows of different entities seldom do.
func (s *Store) writeWatched(ctx context.Context, v *online.View, w *writeRows, order []int32, c *callConsts) (int64, []int32, error) {
	cl, ok := s.client.(*goredis.Client)
	// The client computes expiries from the server's TIME at the reads; a grace under a second
	// could be eaten by the time until the EXEC, where the script's would not.
	if !ok || s.cluster || len(order) == 0 || s.opts.ExpiryGrace < time.Second {
		return 0, order, nil
	}
	// Rows ordered by a hash of their key (then as given): a key's rows are adjacent and keep
	// their order, and groups are cut between hashes, so no key spans two groups.
	type ranked struct {
		h uint32
		i int32
	}
	rk := make([]ranked, len(order))
	for j, i := range order {
		rk[j] = ranked{fnv32(w.strs[3*i]), i}
	}
	slices.SortFunc(rk, func(a, b ranked) int {
		if a.h != b.h {
			return cmpU32(a.h, b.h)
		}
		return int(a.i - b.i)
	})
	sorted := make([]int32, len(rk))
	for j, r := range rk {
		sorted[j] = r.i
	}
	var groups [][]int32
	for from := 0; from < len(sorted); {
		to := min(from+watchGroup, len(sorted))
		for to < len(sorted) && rk[to].h == rk[to-1].h {
			to++
		}
		groups = append(groups, sorted[from:to])
		from = to
	}
	conns := min(watchConns, len(groups))
	type result struct {
		kept int64
		rest []int32
		err  error
	}
	res := make([]result, conns)
	var wg sync.WaitGroup
	for p := range conns {
		var mine [][]int32
		for g := p; g < len(groups); g += conns {
			mine = append(mine, groups[g])
		}
		run := func() {
			r := &res[p]
			r.kept, r.rest, r.err = s.watchChain(ctx, v, cl, w, mine, c)
		}
		if p == conns-1 {
			run()
		} else {
			wg.Go(run)
		}
	}
	wg.Wait()
	var kept int64
	var rest []int32
	for _, r := range res {
		kept += r.kept
		if r.err != nil {
			return kept, nil, r.err
		}
		rest = append(rest, r.rest...)
	}
	slices.Sort(rest)
	return kept, rest, nil
}

// keyState is one key of a WATCH group: what the reads found and what the group's rows leave.
type keyState struct {
	key      *string
	old      string // the stored row (has: there is one)
	has      bool
	exp0     int64   // PEXPIRETIME at the reads: -2 no key, -1 no expiry, else ms
	exp      int64   // the expiry the rows leave
	val      *string // the row to store, nil when the stored one stays
	hget     *goredis.StringCmd
	pexptime *goredis.DurationCmd
}

// watchGroupTx is one transaction of a watchChain.
type watchGroupTx struct {
	rows []int32
	keys []keyState
	of   []int32 // of[j]: the index in keys of rows[j]'s key
	kept int64   // rows the transaction stores (when EXEC commits)
	exec *goredis.Cmd
}

// watchChain runs groups, one transaction each, on one connection of cl: each round trip sends
// the previous group's MULTI ... EXEC and the next group's WATCH and reads.
func (s *Store) watchChain(ctx context.Context, v *online.View, cl *goredis.Client, w *writeRows, groups [][]int32, c *callConsts) (kept int64, rest []int32, err error) {
	conn := cl.Conn()
	watching := false
	defer func() {
		if watching {
			// An error between WATCH and EXEC: the connection goes back to the pool clean
			// (DISCARD ends a MULTI, which also unwatches; outside one it fails harmlessly).
			pipe := conn.Pipeline()
			pipe.Do(context.WithoutCancel(ctx), "discard")
			pipe.Do(context.WithoutCancel(ctx), "unwatch")
			_, _ = pipe.Exec(context.WithoutCancel(ctx))
		}
		_ = conn.Close()
	}()
	ttl := v.TTL != 0
	grace := s.opts.ExpiryGrace.Milliseconds()
	var now int64
	var prev *watchGroupTx
	for g := 0; g <= len(groups); g++ {
		pipe := conn.Pipeline()
		if prev != nil {
			prev.writes(ctx, pipe, c)
		}
		var cur *watchGroupTx
		var timeCmd *goredis.TimeCmd
		if g < len(groups) {
			cur = newWatchGroupTx(w, groups[g])
			args := make([]any, 0, 1+len(cur.keys))
			args = append(args, "watch")
			for k := range cur.keys {
				args = append(args, cur.keys[k].key)
			}
			pipe.Do(ctx, args...)
			if ttl && now == 0 {
				timeCmd = pipe.Time(ctx)
			}
			for k := range cur.keys {
				ks := &cur.keys[k]
				ks.hget = pipe.HGet(ctx, *ks.key, c.field)
				ks.pexptime = pipe.PExpireTime(ctx, *ks.key)
			}
		}
		cmds, err := pipe.Exec(ctx)
		watching = cur != nil
		if err != nil {
			// A missing field (HGET) and an aborted EXEC are goredis.Nil: answers, not failures.
			if cerr := firstErr(cmds); cerr != nil || len(cmds) == 0 {
				if cerr == nil {
					cerr = err
				}
				return kept, nil, s.wrap(ctx, fmt.Sprintf("write view %q", v.Name), cerr)
			}
		}
		if prev != nil && prev.exec != nil {
			if prev.exec.Err() == goredis.Nil { //nolint:errorlint
				rest = append(rest, prev.rows...) // aborted: the script decides
			} else {
				kept += prev.kept
			}
		} else if prev != nil {
			kept += prev.kept // nothing to write (stale rows only): UNWATCH was sent
		}
		if cur == nil {
			break
		}
		if timeCmd != nil {
			now = timeCmd.Val().UnixMilli()
		}
		if s.afterReads != nil {
			s.afterReads()
		}
		cur.decide(w, ttl, now, grace)
		prev = cur
	}
	watching = false
	return kept, rest, nil
}

// firstErr is the first error of cmds that is not goredis.Nil — a missing field, or the EXEC of
// an aborted transaction, which are answers, not failures.
func firstErr(cmds []goredis.Cmder) error {
	for _, cmd := range cmds {
		if e := cmd.Err(); e != nil && e != goredis.Nil { //nolint:errorlint
			return e
		}
	}
	return nil
}

func newWatchGroupTx(w *writeRows, rows []int32) *watchGroupTx {
	t := &watchGroupTx{rows: rows, of: make([]int32, len(rows)), keys: make([]keyState, 0, len(rows))}
	for j, i := range rows {
		key := &w.strs[3*i]
		k := len(t.keys) - 1
		// A key's rows are adjacent unless two keys share a hash: look back over this hash's keys.
		for ; k >= 0; k-- {
			if *t.keys[k].key == *key {
				break
			}
			if fnv32(*t.keys[k].key) != fnv32(*key) {
				k = -1
				break
			}
		}
		if k < 0 {
			t.keys = append(t.keys, keyState{key: key})
			k = len(t.keys) - 1
		}
		t.of[j] = int32(k)
	}
	return t
}

// decide applies the group's rows, in order, to what the reads found, as writeScript would:
// a row is written when nothing is stored, the stored row is not a row of this format (too
// short, another version) or its (event_ts, created_ts) is not greater; a replay (the same
// bytes) is not written again but counts as written and sets the expiry as a write does. A
// view without TTL leaves the key without expiry; a view with TTL gives a key it creates
// max(event + TTL, now) + grace and moves an existing expiry only later.
func (t *watchGroupTx) decide(w *writeRows, ttl bool, now, grace int64) {
	for k := range t.keys {
		ks := &t.keys[k]
		old, err := ks.hget.Result()
		ks.old, ks.has = old, err == nil
		e := ks.pexptime.Val()
		// go-redis returns -1 and -2 as durations of -1 ns and -2 ns, an expiry in ms.
		switch {
		case e < 0:
			ks.exp0 = int64(e)
		default:
			ks.exp0 = e.Milliseconds()
		}
		ks.exp = ks.exp0
		ks.hget, ks.pexptime = nil, nil
	}
	for j, i := range t.rows {
		ks := &t.keys[t.of[j]]
		row := w.strs[3*i+1]
		write, same := true, false
		if ks.has {
			switch {
			case ks.old == row:
				same = true
			case len(ks.old) >= 17 && ks.old[0] == row[0]:
				write = row[1:17] >= ks.old[1:17]
			}
		}
		if !write {
			continue
		}
		if !same {
			ks.old, ks.has, ks.val = row, true, &w.strs[3*i+1]
		}
		if !ttl {
			ks.exp = -1
		} else {
			at, _ := strconv.ParseInt(w.strs[3*i+2], 10, 64)
			target := max(at, now) + grace
			if ks.exp == -2 || (ks.exp >= 0 && target > ks.exp) {
				ks.exp = target
			}
		}
		t.kept++
	}
}

// writes queues the group's transaction on pipe: MULTI, per key at most one HSET and one
// PERSIST or PEXPIREAT, EXEC — or UNWATCH when there is nothing to write.
func (t *watchGroupTx) writes(ctx context.Context, pipe goredis.Pipeliner, c *callConsts) {
	n := 0
	for k := range t.keys {
		ks := &t.keys[k]
		if ks.val != nil || ks.exp != ks.exp0 {
			n++
		}
	}
	if n == 0 {
		pipe.Do(ctx, "unwatch")
		return
	}
	pipe.Do(ctx, "multi")
	for k := range t.keys {
		ks := &t.keys[k]
		if ks.val != nil {
			pipe.Do(ctx, "hset", ks.key, &c.field, ks.val)
		}
		switch {
		case ks.exp == ks.exp0:
		case ks.exp == -1:
			if ks.exp0 >= 0 {
				pipe.Do(ctx, "persist", ks.key)
			}
		default:
			pipe.Do(ctx, "pexpireat", ks.key, ks.exp)
		}
	}
	t.exec = pipe.Do(ctx, "exec")
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
