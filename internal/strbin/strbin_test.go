package strbin

import (
	"encoding/binary"
	"testing"
)

// FuzzUvarint: Uvarint over a string agrees with binary.Uvarint over the same bytes (the value
// and length of a good varint; a bad one is k <= 0 for both, as callers treat it), and the
// fixed-width readers with binary.LittleEndian.
func FuzzUvarint(f *testing.F) {
	for _, s := range []string{"", "\x00", "\x7f", "\x80", "\x80\x01", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", "\x01\x02\x03\x04\x05\x06\x07\x08"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, k := Uvarint(s)
		wv, wk := binary.Uvarint([]byte(s))
		if (k <= 0) != (wk <= 0) || (wk > 0 && (v != wv || k != wk)) {
			t.Fatalf("Uvarint(%q) = %d, %d; binary.Uvarint: %d, %d", s, v, k, wv, wk)
		}
		if len(s) >= 8 {
			if got, want := Uint64(s), binary.LittleEndian.Uint64([]byte(s)); got != want {
				t.Fatalf("Uint64(%q) = %x, want %x", s, got, want)
			}
		}
		if len(s) >= 4 {
			if got, want := Uint32(s), binary.LittleEndian.Uint32([]byte(s)); got != want {
				t.Fatalf("Uint32(%q) = %x, want %x", s, got, want)
			}
		}
	})
}
