// Package strbin reads little-endian and varint fields from a string without copying it to a
// []byte: the online row format (online/codec.go) and value's packed arrays (value/value.go)
// are both decoded from strings Redis handed back.
package strbin

import "encoding/binary"

// Uint32 is binary.LittleEndian.Uint32 over the first 4 bytes of s.
func Uint32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// Uint64 is binary.LittleEndian.Uint64 over the first 8 bytes of s.
func Uint64(s string) uint64 {
	_ = s[7]
	return uint64(Uint32(s)) | uint64(Uint32(s[4:]))<<32
}

// Uvarint is binary.Uvarint over a string: the value and the bytes read, k <= 0 on a
// malformed (k < 0, overflow) or truncated (k == 0) varint.
func Uvarint(s string) (v uint64, k int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		b := s[i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, -1
			}
			return x | uint64(b)<<shift, i + 1
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
}
