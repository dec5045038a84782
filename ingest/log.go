package ingest

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/quiverfs/quiver/internal/fsutil"
)

// The write-ahead log of accepted batches: a directory holding
//
//	lock                         flock(2)ed by the one process that owns the log
//	NNNNNNNNNNNNNNNNNNNN-ID.wal  segments: NNN orders them, ID is the log id that wrote them
//	quarantine/                  damaged segments, moved aside once their valid frames are committed
//	dead-letter/                 batches that fit no offline table (ingester.go)
//
// and, from Quiver versions before the segment format below, segments named by the sequence
// number of their first entry (NNNNNNNNNNNNNNNNNNNN.wal) with their log id in the file
// log-id; both are read, committed and removed like the others.
//
// Log ids and sequence numbers. Every Open draws a new random log id; the sequence numbers of
// its batches start at 1 and only grow, in memory, for as long as that process owns the log.
// So a (log id, sequence number) pair is never handed out twice, whatever happened to the
// directory before (clean shutdown, kill -9, segments removed or lost), and the committer's
// "the table already records this log up to sequence N" test can only match batches that
// were in fact committed. Segments left by an earlier process keep the id in their name.
//
// A segment starts with segMagic (7 bytes) and a format version byte, then holds frames:
//
//	magic (4) | payload length (uint32 BE) | CRC-32C of payload (uint32) | CRC-32C of the 12 bytes before (uint32) | payload
//
// The payload is a JSON header's length (uint32), the header, and the batch as an Arrow IPC
// stream. The header CRC makes a damaged length detectable before it is believed, and the
// magic lets a reader find the next frame after a damaged one (resynchronise). An entry is
// acknowledged only once its frame is fsynced. A frame cut short at the end of a segment (a
// crash mid-write) was never acknowledged; anything else that fails its checksums is damage:
// the reader skips it, reports it with its offset, and the committer moves the segment into
// quarantine/ after committing every valid frame in it. Segments of the first format
// (payload length, CRC-32C, payload; no magic) are read up to their first damaged frame.

const (
	lockFile       = "lock"
	legacyIDFile   = "log-id"
	segmentExt     = ".wal"
	quarantineDir  = "quarantine"
	deadLetterDir  = "dead-letter"
	segmentVersion = 2
	frameHeaderLen = 16
	legacyHeadLen  = 8
	// maxFrame bounds one entry, so a corrupt length cannot make recovery allocate wildly.
	maxFrame = 1 << 30
)

var (
	crcTable = crc32.MakeTable(crc32.Castagnoli)
	segMagic = []byte("QVRPLOG")
	// frameMagic starts every frame. Its first byte is not valid UTF-8, so JSON never holds it.
	frameMagic = []byte{0xF5, 'Q', 'V', 'F'}
)

// entryHeader describes one logged batch.
type entryHeader struct {
	Seq        uint64 `json:"seq"`
	View       string `json:"view"`
	Generation int    `json:"generation"`
	Rows       int64  `json:"rows"`
	// AckedMicros is when the batch was logged (Unix microseconds).
	AckedMicros int64 `json:"acked_micros"`
}

// entry is one logged batch read back.
type entry struct {
	entryHeader
	log string // the log id that wrote it
	rec arrow.RecordBatch
}

// segment is one closed log file.
type segment struct {
	path   string
	num    uint64 // the number in the file name: segments sort by it
	logID  string // the log id that wrote it
	legacy bool   // the first segment format
}

// wal is the log. It is safe for concurrent use.
type wal struct {
	dir  string
	id   string
	lock *os.File

	mu      sync.Mutex // guards f, next, written, closed, broken
	f       *os.File
	fSeg    segment
	fEmpty  bool
	next    uint64 // the next sequence number of log id
	nextNum uint64 // the number of the next segment file
	written int64  // bytes written in all segments since open
	closed  []segment

	syncMu sync.Mutex // serialises fsyncs; synced is read and written under it
	synced int64

	// broken is the first write or fsync error (ErrLogBroken; brokenDetail is the cause).
	// After it the log refuses every append, and appends waiting for an fsync fail: after a
	// failed fsync nothing written since the last good one is known to be on disk. A restart
	// recovers every acknowledged entry.
	broken, brokenDetail error
}

// openWAL opens (creating) the log in dir, taking its lock, under a new log id. It does not
// read old segments; they are listed in closed for the committer to replay.
func openWAL(dir string) (*wal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("push log %s: %w", dir, err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("push log %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("push log %s: %w (another quiver serve or stream uses it; give each process its own --push-log)", dir, ErrLogLocked)
	}
	w := &wal{dir: dir, lock: lf, next: 1, nextNum: 1}
	fail := func(err error) (*wal, error) {
		lf.Close()
		return nil, err
	}
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fail(err)
	}
	w.id = hex.EncodeToString(raw[:])
	names, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		return fail(err)
	}
	legacyID := ""
	for _, p := range names {
		s, ok := parseSegmentName(p)
		if !ok {
			continue // not ours
		}
		if s.legacy {
			if legacyID == "" {
				b, err := os.ReadFile(filepath.Join(dir, legacyIDFile))
				if err != nil {
					return fail(fmt.Errorf("push log %s: segment %s of the first format needs the file %s: %w", dir, filepath.Base(p), legacyIDFile, err))
				}
				legacyID = string(bytes.TrimSpace(b))
			}
			s.logID = legacyID
		}
		w.closed = append(w.closed, s)
		w.nextNum = max(w.nextNum, s.num+1)
	}
	sort.Slice(w.closed, func(i, j int) bool { return w.closed[i].num < w.closed[j].num })
	if legacyID == "" {
		// No segment of the first format is left: its id file has no reader.
		if err := os.Remove(filepath.Join(dir, legacyIDFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fail(fmt.Errorf("push log %s: %w", dir, err))
		}
	}
	if err := w.openSegment(); err != nil {
		return fail(err)
	}
	return w, nil
}

// parseSegmentName reads a segment's number and log id from its file name.
func parseSegmentName(p string) (segment, bool) {
	base := strings.TrimSuffix(filepath.Base(p), segmentExt)
	numPart, id, hasID := strings.Cut(base, "-")
	n, err := strconv.ParseUint(numPart, 10, 64)
	if err != nil || len(numPart) != 20 {
		return segment{}, false
	}
	if !hasID {
		return segment{path: p, num: n, legacy: true}, true
	}
	if id == "" {
		return segment{}, false
	}
	return segment{path: p, num: n, logID: id}, true
}

// openSegment starts a new segment. Callers hold mu (or own w exclusively).
func (w *wal) openSegment() error {
	s := segment{path: filepath.Join(w.dir, fmt.Sprintf("%020d-%s%s", w.nextNum, w.id, segmentExt)), num: w.nextNum, logID: w.id}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("push log segment: %w", err)
	}
	hdr := append(append([]byte{}, segMagic...), segmentVersion)
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		return fmt.Errorf("push log segment %s: %w", s.path, err)
	}
	if err := fsutil.SyncDir(w.dir); err != nil {
		f.Close()
		return fmt.Errorf("push log segment: %w", err)
	}
	w.f, w.fSeg, w.fEmpty = f, s, true
	w.nextNum++
	w.written += int64(len(hdr))
	return nil
}

// usable is nil when appends may succeed: the log is open and not broken.
func (w *wal) usable() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken != nil {
		return w.broken
	}
	if w.f == nil {
		return ErrClosed
	}
	return nil
}

// breakLocked records the log's first write or fsync error. The error callers get does not
// name the log's path (it reaches clients); brokenDetail keeps the whole error for the
// server's log. Callers hold mu.
func (w *wal) breakLocked(op string, err error) error {
	if w.broken == nil {
		w.brokenDetail = err
		cause := err
		var pe *os.PathError
		if errors.As(err, &pe) {
			cause = pe.Err
		}
		w.broken = &kindError{ErrLogBroken, fmt.Errorf("push log %s failed (%v): refusing pushes until the server restarts", op, cause)}
	}
	return w.broken
}

// brokenCause is the whole error that broke the log, or nil.
func (w *wal) brokenCause() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.brokenDetail
}

// appendFrame appends one frame for payload to b.
func appendFrame(b, payload []byte) []byte {
	start := len(b)
	b = append(b, frameMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(payload, crcTable))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:start+12], crcTable))
	return append(b, payload...)
}

// encodeBatch is a batch as an Arrow IPC stream.
func encodeBatch(rec arrow.RecordBatch) ([]byte, error) {
	var body bytes.Buffer
	iw := ipc.NewWriter(&body, ipc.WithSchema(rec.Schema()), ipc.WithAllocator(memory.DefaultAllocator))
	if err := iw.Write(rec); err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	if err := iw.Close(); err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return body.Bytes(), nil
}

// encodePayload is a frame's payload: the header's length, the header, the batch.
func encodePayload(h entryHeader, body []byte) ([]byte, error) {
	hdr, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	payload := make([]byte, 0, 4+len(hdr)+len(body))
	payload = binary.BigEndian.AppendUint32(payload, uint32(len(hdr)))
	payload = append(payload, hdr...)
	return append(payload, body...), nil
}

// append logs a batch and returns once it is fsynced, with its sequence number. Concurrent
// appends share fsyncs.
func (w *wal) append(h entryHeader, rec arrow.RecordBatch) (uint64, error) {
	body, err := encodeBatch(rec)
	if err != nil {
		return 0, err
	}

	w.mu.Lock()
	if w.broken != nil {
		w.mu.Unlock()
		return 0, w.broken
	}
	if w.f == nil {
		w.mu.Unlock()
		return 0, ErrClosed
	}
	h.Seq = w.next
	payload, err := encodePayload(h, body)
	if err != nil {
		w.mu.Unlock()
		return 0, err
	}
	frame := appendFrame(make([]byte, 0, frameHeaderLen+len(payload)), payload)
	if _, err := w.f.Write(frame); err != nil {
		err = w.breakLocked("write", err)
		w.mu.Unlock()
		return 0, err
	}
	w.next++
	w.fEmpty = false
	w.written += int64(len(frame))
	mine := w.written
	w.mu.Unlock()

	return h.Seq, w.syncTo(mine)
}

// syncTo returns once the log is fsynced at least up to byte pos (counted over all segments).
func (w *wal) syncTo(pos int64) error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.synced >= pos {
		return nil // another append's fsync covered ours
	}
	w.mu.Lock()
	f, upTo, broken := w.f, w.written, w.broken
	w.mu.Unlock()
	if broken != nil {
		return broken
	}
	if f == nil {
		return ErrClosed
	}
	if err := f.Sync(); err != nil {
		w.mu.Lock()
		err = w.breakLocked("fsync", err)
		w.mu.Unlock()
		return err
	}
	w.synced = upTo
	return nil
}

// rotate closes the current segment if it holds entries and returns every closed segment
// not yet removed, oldest first.
func (w *wal) rotate() ([]segment, error) {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil && !w.fEmpty && w.broken == nil {
		if err := w.f.Sync(); err != nil {
			// The open segment's entries are not known to be on disk: it stays open (not
			// committed now), and the broken log refuses every push until a restart replays it.
			_ = w.breakLocked("fsync", err)
			return append([]segment(nil), w.closed...), nil
		}
		w.synced = w.written
		if err := w.f.Close(); err != nil {
			return nil, err
		}
		w.closed = append(w.closed, w.fSeg)
		w.f = nil
		if err := w.openSegment(); err != nil {
			return nil, err
		}
	}
	return append([]segment(nil), w.closed...), nil
}

// remove deletes committed segments, except those in quarantine, which it moves into the
// log's quarantine folder.
func (w *wal) remove(segs []segment, quarantine map[string]bool) error {
	gone := map[string]bool{}
	for _, s := range segs {
		if quarantine[s.path] {
			if err := w.quarantine(s); err != nil {
				return err
			}
		} else if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove push log segment: %w", err)
		}
		gone[s.path] = true
	}
	w.mu.Lock()
	kept := w.closed[:0]
	legacyLeft := false
	for _, s := range w.closed {
		if !gone[s.path] {
			kept = append(kept, s)
			legacyLeft = legacyLeft || s.legacy
		}
	}
	w.closed = kept
	w.mu.Unlock()
	if !legacyLeft {
		if err := os.Remove(filepath.Join(w.dir, legacyIDFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove push log id of the first format: %w", err)
		}
	}
	return fsutil.SyncDir(w.dir)
}

// quarantine moves a damaged segment into the quarantine folder.
func (w *wal) quarantine(s segment) error {
	to := w.quarantinePath(s)
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return fmt.Errorf("quarantine push log segment: %w", err)
	}
	if err := os.Rename(s.path, to); err != nil {
		return fmt.Errorf("quarantine push log segment: %w", err)
	}
	return fsutil.SyncDir(filepath.Dir(to))
}

// quarantinePath is where quarantine moves s. A segment of the first format takes its log id
// into its name.
func (w *wal) quarantinePath(s segment) string {
	name := filepath.Base(s.path)
	if s.legacy {
		name = strings.TrimSuffix(name, segmentExt) + "-" + s.logID + segmentExt
	}
	return filepath.Join(w.dir, quarantineDir, name)
}

// pending is the number of closed segments and whether the open one holds entries.
func (w *wal) pending() (closed int, open bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.closed), !w.fEmpty
}

func (w *wal) close() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	if w.f != nil {
		err = errors.Join(w.f.Sync(), w.f.Close())
		if w.fEmpty {
			os.Remove(w.fSeg.path)
		}
		w.f = nil
	}
	if w.lock != nil {
		err = errors.Join(err, w.lock.Close())
		w.lock = nil
	}
	return err
}

// damage is a stretch of a segment that holds no valid frame.
type damage struct {
	Offset int64  // where it starts
	Length int64  // bytes skipped
	Reason string // what was wrong at Offset
}

// segmentReport says what reading a segment found besides its valid frames.
type segmentReport struct {
	Frames int      // valid frames
	Damage []damage // damaged stretches, in file order
	// TornTail is the offset of a frame cut short by the end of the segment (a crash
	// mid-write: never acknowledged), or -1.
	TornTail int64
}

func (r segmentReport) damaged() bool { return len(r.Damage) > 0 }

// offsets lists the damaged stretches for a log line: "OFFSET+LENGTH (REASON)".
func (r segmentReport) offsets() string {
	parts := make([]string, len(r.Damage))
	for i, d := range r.Damage {
		parts[i] = fmt.Sprintf("%d+%d (%s)", d.Offset, d.Length, d.Reason)
	}
	return strings.Join(parts, ", ")
}

// readSegment reads a segment's valid entries in order, skipping damaged frames (see
// scanSegment) and frames whose checksums hold but whose contents cannot be decoded (both
// are reported). The callback owns e.rec. An error is returned for a segment that cannot be
// read at all, or when each fails.
func readSegment(s segment, each func(entry) error) (segmentReport, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return segmentReport{TornTail: -1}, fmt.Errorf("read push log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return segmentReport{TornTail: -1}, fmt.Errorf("read push log: %w", err)
	}
	var undecodable []damage
	rep, err := scanSegment(f, st.Size(), s.legacy, func(off int64, payload []byte) error {
		e, err := decodeEntry(payload)
		if err != nil {
			undecodable = append(undecodable, damage{Offset: off, Length: int64(len(payload)), Reason: err.Error()})
			return nil //nolint:nilerr // an undecodable frame is reported as damage; reading goes on
		}
		e.log = s.logID
		if each == nil {
			e.rec.Release()
			return nil
		}
		return each(e)
	})
	if len(undecodable) > 0 {
		rep.Frames -= len(undecodable)
		rep.Damage = append(rep.Damage, undecodable...)
		sort.Slice(rep.Damage, func(i, j int) bool { return rep.Damage[i].Offset < rep.Damage[j].Offset })
	}
	if err != nil {
		return rep, fmt.Errorf("read push log segment %s: %w", s.path, err)
	}
	return rep, nil
}

// decodeEntry decodes a frame's payload. Arrow's IPC reader may panic on input it does not
// expect; a payload that passed its checksum but makes it panic is reported as undecodable.
func decodeEntry(payload []byte) (e entry, err error) {
	defer func() {
		if r := recover(); r != nil {
			if e.rec != nil {
				e.rec.Release()
			}
			e, err = entry{}, fmt.Errorf("undecodable batch: %v", r)
		}
	}()
	if len(payload) < 4 {
		return e, errors.New("payload shorter than its header length")
	}
	hl := binary.BigEndian.Uint32(payload[:4])
	if int64(hl) > int64(len(payload)-4) {
		return e, errors.New("header length past the payload")
	}
	if err := json.Unmarshal(payload[4:4+hl], &e.entryHeader); err != nil {
		return e, fmt.Errorf("entry header: %w", err)
	}
	ir, err := ipc.NewReader(bytes.NewReader(payload[4+hl:]))
	if err != nil {
		return e, fmt.Errorf("entry %d: %w", e.Seq, err)
	}
	defer ir.Release()
	if !ir.Next() {
		if err := ir.Err(); err != nil {
			return e, fmt.Errorf("entry %d: %w", e.Seq, err)
		}
		return e, fmt.Errorf("entry %d holds no batch", e.Seq)
	}
	e.rec = ir.RecordBatch()
	e.rec.Retain()
	return e, nil
}

// scanSegment calls each, in order, with the offset and payload of every frame of a segment
// whose checksums hold. It never returns a payload whose checksum fails. Damage is reported,
// and reading goes on at the next frame marker found after it (resynchronisation) in the
// current format; in the first format (legacy), which has no marker, at the first damaged
// frame the rest of the segment is reported damaged. A frame cut short by the end of the
// segment is reported as a torn tail, not damage. The only errors are read errors and those
// of each.
func scanSegment(r io.ReaderAt, size int64, legacy bool, each func(off int64, payload []byte) error) (segmentReport, error) {
	if legacy {
		return scanLegacy(r, size, each)
	}
	rep := segmentReport{TornTail: -1}
	off := int64(0)
	head := make([]byte, len(segMagic)+1)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return rep, err
	}
	switch {
	case n == len(head) && bytes.Equal(head[:len(segMagic)], segMagic) && head[len(segMagic)] == segmentVersion:
		off = int64(n)
	case n < len(head) && bytes.HasPrefix(append(append([]byte{}, segMagic...), segmentVersion), head[:n]):
		return rep, nil // created, header not (all) written: no frame was ever in it
	default:
		reason := "no segment header"
		if n == len(head) && bytes.Equal(head[:len(segMagic)], segMagic) {
			reason = fmt.Sprintf("unknown segment format version %d", head[len(segMagic)])
		}
		// Look for frames all the same: the header may be all that is damaged.
		next, err := findFrame(r, 0, size)
		if err != nil {
			return rep, err
		}
		rep.Damage = append(rep.Damage, damage{Offset: 0, Length: next, Reason: reason})
		off = next
	}
	var hdr [frameHeaderLen]byte
	for off < size {
		reason := ""
		n, err := r.ReadAt(hdr[:], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return rep, err
		}
		switch {
		case n < frameHeaderLen:
			if bytes.HasPrefix(frameMagic, hdr[:min(n, len(frameMagic))]) {
				rep.TornTail = off
				return rep, nil
			}
			reason = "bytes too short for a frame"
		case !bytes.Equal(hdr[:4], frameMagic):
			reason = "no frame marker"
		case crc32.Checksum(hdr[:12], crcTable) != binary.BigEndian.Uint32(hdr[12:]):
			reason = "frame header checksum mismatch"
		default:
			length := int64(binary.BigEndian.Uint32(hdr[4:8]))
			switch {
			case length > maxFrame:
				reason = fmt.Sprintf("frame length %d over the limit", length)
			case off+frameHeaderLen+length > size:
				rep.TornTail = off
				return rep, nil
			default:
				payload := make([]byte, length)
				if _, err := r.ReadAt(payload, off+frameHeaderLen); err != nil && !errors.Is(err, io.EOF) {
					return rep, err
				}
				if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(hdr[8:12]) {
					reason = "payload checksum mismatch"
					break
				}
				rep.Frames++
				if err := each(off, payload); err != nil {
					return rep, err
				}
				off += frameHeaderLen + length
				continue
			}
		}
		next, err := findFrame(r, off+1, size)
		if err != nil {
			return rep, err
		}
		rep.Damage = append(rep.Damage, damage{Offset: off, Length: next - off, Reason: reason})
		off = next
	}
	return rep, nil
}

// findFrame returns the offset of the first frame marker at or after from whose header
// checksum holds, or size when there is none.
func findFrame(r io.ReaderAt, from, size int64) (int64, error) {
	const chunk = 64 << 10
	buf := make([]byte, chunk+frameHeaderLen)
	for pos := from; pos < size; pos += chunk {
		n, err := r.ReadAt(buf, pos)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		b := buf[:n]
		for i := 0; i < len(b) && i < chunk; {
			j := bytes.Index(b[i:], frameMagic)
			if j < 0 || i+j >= chunk {
				break
			}
			at := i + j
			h := b[at:]
			if len(h) < frameHeaderLen {
				// A marker too close to the end of the segment to hold a header: a torn tail
				// starts there (scanSegment decides).
				return pos + int64(at), nil
			}
			if crc32.Checksum(h[:12], crcTable) == binary.BigEndian.Uint32(h[12:16]) {
				return pos + int64(at), nil
			}
			i = at + 1
		}
	}
	return size, nil
}

// scanLegacy reads a segment of the first format: frames of payload length, CRC-32C,
// payload, with no marker to resynchronise on.
func scanLegacy(r io.ReaderAt, size int64, each func(off int64, payload []byte) error) (segmentReport, error) {
	rep := segmentReport{TornTail: -1}
	var hdr [legacyHeadLen]byte
	for off := int64(0); off < size; {
		n, err := r.ReadAt(hdr[:], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return rep, err
		}
		if n < legacyHeadLen {
			rep.TornTail = off
			return rep, nil
		}
		length := int64(binary.BigEndian.Uint32(hdr[:4]))
		reason := ""
		switch {
		case length > maxFrame || length < 4:
			reason = fmt.Sprintf("frame length %d out of range", length)
		case off+legacyHeadLen+length > size:
			if legacyPayloadStart(r, off+legacyHeadLen, size) {
				rep.TornTail = off
				return rep, nil
			}
			reason = fmt.Sprintf("frame length %d past the end of the segment", length)
		default:
			payload := make([]byte, length)
			if _, err := r.ReadAt(payload, off+legacyHeadLen); err != nil && !errors.Is(err, io.EOF) {
				return rep, err
			}
			if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(hdr[4:]) {
				reason = "payload checksum mismatch"
				break
			}
			rep.Frames++
			if err := each(off, payload); err != nil {
				return rep, err
			}
			off += legacyHeadLen + length
			continue
		}
		rep.Damage = append(rep.Damage, damage{Offset: off, Length: size - off, Reason: reason + "; the first segment format cannot be resynchronised"})
		return rep, nil
	}
	return rep, nil
}

// legacyPayloadStart reports whether the bytes from off to size can be the start of a payload
// (a JSON header's length, then '{'): a first-format frame cut short by a crash has such a
// start, random bytes almost never.
func legacyPayloadStart(r io.ReaderAt, off, size int64) bool {
	var b [5]byte
	n, _ := r.ReadAt(b[:min(int64(len(b)), size-off)], off)
	if n >= 4 && binary.BigEndian.Uint32(b[:4]) > 1<<16 {
		return false
	}
	return n < 5 || b[4] == '{'
}
