package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

// TestBatchedGuardMatchesPerKeyGuard holds the batched write path (many rows per script call,
// the fresh-keys and HGET-first paths of writeScript) to the per-key guard it replaced: the
// legacy script (HGET, HSET, then PERSIST or PEXPIREAT ... GT on every row) called for one row
// at a time. Both write the same random sequence into two projects of the same server — a
// single node and a cluster — and after every round every hash must hold the same fields,
// values and expiry. Rounds: random batches with repeated entities, replays of the last batch,
// backfills of old rows, first writes of new entities (all keys new, with repeats), batches
// mixing new and stored entities, rows of five views sharing the hashes (no TTL, 2 h, 48 h, a
// second generation, a bytes view like aggregation tiles), concurrent writers, keys whose
// expiry someone else changed, fields deleted or overwritten with garbage behind the store's
// back. On the cluster, most entities share three hash slots, so calls carry many rows.
func TestBatchedGuardMatchesPerKeyGuard(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster bool
		opts    Options
		seed    uint64
	}{
		{"single/default", false, Options{}, 1},
		{"single/small calls", false, Options{WriteBatch: 50, RowsPerScript: 7}, 2},
		{"single/one call", false, Options{WriteBatch: 5000, RowsPerScript: 5000}, 3},
		{"cluster/default", true, Options{}, 4},
		{"cluster/small calls", true, Options{WriteBatch: 50, RowsPerScript: 7}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open := func(o Options) *Store {
				o.ExpiryGrace = time.Hour
				if tc.cluster {
					return New(newClusterClient(cluster.Addrs()), o)
				}
				return New(newSingleClient(single.Addr), o)
			}
			batched := open(tc.opts)
			defer batched.Close()
			perKey := open(Options{RowsPerScript: 1})
			perKey.script = goredis.NewScript(legacyWriteScript)
			defer perKey.Close()
			d := newDifferential(t, batched, perKey, tc.seed)
			d.run(t)
		})
	}
}

// differential writes the same rows through two stores into two projects and compares them.
type differential struct {
	a, b     *Store
	client   goredis.UniversalClient
	rng      *rand.Rand
	now      time.Time
	views    []viewPair
	ids      []int64 // entities written so far, in first-write order
	nextID   int64   // the next entity id not written yet (an index into pool)
	pool     []int64 // entity ids to draw new entities from
	last     []pending
	lastView int
}

type viewPair struct{ a, b *online.View }

type pending struct {
	id        int64
	ev, cr    time.Time
	valueSeed uint64
}

func newDifferential(t *testing.T, a, b *Store, seed uint64) *differential {
	pa := onlinetest.Project(t)
	pb := pa + "x"
	d := &differential{a: a, b: b, client: a.Client(), rng: rand.New(rand.NewPCG(seed, 29)), now: time.Now().Truncate(time.Second)}
	mk := func(name string, ttl time.Duration, gen int, types ...string) {
		fv := onlinetest.FeatureView(name, []string{"user"}, ttl, types...)
		va, vb := onlinetest.MustView(t, pa, fv), onlinetest.MustView(t, pb, fv)
		if gen > 1 {
			va, vb = va.WithGeneration(gen), vb.WithGeneration(gen)
		}
		d.views = append(d.views, viewPair{va, vb})
	}
	mk("forever", 0, 1, "int64", "string")
	mk("short", 2*time.Hour, 1, "int64", "string")
	mk("short", 2*time.Hour, 2, "int64", "string")
	mk("long", 48*time.Hour, 1, "int64", "string")
	mk("tiles", 7*24*time.Hour, 1, "bytes")
	// Entities: three groups sharing a cluster hash slot each, then others.
	key := func(id int64) online.EntityKey { return onlinetest.UserKey(t, d.views[0].a, id) }
	for _, target := range []uint16{slotOf([]byte(key(1))), slotOf([]byte(key(2))), slotOf([]byte(key(3)))} {
		n := 0
		for id := int64(1); n < 40; id++ {
			if slotOf([]byte(key(id))) == target {
				d.pool = append(d.pool, id)
				n++
			}
		}
	}
	for id := int64(1_000_000); len(d.pool) < 400; id++ {
		d.pool = append(d.pool, id)
	}
	d.rng.Shuffle(len(d.pool), func(i, j int) { d.pool[i], d.pool[j] = d.pool[j], d.pool[i] })
	return d
}

func (d *differential) row(t testing.TB, v *online.View, p pending) online.Row {
	vals := []online.Value{online.Int64(int64(p.valueSeed)), online.String(fmt.Sprintf("v%d", p.valueSeed%5))}
	if len(v.Features) == 1 {
		b := make([]byte, p.valueSeed%300)
		for i := range b {
			b[i] = byte(p.valueSeed >> (i % 8))
		}
		vals = []online.Value{online.Bytes(b)}
	}
	return online.Row{Key: onlinetest.UserKey(t, v, p.id), EventTS: p.ev, CreatedTS: p.cr, Values: vals}
}

// write writes ps through both stores.
func (d *differential) write(t testing.TB, vi int, ps []pending) error {
	vp := d.views[vi]
	ra, rb := make([]online.Row, len(ps)), make([]online.Row, len(ps))
	for i, p := range ps {
		ra[i], rb[i] = d.row(t, vp.a, p), d.row(t, vp.b, p)
	}
	ctx := context.Background()
	if err := d.a.Write(ctx, vp.a, ra); err != nil {
		return err
	}
	return d.b.Write(ctx, vp.b, rb)
}

// event draws an event time in the last 100 hours (before = true: 100 to 300 hours ago) and a
// created time at most 2 s later; ties are frequent on purpose.
func (d *differential) event(before bool) (ev, cr time.Time) {
	h := d.rng.IntN(100)
	if before {
		h += 100 + d.rng.IntN(200)
	}
	ev = d.now.Add(-time.Duration(h) * time.Hour)
	return ev, ev.Add(time.Duration(d.rng.IntN(3)) * time.Second)
}

func (d *differential) known() int64 { return d.ids[d.rng.IntN(len(d.ids))] }

func (d *differential) fresh(n int) []int64 {
	var out []int64
	for range n {
		if int(d.nextID) == len(d.pool) {
			break
		}
		out = append(out, d.pool[d.nextID])
		d.ids = append(d.ids, d.pool[d.nextID])
		d.nextID++
	}
	return out
}

func (d *differential) run(t *testing.T) {
	ctx := context.Background()
	for round := range 60 {
		op := d.rng.IntN(10)
		if round < 3 || len(d.ids) == 0 {
			op = 0 // the first rounds create entities
		}
		vi := d.rng.IntN(len(d.views))
		var ps []pending
		switch op {
		case 0, 1: // new entities only, some repeated in the batch
			ids := d.fresh(1 + d.rng.IntN(60))
			if len(ids) == 0 {
				continue
			}
			for range len(ids) + d.rng.IntN(len(ids)+1) {
				ev, cr := d.event(false)
				ps = append(ps, pending{ids[d.rng.IntN(len(ids))], ev, cr, d.rng.Uint64()})
			}
		case 2, 3, 4: // stored entities, newer or older rows, repeats
			for range 1 + d.rng.IntN(120) {
				ev, cr := d.event(false)
				ps = append(ps, pending{d.known(), ev, cr, d.rng.Uint64()})
			}
		case 5: // stored and new entities mixed
			ids := d.fresh(1 + d.rng.IntN(10))
			for range 1 + d.rng.IntN(80) {
				id := d.known()
				if len(ids) > 0 && d.rng.IntN(3) == 0 {
					id = ids[d.rng.IntN(len(ids))]
				}
				ev, cr := d.event(false)
				ps = append(ps, pending{id, ev, cr, d.rng.Uint64()})
			}
		case 6: // replay the last batch, unchanged
			ps, vi = d.last, d.lastView
		case 7: // backfill: old rows, a few with new entities
			for _, id := range append(d.fresh(d.rng.IntN(3)), d.known(), d.known(), d.known()) {
				for range 1 + d.rng.IntN(20) {
					ev, cr := d.event(true)
					ps = append(ps, pending{id, ev, cr, d.rng.Uint64()})
				}
			}
		case 8: // concurrent writers of every view
			d.concurrent(t)
		case 9: // someone else changes keys behind the store's back
			d.meddle(t)
		}
		if len(ps) > 0 {
			require.NoError(t, d.write(t, vi, ps))
			d.last, d.lastView = ps, vi
		}
		d.compare(t, ctx, round)
	}
}

// concurrent runs four writers at once, each writing batches of every view through both
// stores. A row's value is a function of its entity and times, so rows with equal times are
// equal and the outcome does not depend on the interleaving.
func (d *differential) concurrent(t *testing.T) {
	batches := make([][]pending, 12)
	for i := range batches {
		for range 1 + d.rng.IntN(50) {
			ev, cr := d.event(d.rng.IntN(4) == 0)
			id := d.known()
			batches[i] = append(batches[i], pending{id, ev, cr, uint64(id)*1_000_003 + uint64(ev.Unix()) + uint64(cr.Unix())})
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(batches); i += 4 {
				if err := d.write(t, i%len(d.views), batches[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// meddle gives some keys an expiry or takes it away, deletes fields and stores garbage in
// others, the same in both projects.
func (d *differential) meddle(t *testing.T) {
	ctx := context.Background()
	for range 1 + d.rng.IntN(4) {
		id := d.known()
		vi := d.rng.IntN(len(d.views))
		op := d.rng.IntN(4)
		at := d.now.Add(time.Duration(10+d.rng.IntN(100)) * time.Hour)
		for _, side := range []struct {
			s *Store
			v *online.View
		}{{d.a, d.views[vi].a}, {d.b, d.views[vi].b}} {
			v := side.v
			k := string(appendHashKey(nil, v.Project, onlinetest.UserKey(t, v, id)))
			switch op {
			case 0:
				require.NoError(t, d.client.PExpireAt(ctx, k, at).Err())
			case 1:
				require.NoError(t, d.client.Persist(ctx, k).Err())
			case 2:
				_, err := side.s.DeleteEntities(ctx, v, []online.EntityKey{onlinetest.UserKey(t, v, id)})
				require.NoError(t, err)
			case 3:
				require.NoError(t, d.client.HSet(ctx, k, v.StorageName(), "garbage").Err())
			}
		}
	}
}

// compare asserts that every entity's hash is the same in both projects.
func (d *differential) compare(t *testing.T, ctx context.Context, round int) {
	t.Helper()
	pipe := d.client.Pipeline()
	type pair struct {
		ha, hb *goredis.MapStringStringCmd
		ea, eb *goredis.DurationCmd
	}
	cmds := make([]pair, len(d.ids))
	for i, id := range d.ids {
		ka := string(appendHashKey(nil, d.views[0].a.Project, onlinetest.UserKey(t, d.views[0].a, id)))
		kb := string(appendHashKey(nil, d.views[0].b.Project, onlinetest.UserKey(t, d.views[0].b, id)))
		cmds[i] = pair{pipe.HGetAll(ctx, ka), pipe.HGetAll(ctx, kb), pipe.PExpireTime(ctx, ka), pipe.PExpireTime(ctx, kb)}
	}
	_, err := pipe.Exec(ctx)
	require.NoError(t, err)
	for i, c := range cmds {
		require.Equal(t, c.hb.Val(), c.ha.Val(), "round %d entity %d: fields", round, d.ids[i])
		ea, eb := c.ea.Val(), c.eb.Val()
		if ea < 0 || eb < 0 {
			require.Equal(t, eb, ea, "round %d entity %d: expiry", round, d.ids[i])
		} else {
			// Expiries from the write time (max(event + TTL, now)) differ by the time between
			// the two stores' writes.
			require.InDelta(t, float64(eb), float64(ea), float64(2*time.Second), "round %d entity %d: expiry", round, d.ids[i])
		}
	}
}

// TestWriteScriptLargeCalls: calls of thousands of rows, where the script checks the keys for
// existence in chunks of 1,000 (unpack's limit is ~8,000): a call of new keys only, then a
// call of new keys with one stored entity in its last chunk, whose newer stored row must stay.
// (A cluster call holds one slot's rows; the chunks are the same there.)
func TestWriteScriptLargeCalls(t *testing.T) {
	batched := New(newSingleClient(single.Addr), Options{ExpiryGrace: time.Hour, WriteBatch: 10_000, RowsPerScript: 10_000})
	defer batched.Close()
	perKey := New(newSingleClient(single.Addr), Options{ExpiryGrace: time.Hour, RowsPerScript: 1})
	perKey.script = goredis.NewScript(legacyWriteScript)
	defer perKey.Close()
	d := newDifferential(t, batched, perKey, 7)
	ids := make([]int64, 5000)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	ctx := context.Background()
	for vi := range d.views {
		var ps []pending
		for _, id := range ids[:2500] {
			ps = append(ps, pending{id, d.now.Add(-time.Hour), d.now.Add(-time.Hour), uint64(id)})
		}
		require.NoError(t, d.write(t, vi, ps))
		d.ids = ids[:2500]
		d.compare(t, ctx, 0)

		stored := ids[10] // written again from the last chunk, with an older row
		ps = ps[:0]
		for _, id := range ids[2500:] {
			ps = append(ps, pending{id, d.now, d.now, uint64(id)})
		}
		ps[2400] = pending{stored, d.now.Add(-2 * time.Hour), d.now.Add(-2 * time.Hour), 1}
		require.NoError(t, d.write(t, vi, ps))
		d.ids = ids
		d.compare(t, ctx, 1)
		key := onlinetest.UserKey(t, d.views[vi].a, stored)
		res, err := batched.Read(ctx, online.ReadRequest{Views: []online.ViewRead{{View: d.views[vi].a, Keys: []online.EntityKey{key}}}})
		require.NoError(t, err)
		require.Equal(t, d.now.Add(-time.Hour).UTC(), res.Columns[0].EventTS[0], "view %d: the newer stored row stays", vi)
	}
}
