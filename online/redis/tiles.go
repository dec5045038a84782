package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/quiverfs/quiver/online"
)

// tilesCASScript stores the folded tiles of aggregation-view entities, each only if the
// entity's stored row is still the one the fold read: a compare-and-set per entity, which
// makes the read (HGET), the fold (in Go, online.View.FoldRow) and this write one atomic
// read-modify-write. KEYS are the entities' hash keys (one cluster slot); ARGV[1] is the
// view's hash field, then for each key i ARGV[2i] is the row read ("" for none) and
// ARGV[2i+1] the row to store. It returns, per key, 1 when stored and 0 when the row changed
// since it was read (the caller reads and folds again). Aggregation views have no TTL: like
// writeScript for such views, a stored row leaves the key without expiry.
const tilesCASScript = `
local field = ARGV[1]
local res = {}
for i, key in ipairs(KEYS) do
  local old = redis.call('HGET', key, field) or ''
  if old == ARGV[2 * i] then
    redis.call('HSET', key, field, ARGV[2 * i + 1])
    if redis.call('PEXPIRETIME', key) >= 0 then redis.call('PERSIST', key) end
    res[i] = 1
  else
    res[i] = 0
  end
end
return res
`

var tilesCAS = goredis.NewScript(tilesCASScript)

// foldLocks serialize the folds of one entity within this process (striped by key), so that
// concurrent pushes of the same entities wait for each other instead of failing each other's
// compare-and-set round after round; the compare-and-set still guards against other processes.
var foldLocks [4096]sync.Mutex

// lockEntities locks the stripes of keys, in order, and returns the unlock.
func lockEntities(keys []string) func() {
	stripes := make([]int, 0, len(keys))
	for _, k := range keys {
		h := fnv.New32a()
		_, _ = h.Write([]byte(k))
		stripes = append(stripes, int(h.Sum32()%uint32(len(foldLocks))))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, s := range stripes {
		foldLocks[s].Lock()
	}
	return func() {
		for _, s := range stripes {
			foldLocks[s].Unlock()
		}
	}
}

// maxFoldRounds bounds the read-fold-store rounds of one FoldEvents call: a round repeats
// only for entities another writer changed in between.
const maxFoldRounds = 100

var _ online.TileFolder = (*Store)(nil)

// FoldEvents implements online.TileFolder: holding this process's locks of the entities, each
// round reads the pending entities' rows in one
// pipeline of HGETs, folds their events in Go at the store's clock, and stores the results
// with tilesCASScript (one EVALSHA per RowsPerScript entities of one slot); entities another
// writer changed in between go to the next round.
func (s *Store) FoldEvents(ctx context.Context, v *online.View, entities []online.EntityEvents) (online.FoldStats, error) {
	var total online.FoldStats
	if !v.IsAggregation() {
		return total, fmt.Errorf("fold events: view %q has no aggregations: %w", v.Name, online.ErrInvalidArgument)
	}
	keys := make([]string, len(entities))
	var buf []byte
	for i, e := range entities {
		if e.Key == "" {
			return total, fmt.Errorf("fold events of view %q: empty entity key: %w", v.Name, online.ErrInvalidArgument)
		}
		buf = appendHashKey(buf[:0], v.Project, e.Key)
		keys[i] = string(buf)
	}
	fld := field(v)
	defer lockEntities(keys)()
	pending := make([]int, len(entities))
	for i := range pending {
		pending[i] = i
	}
	for round := 0; len(pending) > 0; round++ {
		if round > 0 { // another process changed some of them: back off a little, with jitter
			select {
			case <-time.After(time.Duration(rand.Int64N(int64(min(round, 50)) * int64(time.Millisecond)))):
			case <-ctx.Done():
				return total, s.wrap(ctx, fmt.Sprintf("fold events of view %q", v.Name), ctx.Err())
			}
		}
		if round == maxFoldRounds {
			return total, fmt.Errorf("redis %s: fold events of view %q: %d entities changed under every one of %d attempts: %w", s.addr, v.Name, len(pending), maxFoldRounds, online.ErrUnavailable)
		}
		pipe := s.client.Pipeline()
		gets := make([]*goredis.StringCmd, len(pending))
		for j, i := range pending {
			gets[j] = pipe.HGet(ctx, keys[i], fld)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return total, s.wrap(ctx, fmt.Sprintf("fold events of view %q: read", v.Name), err)
		}
		now := s.opts.Now()
		type cas struct {
			i        int
			old, new string
			stats    online.FoldStats
		}
		var writes []cas
		for j, i := range pending {
			old, err := gets[j].Result()
			if err != nil && !errors.Is(err, goredis.Nil) {
				return total, s.wrap(ctx, fmt.Sprintf("fold events of view %q: read", v.Name), err)
			}
			row, st, err := v.FoldRow(old, entities[i].Events, now)
			if err != nil {
				return total, fmt.Errorf("redis %s: fold events: %w", s.addr, err)
			}
			if row == nil { // nothing to store: every event a duplicate or late
				total.Add(st)
				continue
			}
			writes = append(writes, cas{i: i, old: old, new: string(row), stats: st})
		}
		pending = pending[:0]
		if len(writes) == 0 {
			break
		}
		// Group the writes into scripts of RowsPerScript keys of one slot.
		var groups [][]int // indexes into writes
		if s.cluster {
			bySlot := map[uint16]int{}
			for w := range writes {
				sl := slotOf([]byte(keys[writes[w].i]))
				g, ok := bySlot[sl]
				if !ok || len(groups[g]) == s.opts.RowsPerScript {
					g = len(groups)
					bySlot[sl] = g
					groups = append(groups, nil)
				}
				groups[g] = append(groups[g], w)
			}
		} else {
			for w := range writes {
				if w%s.opts.RowsPerScript == 0 {
					groups = append(groups, nil)
				}
				groups[len(groups)-1] = append(groups[len(groups)-1], w)
			}
		}
		results, err := s.casGroups(ctx, v, groups, func(w int) (string, string, string) {
			return keys[writes[w].i], writes[w].old, writes[w].new
		})
		if err != nil {
			return total, err
		}
		for gi, g := range groups {
			for j, w := range g {
				if results[gi][j] {
					total.Add(writes[w].stats)
				} else {
					pending = append(pending, writes[w].i)
				}
			}
		}
	}
	return total, nil
}

// casGroups runs tilesCASScript once per group in one pipeline, loading the script and
// retrying once when the server does not have it; it returns per group and key whether the
// row was stored.
func (s *Store) casGroups(ctx context.Context, v *online.View, groups [][]int, row func(w int) (key, old, new string)) ([][]bool, error) {
	for attempt := 0; ; attempt++ {
		pipe := s.client.Pipeline()
		cmds := make([]*goredis.Cmd, len(groups))
		for gi, g := range groups {
			keys := make([]string, len(g))
			args := make([]any, 1, 1+2*len(g))
			args[0] = field(v)
			for j, w := range g {
				k, old, nw := row(w)
				keys[j] = k
				args = append(args, old, nw)
			}
			cmds[gi] = pipe.EvalSha(ctx, tilesCAS.Hash(), keys, args...)
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			out := make([][]bool, len(groups))
			for gi, c := range cmds {
				vals, err := c.Int64Slice()
				if err != nil || len(vals) != len(groups[gi]) {
					return nil, fmt.Errorf("redis %s: fold events of view %q: unexpected script reply %v: %w", s.addr, v.Name, c.Val(), online.ErrCorrupt)
				}
				out[gi] = make([]bool, len(vals))
				for j, x := range vals {
					out[gi][j] = x == 1
				}
			}
			return out, nil
		}
		if attempt == 0 && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			if lerr := tilesCAS.Load(ctx, s.client).Err(); lerr != nil {
				return nil, s.wrap(ctx, fmt.Sprintf("fold events of view %q: load script", v.Name), lerr)
			}
			continue
		}
		return nil, s.wrap(ctx, fmt.Sprintf("fold events of view %q", v.Name), err)
	}
}
