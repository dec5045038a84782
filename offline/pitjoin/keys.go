package pitjoin

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// keyKind is the family a join key column belongs to; the entity and feature sides must agree.
// Integers of any width compare by value (an int32 entity key matches an int64 feature key).
type keyKind uint8

const (
	kindInt keyKind = iota + 1 // signed integers and unsigned ones up to 32 bits
	kindUint64
	kindString
	kindBinary
)

func (k keyKind) String() string {
	switch k {
	case kindInt:
		return "integer"
	case kindUint64:
		return "uint64"
	case kindString:
		return "string"
	case kindBinary:
		return "binary"
	}
	return "unsupported"
}

func keyKindOf(dt arrow.DataType) (keyKind, bool) {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32:
		return kindInt, true
	case arrow.UINT64:
		return kindUint64, true
	case arrow.STRING, arrow.LARGE_STRING:
		return kindString, true
	case arrow.BINARY, arrow.LARGE_BINARY:
		return kindBinary, true
	}
	return 0, false
}

// keyColumn is one batch's key column in a normalized, typed form: ints as int64 values,
// strings and binaries as offsets into their value bytes. No per-value boxing.
type keyColumn struct {
	arr   arrow.Array // for null checks
	ints  []int64
	off32 []int32
	off64 []int64
	data  []byte
}

func (c *keyColumn) bytesAt(i int) []byte {
	if c.off32 != nil {
		return c.data[c.off32[i]:c.off32[i+1]]
	}
	return c.data[c.off64[i]:c.off64[i+1]]
}

func newKeyColumn(a arrow.Array) (keyColumn, error) {
	c := keyColumn{arr: a}
	switch a := a.(type) {
	case *array.Int64:
		c.ints = a.Int64Values()
	case *array.Uint64:
		v := a.Uint64Values()
		c.ints = make([]int64, len(v))
		for i, x := range v {
			c.ints[i] = int64(x)
		}
	case *array.Int32:
		c.ints = widen(a.Int32Values())
	case *array.Int16:
		c.ints = widen(a.Int16Values())
	case *array.Int8:
		c.ints = widen(a.Int8Values())
	case *array.Uint32:
		c.ints = widen(a.Uint32Values())
	case *array.Uint16:
		c.ints = widen(a.Uint16Values())
	case *array.Uint8:
		c.ints = widen(a.Uint8Values())
	case *array.String:
		c.off32, c.data = a.ValueOffsets(), a.ValueBytes()
	case *array.LargeString:
		c.off64, c.data = a.ValueOffsets(), a.ValueBytes()
	case *array.Binary:
		c.off32, c.data = a.ValueOffsets(), a.ValueBytes()
	case *array.LargeBinary:
		c.off64, c.data = a.ValueOffsets(), a.ValueBytes()
	default:
		return c, fmt.Errorf("join key of type %s: %w", a.DataType(), ErrTypeMismatch)
	}
	if c.off32 != nil && len(c.off32) == 0 {
		c.off32 = []int32{0}
	}
	if c.off64 != nil && len(c.off64) == 0 {
		c.off64 = []int64{0}
	}
	return c, nil
}

func widen[T int8 | int16 | int32 | uint8 | uint16 | uint32](v []T) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// keyTable maps join-key values to dense group ids 0..n-1, in first-insertion order. It is an
// open-addressing hash table; equal hashes are confirmed by comparing the key itself, so hash
// collisions never merge two keys. A single integer key is stored in its slot; anything else
// (one string key, composite keys) as its encoded bytes. After building, lookups are safe from
// several goroutines.
type keyTable struct {
	singleInt bool
	seed      maphash.Seed
	slots     []slot
	mask      uint64
	hashes    []uint64 // per group
	offs      []int    // per group boundaries into arena, len groups+1 (bytes keys)
	arena     []byte
	// direct maps key-dmin to group+1 when a single integer key's values are dense enough
	// (built by freeze); lookups then touch a small array instead of probing the hash table.
	direct []int32
	dmin   int64
}

// freeze ends insertion. For dense single integer keys it builds the direct lookup array.
func (t *keyTable) freeze() {
	if !t.singleInt || len(t.hashes) == 0 {
		return
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, sl := range t.slots {
		if sl.g != 0 {
			lo, hi = min(lo, int64(sl.key)), max(hi, int64(sl.key))
		}
	}
	span := uint64(hi) - uint64(lo)
	if span >= uint64(4*len(t.hashes)+1024) {
		return
	}
	t.dmin = lo
	t.direct = make([]int32, span+1)
	for _, sl := range t.slots {
		if sl.g != 0 {
			t.direct[int64(sl.key)-lo] = sl.g
		}
	}
}

// slot holds the key (single integer keys) or the hash, and group+1 (0: empty), so that most
// probes touch one cache line.
type slot struct {
	key uint64
	g   int32
}

func newKeyTable(singleInt bool, sizeHint int) *keyTable {
	t := &keyTable{singleInt: singleInt, seed: maphash.MakeSeed(), offs: []int{0}}
	n := 16
	for n < 2*sizeHint {
		n <<= 1
	}
	t.slots = make([]slot, n)
	t.mask = uint64(n - 1)
	return t
}

func (t *keyTable) len() int { return len(t.hashes) }

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func (t *keyTable) grow() {
	old := t.slots
	n := len(old) * 2
	t.slots = make([]slot, n)
	t.mask = uint64(n - 1)
	for _, sl := range old {
		if sl.g == 0 {
			continue
		}
		s := t.hashes[sl.g-1] & t.mask
		for t.slots[s].g != 0 {
			s = (s + 1) & t.mask
		}
		t.slots[s] = sl
	}
}

func (t *keyTable) findInt(v int64, insert bool) int32 {
	h := mix64(uint64(v))
	s := h & t.mask
	for {
		sl := &t.slots[s]
		if sl.g == 0 {
			break
		}
		if sl.key == uint64(v) {
			return sl.g - 1
		}
		s = (s + 1) & t.mask
	}
	if !insert {
		return -1
	}
	g := int32(len(t.hashes))
	t.hashes = append(t.hashes, h)
	t.slots[s] = slot{key: uint64(v), g: g + 1}
	if 2*len(t.hashes) > len(t.slots) {
		t.grow()
	}
	return g
}

func (t *keyTable) findBytes(b []byte, insert bool) int32 {
	h := maphash.Bytes(t.seed, b)
	s := h & t.mask
	for {
		sl := &t.slots[s]
		if sl.g == 0 {
			break
		}
		if sl.key == h && bytes.Equal(t.arena[t.offs[sl.g-1]:t.offs[sl.g]], b) {
			return sl.g - 1
		}
		s = (s + 1) & t.mask
	}
	if !insert {
		return -1
	}
	g := int32(len(t.hashes))
	t.hashes = append(t.hashes, h)
	t.arena = append(t.arena, b...)
	t.offs = append(t.offs, len(t.arena))
	t.slots[s] = slot{key: h, g: g + 1}
	if 2*len(t.hashes) > len(t.slots) {
		t.grow()
	}
	return g
}

// groups writes each row's group id (or -1: null key, or not found when !insert) to out.
func (t *keyTable) groups(cols []keyColumn, n int, insert bool, out []int32) {
	if t.singleInt && !insert && t.direct != nil {
		c := &cols[0]
		nulls := c.arr.NullN() > 0
		d, lo := t.direct, t.dmin
		span := uint64(len(d))
		for i, v := range c.ints[:n] {
			k := uint64(v) - uint64(lo)
			if k >= span || (nulls && c.arr.IsNull(i)) {
				out[i] = -1
				continue
			}
			out[i] = d[k] - 1
		}
		return
	}
	if t.singleInt {
		c := &cols[0]
		nulls := c.arr.NullN() > 0
		for i := 0; i < n; i++ {
			if nulls && c.arr.IsNull(i) {
				out[i] = -1
				continue
			}
			out[i] = t.findInt(c.ints[i], insert)
		}
		return
	}
	anyNulls := false
	for j := range cols {
		anyNulls = anyNulls || cols[j].arr.NullN() > 0
	}
	single := len(cols) == 1
	var buf []byte
	var tmp [binary.MaxVarintLen64]byte
rows:
	for i := 0; i < n; i++ {
		if anyNulls {
			for j := range cols {
				if cols[j].arr.IsNull(i) {
					out[i] = -1
					continue rows
				}
			}
		}
		if single && cols[0].ints == nil {
			out[i] = t.findBytes(cols[0].bytesAt(i), insert)
			continue
		}
		buf = buf[:0]
		for j := range cols {
			c := &cols[j]
			if c.ints != nil {
				buf = binary.LittleEndian.AppendUint64(buf, uint64(c.ints[i]))
				continue
			}
			b := c.bytesAt(i)
			k := binary.PutUvarint(tmp[:], uint64(len(b)))
			buf = append(buf, tmp[:k]...)
			buf = append(buf, b...)
		}
		out[i] = t.findBytes(buf, insert)
	}
}
