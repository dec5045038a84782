package online

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/quiverfs/quiver/definitions"
)

// Fresh aggregations: pushed and streamed events folded into an entity's tiles, each event
// once (docs/aggregations.md, "Push and Kafka").
//
// An event's identity is its entity and its (event_ts, created_ts), a null created_ts being
// one value: the identity the offline store collapses rows on. The tiles' encoding records the
// identities of the events it holds for as long as a tile can hold them, so a redelivered event
// (a Kafka redelivery, a client's retry of a lost ack) is recognised and counted once.

// eventID is an event's identity within its entity: (event_ts, created_ts) in µs, created
// math.MinInt64 for null.
type eventID struct{ ev, cr int64 }

func compareIDs(a, b eventID) int {
	if c := cmp.Compare(a.ev, b.ev); c != 0 {
		return c
	}
	return cmp.Compare(a.cr, b.cr)
}

// appendIDs encodes sorted identities: a count, then each as the varint difference of its
// event_ts from the previous one's, and a uvarint: 0 for no created_ts, else 1 + the zigzag
// encoding of created_ts - event_ts (so an event without created_ts, or created at its event
// time, costs one byte).
func appendIDs(b []byte, ids []eventID) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	prev := int64(0)
	for _, id := range ids {
		b = binary.AppendVarint(b, id.ev-prev)
		if id.cr == math.MinInt64 {
			b = append(b, 0)
		} else {
			d := id.cr - id.ev
			b = binary.AppendUvarint(b, uint64(d<<1^d>>63)+1)
		}
		prev = id.ev
	}
	return b
}

func decodeIDs(p string) ([]eventID, error) {
	bad := fmt.Errorf("aggregation tiles: event identities: %w", ErrCorrupt)
	b := []byte(p)
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, bad
	}
	b = b[k:]
	ids := make([]eventID, 0, n)
	prev := int64(0)
	for i := uint64(0); i < n; i++ {
		d, k1 := binary.Varint(b)
		if k1 <= 0 {
			return nil, bad
		}
		c, k2 := binary.Uvarint(b[k1:])
		if k2 <= 0 {
			return nil, bad
		}
		b = b[k1+k2:]
		id := eventID{ev: prev + d, cr: math.MinInt64}
		if c != 0 {
			z := c - 1
			id.cr = id.ev + (int64(z>>1) ^ -int64(z&1))
		}
		if i > 0 && compareIDs(ids[len(ids)-1], id) >= 0 {
			return nil, bad
		}
		ids = append(ids, id)
		prev = id.ev
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("aggregation tiles: trailing bytes: %w", ErrCorrupt)
	}
	return ids, nil
}

// live reports whether an event at ev (µs) falls in a tile that some read at or after at (µs)
// combines: a tile of one of the view's windows that is not older than that window's 60
// tiles ending at at.
func (l *aggLayout) live(ev, at int64) bool {
	for _, ts := range l.series {
		if floorDiv(ev, ts.tile) > floorDiv(at, ts.tile)-TilesPerWindow {
			return true
		}
	}
	return false
}

// FoldStats counts what a fold did with its events.
type FoldStats struct {
	// Folded events were counted into the tiles.
	Folded int64
	// Duplicates had the identity of an event the tiles already held (or of a later event of
	// the same call, which won): a redelivery, counted once.
	Duplicates int64
	// Late events fell in no tile a read at or after now combines (older than the longest
	// window): ignored online, kept offline.
	Late int64
}

// Add adds o's counts to s.
func (s *FoldStats) Add(o FoldStats) {
	s.Folded += o.Folded
	s.Duplicates += o.Duplicates
	s.Late += o.Late
}

// FoldEvents folds pushed or streamed events of one entity into its stored tiles (enc, the
// tiles value; nil for none) at time now, each event once: an event whose identity (event_ts,
// created_ts) the tiles already hold is a duplicate and changes nothing; of events of one call
// with the same identity the last one counts; an event in no tile a read at or after now
// combines is late and ignored. It returns the new tiles (nil when nothing changed) and the
// greatest event timestamp they hold. Invalid events fail the call before anything is folded.
func (v *View) FoldEvents(enc []byte, events []AggEvent, now time.Time) ([]byte, time.Time, FoldStats, error) {
	var stats FoldStats
	st, err := v.decodeTiles(enc)
	if err != nil {
		return nil, time.Time{}, stats, err
	}
	for i := range events {
		if err := st.check(&events[i]); err != nil {
			return nil, time.Time{}, stats, err
		}
	}
	at := now.UnixMicro()
	type cand struct {
		id eventID
		i  int
	}
	cands := make([]cand, 0, len(events))
	for i, e := range events {
		id := eventID{ev: e.EventTS.UnixMicro(), cr: createdMicros(e.CreatedTS)}
		switch {
		case !v.agg.live(id.ev, at):
			stats.Late++
		default:
			if _, held := slices.BinarySearchFunc(st.ids, id, compareIDs); held {
				stats.Duplicates++
				continue
			}
			cands = append(cands, cand{id, i})
		}
	}
	// Of events of this call with one identity, the last one given counts.
	slices.SortStableFunc(cands, func(a, b cand) int { return compareIDs(a.id, b.id) })
	fold := make([]AggEvent, 0, len(cands))
	for j, c := range cands {
		if j+1 < len(cands) && cands[j+1].id == c.id {
			stats.Duplicates++
			continue
		}
		fold = append(fold, events[c.i])
	}
	if len(fold) == 0 {
		return nil, time.Time{}, stats, nil
	}
	if err := st.fold(fold); err != nil {
		return nil, time.Time{}, stats, err
	}
	stats.Folded = int64(len(fold))
	b, latest := st.finish(now)
	return b, latest, stats, nil
}

// FoldRow is FoldEvents over a stored row of aggregation view v (data, an EncodeRow encoding;
// "" for none): it returns the encoded row to store in its place, nil when nothing changed.
// The row's event_ts is the newest event its tiles hold and its created_ts now, as the rows
// materialization writes (BuildTiles).
func (v *View) FoldRow(data string, events []AggEvent, now time.Time) ([]byte, FoldStats, error) {
	var tiles []byte
	if data != "" {
		vals := make([]Value, max(len(v.Features), 1))
		found := make([]bool, len(vals))
		if _, err := DecodeRow(data, v, vals, found); err != nil {
			return nil, FoldStats{}, fmt.Errorf("view %q: %w", v.Name, err)
		}
		if found[0] && !vals[0].IsNull() {
			tiles = []byte(vals[0].Payload())
		}
	}
	enc, latest, stats, err := v.FoldEvents(tiles, events, now)
	if err != nil || enc == nil {
		return nil, stats, err
	}
	row, err := EncodeRow(nil, v, &Row{EventTS: latest, CreatedTS: now, Values: []Value{Bytes(enc)}})
	if err != nil {
		return nil, stats, err
	}
	return row, stats, nil
}

// EntityEvents are events of one entity of an aggregation view.
type EntityEvents struct {
	Key    EntityKey
	Events []AggEvent
}

// TileFolder folds pushed and streamed events into the tiles of aggregation views; both
// backends implement it.
type TileFolder interface {
	// FoldEvents folds each entity's events into its stored tiles (View.FoldRow at the
	// store's clock) by one atomic read-modify-write per entity: concurrent folds of one
	// entity each count their events once, and a redelivered event is counted once. A
	// failure part way may leave some entities folded; a retry of the same events repairs it
	// (the folded ones are then duplicates).
	FoldEvents(ctx context.Context, v *View, entities []EntityEvents) (FoldStats, error)
}

// emptyAggregates sets, for rows of aggregation view reads that find no stored tiles, what an
// entity without events reads: count and count_distinct 0 (PRESENT), every other function
// null (NULL_VALUE), rather than NOT_FOUND.
func (b *ResultBuilder) emptyAggregates() {
	for _, col := range b.res.Columns {
		l := col.View.agg
		if l == nil {
			continue
		}
		switch l.outs[col.Feature].fn {
		case definitions.AggCount, definitions.AggCountDistinct:
			for r := range col.Values {
				col.Values[r], col.Statuses[r] = Int64(0), Present
			}
		default:
			for r := range col.Values {
				col.Values[r], col.Statuses[r] = Null(), NullValue
			}
		}
	}
}
