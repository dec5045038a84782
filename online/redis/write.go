package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
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
		if restore := !s.noRestore.Load(); (restore || v.TTL == 0) && s.firstLoads.try(c.field) {
			// Rows of keys that do not exist go without the script: created by RESTORE, or,
			// where the server refuses it, for a view without TTL, by HSETNX.
			var rest []int32
			if restore {
				n, rest, err = s.writeRestore(ctx, v, w, order, &c)
			} else {
				n, rest, err = s.writeNew(ctx, v, w, order, &c)
			}
			kept += n
			if err != nil {
				return kept, err
			}
			s.firstLoads.note(c.field, len(order)-len(rest), len(order))
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

// firstLoads remembers, per view field, whether the scriptless first load (writeRestore, or
// writeNew where RESTORE is refused) is worth trying: a write of rows whose keys already hold
// rows of the view pays its failed commands on top of the script's, so after a pipeline that
// it mostly could not finish, the next skipFor pipelines of that view go straight to the script.
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
