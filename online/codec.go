package online

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/strbin"
	"github.com/quiverfs/quiver/value"
)

// RowFormatVersion is the first byte of every encoded row (docs/online-format.md).
const RowFormatVersion = 0x01

// RowHeaderLen is the length of an encoded row's fixed header: the version byte, then event_ts
// and created_ts as 8-byte order-preserving big-endian integers. Comparing the 16 bytes after
// the version byte as unsigned bytes orders rows by (event_ts, created_ts).
const RowHeaderLen = 17

const arrayBit = 0x80

func typeByte(t definitions.Type) byte {
	if t.Elem == definitions.Invalid {
		return 0
	}
	b := byte(t.Elem)
	if t.Array {
		b |= arrayBit
	}
	return b
}

func typeOfByte(b byte) (definitions.Type, bool) {
	t := definitions.Type{Elem: definitions.Scalar(b &^ arrayBit), Array: b&arrayBit != 0}
	return t, t.Valid()
}

// fixedSize is the payload size of a scalar type, 0 for variable-length payloads.
func fixedSize(t definitions.Type) int {
	if t.Array {
		return 0
	}
	switch t.Elem {
	case definitions.Int32, definitions.Float32:
		return 4
	case definitions.Int64, definitions.Float64, definitions.Timestamp:
		return 8
	case definitions.Bool:
		return 1
	}
	return 0
}

func appendPayload(b []byte, v Value) []byte {
	switch fixedSize(v.Type()) {
	case 4:
		return binary.LittleEndian.AppendUint32(b, uint32(v.Bits()))
	case 8:
		return binary.LittleEndian.AppendUint64(b, v.Bits())
	case 1:
		return append(b, byte(v.Bits()))
	}
	b = binary.AppendUvarint(b, uint64(len(v.Payload())))
	return append(b, v.Payload()...)
}

// OrderedMicros maps a time to 8 bytes whose unsigned big-endian order is the time order.
func OrderedMicros(t time.Time) uint64 { return uint64(t.UnixMicro()) ^ (1 << 63) }

func fromOrderedMicros(u uint64) time.Time { return time.UnixMicro(int64(u ^ (1 << 63))).UTC() }

// EncodeRow appends the encoding of r, a row of view v, to dst. It checks that r has one value
// per feature of v and that every non-null value has its feature's type.
func EncodeRow(dst []byte, v *View, r *Row) ([]byte, error) {
	features, tags := v.storedFeatures()
	if len(r.Values) != len(features) {
		return dst, fmt.Errorf("view %q: row has %d values for %d features: %w", v.Name, len(r.Values), len(features), ErrInvalidArgument)
	}
	if r.EventTS.IsZero() {
		return dst, fmt.Errorf("view %q: row has no event timestamp: %w", v.Name, ErrInvalidArgument)
	}
	dst = append(dst, RowFormatVersion)
	dst = binary.BigEndian.AppendUint64(dst, OrderedMicros(r.EventTS))
	created := r.CreatedTS
	if created.IsZero() {
		created = time.UnixMicro(0)
	}
	dst = binary.BigEndian.AppendUint64(dst, OrderedMicros(created))
	dst = binary.AppendUvarint(dst, uint64(len(r.Values)))
	for i, val := range r.Values {
		dst = binary.LittleEndian.AppendUint32(dst, tags[i])
		if val.IsNull() {
			dst = append(dst, 0)
			continue
		}
		if val.Type() != features[i].Type {
			return dst, fmt.Errorf("view %q: feature %q is %s, got a %s value: %w", v.Name, features[i].Name, features[i].Type, val.Type(), ErrTypeMismatch)
		}
		dst = append(dst, typeByte(val.Type()))
		dst = appendPayload(dst, val)
	}
	return dst, nil
}

// RowTimes returns the event and created timestamps of an encoded row.
func RowTimes(data string) (eventTS, createdTS time.Time, err error) {
	if len(data) < RowHeaderLen || data[0] != RowFormatVersion {
		return time.Time{}, time.Time{}, fmt.Errorf("row header: %w", ErrCorrupt)
	}
	return fromOrderedMicros(be64(data[1:])), fromOrderedMicros(be64(data[9:])), nil
}

func be64(s string) uint64 {
	_ = s[7]
	return uint64(s[7]) | uint64(s[6])<<8 | uint64(s[5])<<16 | uint64(s[4])<<24 |
		uint64(s[3])<<32 | uint64(s[2])<<40 | uint64(s[1])<<48 | uint64(s[0])<<56
}

// DecodeRow decodes an encoded row of view v into out and found, both of length
// len(v.Features): for every stored feature that v still declares with the same type, out[i]
// is its value and found[i] is set; other entries are left alone. Stored features that v no
// longer declares, or declares with another type, are skipped. Values share data's memory.
// A malformed row gives an error wrapping ErrCorrupt, never a panic.
func DecodeRow(data string, v *View, out []Value, found []bool) (eventTS time.Time, err error) {
	features, tags := v.storedFeatures()
	if len(out) < len(features) || len(found) < len(features) {
		return time.Time{}, fmt.Errorf("decode row of view %q: output shorter than %d features: %w", v.Name, len(features), ErrInvalidArgument)
	}
	eventTS, _, err = RowTimes(data)
	if err != nil {
		return time.Time{}, err
	}
	p := data[RowHeaderLen:]
	n, k := strbin.Uvarint(p)
	if k <= 0 || n > uint64(len(p)) {
		return time.Time{}, fmt.Errorf("row feature count: %w", ErrCorrupt)
	}
	p = p[k:]
	for i := 0; i < int(n); i++ {
		if len(p) < 5 {
			return time.Time{}, fmt.Errorf("row feature %d header: %w", i, ErrCorrupt)
		}
		tag := strbin.Uint32(p)
		tb := p[4]
		p = p[5:]
		var val Value
		if tb != 0 {
			t, ok := typeOfByte(tb)
			if !ok {
				return time.Time{}, fmt.Errorf("row feature %d type %#x: %w", i, tb, ErrCorrupt)
			}
			switch size := fixedSize(t); size {
			case 0:
				ln, k := strbin.Uvarint(p)
				if k <= 0 || ln > uint64(len(p)-k) {
					return time.Time{}, fmt.Errorf("row feature %d length: %w", i, ErrCorrupt)
				}
				payload := p[k : k+int(ln)]
				p = p[k+int(ln):]
				if !value.ValidPayload(t, payload) {
					return time.Time{}, fmt.Errorf("row feature %d payload: %w", i, ErrCorrupt)
				}
				val = value.FromPayload(t, payload)
			default:
				if len(p) < size {
					return time.Time{}, fmt.Errorf("row feature %d payload: %w", i, ErrCorrupt)
				}
				var bits uint64
				switch size {
				case 4:
					bits = uint64(strbin.Uint32(p))
					if t.Elem == definitions.Int32 {
						bits = uint64(int64(int32(bits)))
					}
				case 8:
					bits = strbin.Uint64(p)
				case 1:
					bits = uint64(p[0] & 1)
				}
				val = value.FromBits(t, bits)
				p = p[size:]
			}
		}
		j := i
		if j >= len(tags) || tags[j] != tag {
			j = -1
			for f, ft := range tags {
				if ft == tag {
					j = f
					break
				}
			}
		}
		if j < 0 {
			continue
		}
		if tb != 0 && val.Type() != features[j].Type {
			// A compatible widening (int32 to int64, float32 to float64) reads the stored
			// value as the new type; any other type change reads as not found.
			if !definitions.Widens(val.Type(), features[j].Type) {
				continue
			}
			val, _ = value.Coerce(val, features[j].Type) // a widening never fails
		}
		out[j], found[j] = val, true
	}
	if len(p) != 0 {
		return time.Time{}, fmt.Errorf("row has %d trailing bytes: %w", len(p), ErrCorrupt)
	}
	return eventTS, nil
}
