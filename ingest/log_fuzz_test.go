package ingest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/offline"
)

// fuzzRecord is a small canonical batch: user_id, event_ts, created_ts, clicks.
func fuzzRecord(n int) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: offline.EventTS, Type: offline.TimestampType, Nullable: true},
		{Name: offline.CreatedTS, Type: offline.TimestampType, Nullable: true},
		{Name: "clicks", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(time.Date(2026, 11, 1, 0, 0, i, 0, time.UTC).UnixMicro()))
		b.Field(2).(*array.TimestampBuilder).AppendNull()
		b.Field(3).(*array.Int64Builder).Append(int64(i * 10))
	}
	return b.NewRecordBatch()
}

// fuzzSeeds are real segments: one the log wrote, a first-format one, and damaged variants.
func fuzzSeeds(t testing.TB) [][]byte {
	dir := t.TempDir()
	w, err := openWAL(dir)
	require.NoError(t, err)
	for i := range 3 {
		rec := fuzzRecord(i + 2)
		_, err := w.append(entryHeader{View: "v", Generation: 1, Rows: rec.NumRows()}, rec)
		rec.Release()
		require.NoError(t, err)
	}
	path := w.fSeg.path
	require.NoError(t, w.close())
	seg, err := os.ReadFile(path)
	require.NoError(t, err)

	rec := fuzzRecord(3)
	defer rec.Release()
	payload := func(seq uint64) []byte {
		body, err := encodeBatch(rec)
		require.NoError(t, err)
		p, err := encodePayload(entryHeader{Seq: seq, View: "v", Generation: 1, Rows: 3}, body)
		require.NoError(t, err)
		return p
	}
	var legacy []byte
	for seq := range uint64(2) {
		p := payload(seq + 1)
		legacy = binary.BigEndian.AppendUint32(legacy, uint32(len(p)))
		legacy = binary.BigEndian.AppendUint32(legacy, crc32.Checksum(p, crcTable))
		legacy = append(legacy, p...)
	}
	flipped := bytes.Clone(seg)
	flipped[len(flipped)/2] ^= 0x5A
	noHeader := bytes.Clone(seg[5:])
	torn := bytes.Clone(seg[:len(seg)-7])
	return [][]byte{seg, legacy, flipped, noHeader, torn, nil, []byte("QVRPLOG"), bytes.Repeat(frameMagic, 9)}
}

// checkScan reads data as a segment and checks what scanSegment promises: every payload it
// returns lies where it says, inside a frame whose checksums hold; damage and frames do not
// overlap and cover the segment in order.
func checkScan(t *testing.T, data []byte, legacy bool) segmentReport {
	var frames [][2]int64
	rep, err := scanSegment(bytes.NewReader(data), int64(len(data)), legacy, func(off int64, payload []byte) error {
		head := int64(frameHeaderLen)
		if legacy {
			head = legacyHeadLen
		}
		require.LessOrEqual(t, off+head+int64(len(payload)), int64(len(data)))
		h := data[off : off+head]
		if legacy {
			require.Equal(t, uint32(len(payload)), binary.BigEndian.Uint32(h[:4]))
			require.Equal(t, crc32.Checksum(payload, crcTable), binary.BigEndian.Uint32(h[4:8]))
		} else {
			require.Equal(t, frameMagic, h[:4])
			require.Equal(t, uint32(len(payload)), binary.BigEndian.Uint32(h[4:8]))
			require.Equal(t, crc32.Checksum(payload, crcTable), binary.BigEndian.Uint32(h[8:12]))
			require.Equal(t, crc32.Checksum(h[:12], crcTable), binary.BigEndian.Uint32(h[12:16]))
		}
		require.Equal(t, data[off+head:off+head+int64(len(payload))], payload)
		frames = append(frames, [2]int64{off, off + head + int64(len(payload))})
		if e, err := decodeEntry(payload); err == nil {
			e.rec.Release()
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, len(frames), rep.Frames)
	spans := frames
	for _, d := range rep.Damage {
		// Only a missing segment header is damage of no length (frames follow at once).
		require.True(t, d.Length > 0 || d.Offset == 0, "damage %+v", d)
		spans = append(spans, [2]int64{d.Offset, d.Offset + d.Length})
	}
	for i, a := range spans {
		require.True(t, a[0] >= 0 && a[1] <= int64(len(data)), "span %v outside the segment", a)
		for _, b := range spans[i+1:] {
			require.True(t, a[1] <= b[0] || b[1] <= a[0], "spans %v and %v overlap", a, b)
		}
	}
	if rep.TornTail >= 0 {
		for _, s := range spans {
			require.LessOrEqual(t, s[1], rep.TornTail, "a torn tail is the end of the segment")
		}
	}
	return rep
}

// FuzzReadSegment: the segment reader never panics or hangs, and never returns a payload
// whose checksum fails, whatever the bytes of the segment; a payload of any bytes inside a
// valid frame is read back as one frame and decodes or is reported undecodable, never
// panicking.
func FuzzReadSegment(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, legacy bool) {
		checkScan(t, data, legacy)

		framed := appendFrame(append(append([]byte{}, segMagic...), segmentVersion), data)
		rep := checkScan(t, framed, false)
		require.Equal(t, 1, rep.Frames)
		require.Empty(t, rep.Damage)
	})
}

// TestReadSegmentDamage: what the reader makes of the seed segments.
func TestReadSegmentDamage(t *testing.T) {
	seeds := fuzzSeeds(t)
	seg, legacy, flipped, noHeader, torn := seeds[0], seeds[1], seeds[2], seeds[3], seeds[4]
	rep := checkScan(t, seg, false)
	require.Equal(t, segmentReport{Frames: 3, TornTail: -1}, rep)
	rep = checkScan(t, legacy, true)
	require.Equal(t, segmentReport{Frames: 2, TornTail: -1}, rep)
	rep = checkScan(t, flipped, false)
	require.Equal(t, 2, rep.Frames, "the frame after the damaged one is read")
	require.Len(t, rep.Damage, 1)
	rep = checkScan(t, noHeader, false)
	require.Equal(t, 3, rep.Frames, "the frames after a damaged segment header are read")
	require.Len(t, rep.Damage, 1)
	require.Zero(t, rep.Damage[0].Offset)
	rep = checkScan(t, torn, false)
	require.Equal(t, 2, rep.Frames)
	require.Empty(t, rep.Damage)
	require.Positive(t, rep.TornTail)

	// On disk, through readSegment: the entries decode.
	p := filepath.Join(t.TempDir(), "00000000000000000001-ab.wal")
	require.NoError(t, os.WriteFile(p, flipped, 0o644))
	var seqs []uint64
	rep, err := readSegment(segment{path: p, logID: "ab"}, func(e entry) error {
		seqs = append(seqs, e.Seq)
		require.Equal(t, "ab", e.log)
		e.rec.Release()
		return nil
	})
	require.NoError(t, err)
	require.Len(t, seqs, 2)
	require.True(t, rep.damaged())
}
