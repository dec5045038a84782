package online

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/aggfn"
	"github.com/quiverfs/quiver/value"
)

// TilesPerWindow is how many tiles an aggregation window is split into online. A window w is
// read as the TilesPerWindow tiles of w/TilesPerWindow ending with the tile that holds the read
// time (docs/aggregations.md). Definitions require windows of whole minutes, so tiles are whole
// seconds.
const TilesPerWindow = 60

// tilesFeature is the one value an aggregation view stores per entity: its encoded tiles.
const tilesFeature = "__tiles"

// The tiles' format versions: 1 holds the tiles, 2 (written now) the tiles and the identities
// of the events they hold (aggfold.go).
const (
	tilesFormatVersion1 = 1
	tilesFormatVersion  = 2
)

// aggLayout is how an aggregation view's tiles are laid out and read.
type aggLayout struct {
	columns []definitions.Field // the event columns, in the view's order
	series  []tileSeries
	outs    []aggOut // per feature of the view
	stored  []definitions.Field
	tags    []uint32
}

// tileSeries is the tiles of one event column at one window's resolution.
type tileSeries struct {
	col      int // into columns
	float    bool
	window   int64 // µs
	tile     int64 // µs
	distinct bool
	str      bool // a string column: its values count and are last's, as strings
	last     bool // last is asked: a string column's tiles hold their last value
}

type aggOut struct {
	series int
	fn     definitions.AggFunc
	typ    definitions.Type
}

func newAggLayout(fv *definitions.FeatureView) (*aggLayout, error) {
	l := &aggLayout{columns: fv.Columns, stored: []definitions.Field{{Name: tilesFeature, Type: definitions.Type{Elem: definitions.Bytes}}}, tags: []uint32{FeatureTag(tilesFeature)}}
	for _, af := range fv.AggFeatures() {
		col := slices.IndexFunc(fv.Columns, func(c definitions.Field) bool { return c.Name == af.Column.Name })
		w := af.Window.Microseconds()
		if col < 0 || w <= 0 || w%(TilesPerWindow*int64(time.Second/time.Microsecond)) != 0 {
			return nil, fmt.Errorf("online view %q: aggregation %q: window %s must be a whole number of minutes: %w", fv.Name, af.Name, af.Window, ErrInvalidArgument)
		}
		s := slices.IndexFunc(l.series, func(ts tileSeries) bool { return ts.col == col && ts.window == w })
		if s < 0 {
			s = len(l.series)
			el := fv.Columns[col].Type.Elem
			l.series = append(l.series, tileSeries{col: col, window: w, tile: w / TilesPerWindow, float: el == definitions.Float32 || el == definitions.Float64,
				str: el == definitions.String})
		}
		if af.Function == definitions.AggCountDistinct {
			l.series[s].distinct = true
		}
		if af.Function == definitions.AggLast {
			l.series[s].last = true
		}
		out, _ := definitions.AggOutputType(af.Function, af.Column.Type)
		l.outs = append(l.outs, aggOut{series: s, fn: af.Function, typ: out})
	}
	return l, nil
}

// IsAggregation reports whether v is an aggregation view, stored online as tiles.
func (v *View) IsAggregation() bool { return v.agg != nil }

// storedFeatures are the features a stored row holds: the view's features, or for an
// aggregation view the one tiles value.
func (v *View) storedFeatures() ([]definitions.Field, []uint32) {
	if v.agg != nil {
		return v.agg.stored, v.agg.tags
	}
	return v.Features, v.tags
}

// AggEvent is one raw event of an aggregation view: its timestamps (a zero CreatedTS is none)
// and one value per event column of the view (definitions.FeatureView.Columns), null allowed.
type AggEvent struct {
	EventTS, CreatedTS time.Time
	Values             []Value
}

// tile is the partial aggregate of one series over one tile (the aggfn kernel the offline
// join uses too), and the tile's distinct values, sorted, for count_distinct.
type tile struct {
	idx int64
	aggfn.State
	distinct []string
}

// BuildTiles encodes the tiles of one entity of aggregation view v from all of its events
// that can still be read at or after now, and returns the greatest event timestamp. Events with
// identical (event_ts, created_ts) count once, the last one given winning, as in the offline
// store. Materialization rebuilds an entity's tiles this way, so re-running it is idempotent.
func (v *View) BuildTiles(events []AggEvent, now time.Time) ([]byte, time.Time, error) {
	if v.agg == nil {
		return nil, time.Time{}, fmt.Errorf("view %q has no aggregations: %w", v.Name, ErrInvalidArgument)
	}
	evs := slices.Clone(events)
	slices.SortStableFunc(evs, func(a, b AggEvent) int {
		if c := a.EventTS.Compare(b.EventTS); c != 0 {
			return c
		}
		return cmp.Compare(createdMicros(a.CreatedTS), createdMicros(b.CreatedTS))
	})
	dedup := evs[:0]
	for i, e := range evs {
		if i+1 < len(evs) && evs[i+1].EventTS.Equal(e.EventTS) && createdMicros(evs[i+1].CreatedTS) == createdMicros(e.CreatedTS) {
			continue
		}
		dedup = append(dedup, e)
	}
	return v.FoldTiles(nil, dedup, now)
}

// FoldTiles folds events into an entity's encoded tiles (nil: none yet) and returns the new
// encoding and the greatest event timestamp. Each event counts once per call: folding the same
// event twice counts it twice, so a caller that may resend events (a push retry) must
// deduplicate them first (FoldEvents does) or rebuild with BuildTiles. The encoding records
// the identity (event_ts, created_ts) of every event it holds (aggfold.go). Tiles that no read
// at or after the earlier of now and the newest event can reach are dropped, and so are the
// identities of the events they held.
func (v *View) FoldTiles(enc []byte, events []AggEvent, now time.Time) ([]byte, time.Time, error) {
	st, err := v.decodeTiles(enc)
	if err != nil {
		return nil, time.Time{}, err
	}
	if err := st.fold(events); err != nil {
		return nil, time.Time{}, err
	}
	b, latest := st.finish(now)
	return b, latest, nil
}

// tileState is an entity's decoded tiles, for folding.
type tileState struct {
	v      *View
	series [][]tile
	latest int64     // µs, math.MinInt64 for none
	ids    []eventID // of the events the tiles hold, sorted
	added  []eventID // of the events folded since decoding, in folding order
}

func (v *View) decodeTiles(enc []byte) (*tileState, error) {
	if v.agg == nil {
		return nil, fmt.Errorf("view %q has no aggregations: %w", v.Name, ErrInvalidArgument)
	}
	series, latest, ids, err := v.agg.decode(enc)
	if err != nil {
		return nil, fmt.Errorf("view %q: %w", v.Name, err)
	}
	return &tileState{v: v, series: series, latest: latest, ids: ids}, nil
}

// check tells whether e is an event the view can fold.
func (st *tileState) check(e *AggEvent) error {
	v, l := st.v, st.v.agg
	if len(e.Values) != len(l.columns) {
		return fmt.Errorf("view %q: event has %d values for %d columns: %w", v.Name, len(e.Values), len(l.columns), ErrInvalidArgument)
	}
	if e.EventTS.IsZero() {
		return fmt.Errorf("view %q: event has no event timestamp: %w", v.Name, ErrInvalidArgument)
	}
	for _, ts := range l.series {
		val := e.Values[ts.col]
		if ct := l.columns[ts.col].Type; !val.IsNull() && val.Type() != ct {
			return fmt.Errorf("view %q: column %q is %s, got a %s value: %w", v.Name, l.columns[ts.col].Name, ct, val.Type(), ErrTypeMismatch)
		}
	}
	return nil
}

// fold adds events to the tiles, each once.
func (st *tileState) fold(events []AggEvent) error {
	l := st.v.agg
	for i := range events {
		if err := st.check(&events[i]); err != nil {
			return err
		}
	}
	for _, e := range events {
		ev := e.EventTS.UnixMicro()
		st.latest = max(st.latest, ev)
		st.added = append(st.added, eventID{ev: ev, cr: createdMicros(e.CreatedTS)})
		for s, ts := range l.series {
			val := e.Values[ts.col]
			if val.IsNull() {
				continue
			}
			idx := floorDiv(ev, ts.tile)
			tiles := st.series[s]
			i, found := slices.BinarySearchFunc(tiles, idx, func(t tile, x int64) int { return cmp.Compare(t.idx, x) })
			if !found {
				tiles = slices.Insert(tiles, i, tile{idx: idx})
			}
			tiles[i].add(&ts, ev, createdMicros(e.CreatedTS), val)
			st.series[s] = tiles
		}
	}
	return nil
}

// finish drops the tiles, and the identities of events, that no read at or after
// min(now, newest event) can reach, and encodes the rest.
func (st *tileState) finish(now time.Time) ([]byte, time.Time) {
	l := st.v.agg
	from := st.latest
	if !now.IsZero() {
		from = min(from, now.UnixMicro())
	}
	for s, ts := range l.series {
		oldest := floorDiv(from, ts.tile) - TilesPerWindow
		st.series[s] = slices.DeleteFunc(st.series[s], func(t tile) bool { return t.idx <= oldest })
	}
	ids := st.ids
	if len(st.added) > 0 {
		ids = append(slices.Clone(st.ids), st.added...)
		slices.SortFunc(ids, compareIDs)
		ids = slices.Compact(ids)
	}
	ids = slices.DeleteFunc(ids, func(id eventID) bool { return !l.live(id.ev, from) })
	return l.encode(st.series, ids), time.UnixMicro(st.latest).UTC()
}

func createdMicros(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixMicro()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// bits is a value's number as int64 bits, or float64 bits for a float series.
func bits(val Value, float bool) uint64 {
	if float && val.Type().Elem == definitions.Float32 {
		return math.Float64bits(float64(math.Float32frombits(uint32(val.Bits()))))
	}
	return val.Bits()
}

func (t *tile) add(ts *tileSeries, ev, cr int64, val Value) {
	if ts.distinct {
		k := val.Payload()
		if val.Type().Elem != definitions.String && val.Type().Elem != definitions.Bytes {
			k = aggfn.DistinctKey(val.Bits())
		}
		if i, found := slices.BinarySearch(t.distinct, k); !found {
			t.distinct = slices.Insert(t.distinct, i, k)
		}
	}
	if ts.str {
		t.AddString(val.Payload(), ev, cr)
		return
	}
	t.Add(bits(val, ts.float), ev, cr, ts.float)
}

func (l *aggLayout) encode(series [][]tile, ids []eventID) []byte {
	b := []byte{tilesFormatVersion}
	b = binary.AppendUvarint(b, uint64(len(series)))
	for s, tiles := range series {
		b = binary.AppendUvarint(b, uint64(len(tiles)))
		prev := int64(0)
		for _, t := range tiles {
			b = binary.AppendVarint(b, t.idx-prev)
			prev = t.idx
			b = binary.AppendUvarint(b, uint64(t.N))
			b = binary.LittleEndian.AppendUint64(b, t.Sum)
			b = binary.AppendVarint(b, t.SumHi)
			b = binary.LittleEndian.AppendUint64(b, t.Min)
			b = binary.LittleEndian.AppendUint64(b, t.Max)
			b = binary.AppendVarint(b, t.LastEv)
			b = binary.AppendVarint(b, t.LastCr)
			b = binary.LittleEndian.AppendUint64(b, t.Last)
			if l.series[s].str && l.series[s].last {
				b = binary.AppendUvarint(b, uint64(len(t.LastStr)))
				b = append(b, t.LastStr...)
			}
			if l.series[s].distinct {
				b = binary.AppendUvarint(b, uint64(len(t.distinct)))
				for _, k := range t.distinct {
					b = binary.AppendUvarint(b, uint64(len(k)))
					b = append(b, k...)
				}
			}
		}
	}
	return appendIDs(b, ids)
}

// decode reads encoded tiles; nil or empty is no tiles. It returns the newest event time
// (µs) among the tiles' last events, math.MinInt64 for none, and the identities of the events
// the tiles hold (none in the first format version).
func (l *aggLayout) decode(enc []byte) ([][]tile, int64, []eventID, error) {
	series := make([][]tile, len(l.series))
	latest, rest, err := l.scan(string(enc), func(s int, t *tile) {
		c := *t
		c.distinct = slices.Clone(t.distinct)
		series[s] = append(series[s], c)
	})
	if err != nil {
		return nil, 0, nil, err
	}
	var ids []eventID
	if len(enc) > 0 && enc[0] == tilesFormatVersion {
		if ids, err = decodeIDs(rest); err != nil {
			return nil, 0, nil, err
		}
	} else if rest != "" {
		return nil, 0, nil, fmt.Errorf("aggregation tiles: trailing bytes: %w", ErrCorrupt)
	}
	return series, latest, ids, nil
}

// scan walks encoded tiles in order, calling visit with each (series, tile); the tile and its
// distinct values (substrings of enc) are valid only during the call. It returns the newest
// event time (µs), math.MinInt64 for none, and what follows the tiles (the event identities of
// format version 2).
func (l *aggLayout) scan(enc string, visit func(s int, t *tile)) (int64, string, error) {
	latest := int64(math.MinInt64)
	if len(enc) == 0 {
		return latest, "", nil
	}
	bad := func(what string) error { return fmt.Errorf("aggregation tiles: %s: %w", what, ErrCorrupt) }
	if enc[0] != tilesFormatVersion && enc[0] != tilesFormatVersion1 {
		return 0, "", bad("unknown format version")
	}
	v2 := enc[0] == tilesFormatVersion
	p := enc[1:]
	uv := func() (uint64, bool) {
		var x uint64
		for i := 0; i < len(p) && i < binary.MaxVarintLen64; i++ {
			b := p[i]
			if b < 0x80 {
				if i == binary.MaxVarintLen64-1 && b > 1 {
					return 0, false
				}
				p = p[i+1:]
				return x | uint64(b)<<(7*i), true
			}
			x |= uint64(b&0x7f) << (7 * i)
		}
		return 0, false
	}
	sv := func() (int64, bool) {
		ux, ok := uv()
		x := int64(ux >> 1)
		if ux&1 != 0 {
			x = ^x
		}
		return x, ok
	}
	u64 := func() (uint64, bool) {
		if len(p) < 8 {
			return 0, false
		}
		x := uint64(p[0]) | uint64(p[1])<<8 | uint64(p[2])<<16 | uint64(p[3])<<24 | uint64(p[4])<<32 | uint64(p[5])<<40 | uint64(p[6])<<48 | uint64(p[7])<<56
		p = p[8:]
		return x, true
	}
	ns, ok := uv()
	if !ok || ns != uint64(len(l.series)) {
		return 0, "", bad("series count differs from the view's aggregations")
	}
	var t tile
	for s := range l.series {
		nt, ok := uv()
		if !ok || nt > uint64(len(p)) {
			return 0, "", bad("tile count")
		}
		prev := int64(0)
		for range nt {
			d, ok1 := sv()
			n, ok2 := uv()
			sum, ok3 := u64()
			var sumHi int64
			if v2 {
				hi, ok := sv()
				ok3 = ok3 && ok
				sumHi = hi
			} else if !l.series[s].float {
				sumHi = aggfn.Widen(sum) // format 1 held int64 sums
			}
			mn, ok4 := u64()
			mx, ok5 := u64()
			le, ok6 := sv()
			lc, ok7 := sv()
			lv, ok8 := u64()
			if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || !ok7 || !ok8 {
				return 0, "", bad("truncated tile")
			}
			var lastStr string
			if v2 && l.series[s].str && l.series[s].last {
				ln, ok := uv()
				if !ok || ln > uint64(len(p)) {
					return 0, "", bad("last value")
				}
				lastStr, p = p[:ln], p[ln:]
			}
			prev += d
			t = tile{idx: prev, State: aggfn.State{N: int64(n), Sum: sum, SumHi: sumHi, Min: mn, Max: mx, LastEv: le, LastCr: lc, Last: lv, LastStr: lastStr}, distinct: t.distinct[:0]}
			if t.N > 0 {
				latest = max(latest, le)
			}
			if l.series[s].distinct {
				nd, ok := uv()
				if !ok || nd > uint64(len(p)) {
					return 0, "", bad("distinct count")
				}
				for range nd {
					ln, ok := uv()
					if !ok || ln > uint64(len(p)) {
						return 0, "", bad("distinct value")
					}
					t.distinct = append(t.distinct, p[:ln])
					p = p[ln:]
				}
			}
			visit(s, &t)
		}
	}
	return latest, p, nil
}

// readTiles computes the view's features at now from encoded tiles into out and found (one
// entry per feature): each window is the TilesPerWindow tiles ending with the one holding now.
func (l *aggLayout) readTiles(enc string, now time.Time, out []Value, found []bool) error {
	t := now.UnixMicro()
	var partsBuf [16]aggfn.State
	var countBuf [16]int64
	parts, dcount := partsBuf[:0], countBuf[:0]
	if len(l.series) > len(partsBuf) {
		parts, dcount = make([]aggfn.State, 0, len(l.series)), make([]int64, 0, len(l.series))
	}
	parts, dcount = parts[:len(l.series)], dcount[:len(l.series)]
	var sets []map[string]struct{}
	for s, ts := range l.series {
		if ts.distinct {
			if sets == nil {
				sets = make([]map[string]struct{}, len(l.series))
			}
			sets[s] = map[string]struct{}{}
		}
	}
	_, _, err := l.scan(enc, func(s int, tl *tile) {
		ts := &l.series[s]
		k := floorDiv(t, ts.tile)
		if tl.idx <= k-TilesPerWindow || tl.idx > k {
			return
		}
		parts[s] = aggfn.Merge(parts[s], tl.State, ts.float)
		for _, d := range tl.distinct {
			sets[s][d] = struct{}{}
		}
	})
	if err != nil {
		return err
	}
	for s := range sets {
		if sets[s] != nil {
			dcount[s] = int64(len(sets[s]))
		}
	}
	for f, o := range l.outs {
		found[f] = true
		b, ok := parts[o.series].Result(o.fn, l.series[o.series].float, dcount[o.series])
		switch {
		case !ok:
			out[f] = Null()
		case o.fn == definitions.AggCount || o.fn == definitions.AggCountDistinct:
			out[f] = Int64(int64(b))
		case o.fn == definitions.AggMean:
			out[f] = Float64(math.Float64frombits(b))
		case o.fn == definitions.AggLast && l.series[o.series].str:
			out[f] = String(parts[o.series].LastStr)
		default:
			out[f] = valueOfBits(b, o.typ)
		}
	}
	return nil
}

// valueOfBits is a result of sum, min, max or last as a value of the output type t.
func valueOfBits(b uint64, t definitions.Type) Value {
	switch t.Elem {
	case definitions.Float64:
		return Float64(math.Float64frombits(b))
	case definitions.Float32:
		return Float32(float32(math.Float64frombits(b)))
	case definitions.Int32:
		return Int32(int32(int64(b)))
	case definitions.Bool:
		return Bool(b != 0)
	}
	return value.FromBits(t, b) // int64, timestamp (µs)
}

// MaxWindow is the longest aggregation window of an aggregation view, 0 for other views.
func (v *View) MaxWindow() time.Duration {
	if v.agg == nil {
		return 0
	}
	var m int64
	for _, s := range v.agg.series {
		m = max(m, s.window)
	}
	return time.Duration(m) * time.Microsecond
}
