package ingest

import (
	"bufio"
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
//	log-id           a random id naming this log in the offline commits it makes
//	lock             flock(2)ed by the one process that owns the log
//	NNNNNNNNNNNNNNNNNNNN.wal   segments, named by the sequence number of their first entry
//
// Each entry is a frame: payload length (uint32, big endian), CRC-32C of the payload
// (uint32), payload. The payload is a JSON header's length (uint32), the header, and the
// batch as an Arrow IPC stream. An entry is acknowledged only once its frame is fsynced; a
// frame torn by a crash (short, or failing its CRC) ends its segment and was never
// acknowledged.

const (
	logIDFile  = "log-id"
	lockFile   = "lock"
	segmentExt = ".wal"
	// maxFrame bounds one entry, so a corrupt length cannot make recovery allocate wildly.
	maxFrame = 1 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

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
	rec arrow.RecordBatch
}

// segment is one closed log file.
type segment struct {
	path  string
	first uint64
}

// wal is the log. It is safe for concurrent use.
type wal struct {
	dir  string
	id   string
	lock *os.File

	mu      sync.Mutex // guards f, next, written, closed
	f       *os.File
	fPath   string
	fFirst  uint64
	fEmpty  bool
	next    uint64
	written int64 // bytes written in all segments since open
	closed  []segment

	syncMu sync.Mutex // serialises fsyncs; synced is read and written under it
	synced int64

	// broken is the first write or fsync error (guarded by mu). After it the log refuses every
	// append, and appends waiting for an fsync fail: a frame written after a torn one would be
	// unreadable, and after a failed fsync nothing written since the last good one is known
	// to be on disk. A restart recovers every acknowledged entry.
	broken error
}

// openWAL opens (creating) the log in dir, taking its lock. It does not read old segments;
// they are listed in closed for the committer to replay.
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
	w := &wal{dir: dir, lock: lf}
	if w.id, err = logID(dir); err != nil {
		lf.Close()
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		lf.Close()
		return nil, err
	}
	sort.Strings(names)
	w.next = 1
	for _, p := range names {
		first, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(p), segmentExt), 10, 64)
		if err != nil {
			continue
		}
		w.closed = append(w.closed, segment{path: p, first: first})
		// The next sequence number continues past every old entry.
		last, err := lastSeq(p)
		if err != nil {
			lf.Close()
			return nil, err
		}
		w.next = max(w.next, first, last+1)
	}
	if err := w.openSegment(); err != nil {
		lf.Close()
		return nil, err
	}
	return w, nil
}

func logID(dir string) (string, error) {
	p := filepath.Join(dir, logIDFile)
	b, err := os.ReadFile(p)
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("push log id: %w", err)
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(raw[:])
	if err := fsutil.WriteFileSync(p, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("push log id: %w", err)
	}
	return id, fsutil.SyncDir(dir)
}

// openSegment starts a new segment whose first entry will be w.next. Callers hold mu.
func (w *wal) openSegment() error {
	p := filepath.Join(w.dir, fmt.Sprintf("%020d%s", w.next, segmentExt))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("push log segment: %w", err)
	}
	if err := fsutil.SyncDir(w.dir); err != nil {
		f.Close()
		return fmt.Errorf("push log segment: %w", err)
	}
	w.f, w.fPath, w.fFirst, w.fEmpty = f, p, w.next, true
	return nil
}

// append logs a batch and returns once it is fsynced, with its sequence number. Concurrent
// appends share fsyncs.
func (w *wal) append(h entryHeader, rec arrow.RecordBatch) (uint64, error) {
	var body bytes.Buffer
	iw := ipc.NewWriter(&body, ipc.WithSchema(rec.Schema()), ipc.WithAllocator(memory.DefaultAllocator))
	if err := iw.Write(rec); err != nil {
		return 0, fmt.Errorf("encode batch: %w", err)
	}
	if err := iw.Close(); err != nil {
		return 0, fmt.Errorf("encode batch: %w", err)
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
	hdr, err := json.Marshal(h)
	if err != nil {
		w.mu.Unlock()
		return 0, err
	}
	payload := make([]byte, 0, 4+len(hdr)+body.Len())
	payload = binary.BigEndian.AppendUint32(payload, uint32(len(hdr)))
	payload = append(payload, hdr...)
	payload = append(payload, body.Bytes()...)
	frame := make([]byte, 0, 8+len(payload))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(payload)))
	frame = binary.BigEndian.AppendUint32(frame, crc32.Checksum(payload, crcTable))
	frame = append(frame, payload...)
	if _, err := w.f.Write(frame); err != nil {
		w.broken = fmt.Errorf("write push log (refusing pushes until restart): %w", err)
		w.mu.Unlock()
		return 0, w.broken
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
		if w.broken == nil {
			w.broken = fmt.Errorf("fsync push log (refusing pushes until restart): %w", err)
		}
		err = w.broken
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
			w.broken = fmt.Errorf("fsync push log (refusing pushes until restart): %w", err)
			return append([]segment(nil), w.closed...), nil
		}
		w.synced = w.written
		if err := w.f.Close(); err != nil {
			return nil, err
		}
		w.closed = append(w.closed, segment{path: w.fPath, first: w.fFirst})
		w.f = nil
		if err := w.openSegment(); err != nil {
			return nil, err
		}
	}
	return append([]segment(nil), w.closed...), nil
}

// remove deletes committed segments.
func (w *wal) remove(segs []segment) error {
	gone := map[string]bool{}
	for _, s := range segs {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove push log segment: %w", err)
		}
		gone[s.path] = true
	}
	w.mu.Lock()
	kept := w.closed[:0]
	for _, s := range w.closed {
		if !gone[s.path] {
			kept = append(kept, s)
		}
	}
	w.closed = kept
	w.mu.Unlock()
	return fsutil.SyncDir(w.dir)
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
			os.Remove(w.fPath)
		}
		w.f = nil
	}
	if w.lock != nil {
		err = errors.Join(err, w.lock.Close())
		w.lock = nil
	}
	return err
}

// readSegment reads a segment's entries, stopping at the first torn or corrupt frame (which
// was never acknowledged). The caller releases the records.
func readSegment(path string, each func(entry) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read push log: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var head [8]byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return nil // end, or a torn frame header
		}
		n := binary.BigEndian.Uint32(head[:4])
		if n > maxFrame || n < 4 {
			return nil
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return nil
		}
		if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(head[4:]) {
			return nil
		}
		hl := binary.BigEndian.Uint32(payload[:4])
		if int(hl) > len(payload)-4 {
			return nil
		}
		var e entry
		if err := json.Unmarshal(payload[4:4+hl], &e.entryHeader); err != nil {
			return fmt.Errorf("push log %s: entry header: %w", path, err)
		}
		if each == nil {
			continue
		}
		ir, err := ipc.NewReader(bytes.NewReader(payload[4+hl:]))
		if err != nil {
			return fmt.Errorf("push log %s: entry %d: %w", path, e.Seq, err)
		}
		if !ir.Next() {
			ir.Release()
			return fmt.Errorf("push log %s: entry %d holds no batch", path, e.Seq)
		}
		e.rec = ir.RecordBatch()
		e.rec.Retain()
		ir.Release()
		if err := each(e); err != nil {
			e.rec.Release()
			return err
		}
	}
}

// lastSeq is the sequence number of a segment's last whole entry (0 if none).
func lastSeq(path string) (uint64, error) {
	var last uint64
	err := readSegment(path, func(e entry) error {
		last = e.Seq
		e.rec.Release()
		return nil
	})
	return last, err
}
