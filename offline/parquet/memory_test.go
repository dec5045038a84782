package parquet

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

// peakAllocator tracks the most Arrow memory held at once.
type peakAllocator struct {
	memory.Allocator
	mu        sync.Mutex
	cur, peak int
}

func (p *peakAllocator) track(d int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur += d
	p.peak = max(p.peak, p.cur)
}

func (p *peakAllocator) Allocate(n int) []byte { p.track(n); return p.Allocator.Allocate(n) }
func (p *peakAllocator) Free(b []byte)         { p.track(-len(b)); p.Allocator.Free(b) }
func (p *peakAllocator) Reallocate(n int, b []byte) []byte {
	p.track(n - len(b))
	return p.Allocator.Reallocate(n, b)
}

// TestMemoryIsBounded reads a file far larger than a batch and checks the Arrow memory held
// at once stays near a few batches, not the file.
func TestMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a large file")
	}
	const n = 100_000
	rows := make([]sourcetest.Row, n)
	name := "a fairly long user name to make rows wider"
	for i := range rows {
		ts := sourcetest.Base.Add(time.Duration(i) * time.Second)
		rows[i] = sourcetest.Row{UserID: int64(i), TS: ts, Created: ts, Spend: float64(i), Name: &name, Tags: []string{"x", "y"}, Payload: make([]byte, 32)}
	}
	rec := sourcetest.SourceBatch(memory.DefaultAllocator, rows)
	fileBytes := recordBytes(rec)
	path := filepath.Join(t.TempDir(), "big.parquet")
	writeParquet(t, path, rec, 10_000)
	rec.Release()

	mem := &peakAllocator{Allocator: memory.NewGoAllocator()}
	s := newSource(t, path, sourcetest.Fields(), Options{BatchSize: 2_000, Allocator: mem})
	st, err := s.Read(context.Background(), sourcetest.View(), offline.Range{Start: sourcetest.Base, End: sourcetest.Base.Add(100 * 24 * time.Hour)})
	require.NoError(t, err)
	defer st.Close()
	var got int64
	for {
		b, err := st.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got += b.NumRows()
		b.Release()
	}
	require.Equal(t, int64(n), got)
	t.Logf("data %d bytes in memory as one batch; peak while streaming %d bytes", fileBytes, mem.peak)
	require.Less(t, mem.peak, fileBytes/5, "streaming held too much of the file at once")
}

func recordBytes(rec arrow.RecordBatch) int {
	n := 0
	for _, c := range rec.Columns() {
		n += dataBytes(c.Data())
	}
	return n
}

func dataBytes(d arrow.ArrayData) int {
	n := 0
	for _, b := range d.Buffers() {
		if b != nil {
			n += b.Len()
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	return n
}
