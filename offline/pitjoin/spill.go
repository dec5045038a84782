package pitjoin

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// batchFile is a spill file: record batches written once to an Arrow IPC file, then read back
// batch by batch.
type batchFile struct {
	path   string
	f      *os.File
	bw     *bufio.Writer
	w      *ipc.FileWriter
	r      *ipc.FileReader
	mem    memory.Allocator
	bytes  int64
	rows   int64
	closed bool
}

func newBatchFile(dir, prefix string, schema *arrow.Schema, mem memory.Allocator) (*batchFile, error) {
	f, err := os.CreateTemp(dir, prefix+"-*.arrow")
	if err != nil {
		return nil, fmt.Errorf("create spill file: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := ipc.NewFileWriter(bw, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("create spill file: %w", err)
	}
	return &batchFile{path: f.Name(), f: f, bw: bw, w: w, mem: mem}, nil
}

func (b *batchFile) write(rec arrow.RecordBatch) error {
	if err := b.w.Write(rec); err != nil {
		return fmt.Errorf("write spill file %s: %w", b.path, err)
	}
	b.bytes += recordBytes(rec)
	b.rows += rec.NumRows()
	return nil
}

// finish closes the writer and opens the file for reading.
func (b *batchFile) finish() error {
	err := b.w.Close()
	b.w = nil
	if err == nil {
		err = b.bw.Flush()
	}
	if err == nil {
		b.r, err = ipc.NewFileReader(b.f, ipc.WithAllocator(b.mem))
	}
	if err != nil {
		return fmt.Errorf("finish spill file %s: %w", b.path, err)
	}
	return nil
}

func (b *batchFile) numBatches() int { return b.r.NumRecords() }

// batch returns the i-th batch; the caller owns it.
func (b *batchFile) batch(i int) (arrow.RecordBatch, error) {
	rec, err := b.r.RecordBatchAt(i)
	if err != nil {
		return nil, fmt.Errorf("read spill file %s: %w", b.path, err)
	}
	return rec, nil
}

// close removes the file. It is safe to call more than once.
func (b *batchFile) close() {
	if b.closed {
		return
	}
	b.closed = true
	if b.w != nil {
		b.w.Close()
	}
	if b.r != nil {
		b.r.Close()
	}
	b.f.Close()
	os.Remove(b.path)
}

// partFile is one key-range partition of a view's spilled candidates: groups [g0, g1).
type partFile struct {
	g0, g1 int32
	file   *batchFile // nil while empty
}

// partitioner range-partitions candidate rows by group id into spill files. Group ids are dense
// and assigned in entity-row order, so ranges split the keys evenly without hashing again, and
// every entity row's candidates land in exactly one partition.
type partitioner struct {
	vj     *viewJoin
	g0, g1 int32
	parts  []*partFile
	mem    memory.Allocator
}

func newPartitioner(vj *viewJoin, g0, g1 int32, fanout int, mem memory.Allocator) (*partitioner, error) {
	r := int64(g1 - g0)
	n := min(int64(max(fanout, 1)), max(r, 1))
	p := &partitioner{vj: vj, g0: g0, g1: g1, mem: mem}
	for i := range n {
		lo := g0 + int32((i*r+n-1)/n)
		hi := g0 + int32(((i+1)*r+n-1)/n)
		p.parts = append(p.parts, &partFile{g0: lo, g1: hi})
	}
	return p, nil
}

func (p *partitioner) partOf(g int32) int {
	return int(int64(g-p.g0) * int64(len(p.parts)) / int64(p.g1-p.g0))
}

func (p *partitioner) write(ctx context.Context, c *chunk) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(p.parts) == 1 && c.rows == nil {
		return p.put(p.parts[0], c)
	}
	idx := make([][]int32, len(p.parts))
	for l, g := range c.group {
		k := p.partOf(g)
		idx[k] = append(idx[k], int32(l))
	}
	for k, ix := range idx {
		if len(ix) == 0 {
			continue
		}
		if len(ix) == c.len() && c.rows == nil {
			return p.put(p.parts[k], c)
		}
		sub := &chunk{
			group: make([]int32, len(ix)),
			ev:    make([]int64, len(ix)),
			cr:    make([]int64, len(ix)),
			seq:   make([]int64, len(ix)),
		}
		for j, l := range ix {
			sub.group[j], sub.ev[j], sub.cr[j], sub.seq[j] = c.group[l], c.ev[l], c.cr[l], c.seq[l]
		}
		if c.rows != nil {
			for j, l := range ix {
				ix[j] = c.rows[l]
			}
		}
		for f, a := range c.feats {
			t, err := take(ctx, p.mem, a, ix)
			if err != nil {
				sub.release()
				return p.vj.errorf("partition feature %q: %w", p.vj.v.Features[f], err)
			}
			sub.feats = append(sub.feats, t)
		}
		err := p.put(p.parts[k], sub)
		sub.release()
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *partitioner) put(part *partFile, c *chunk) error {
	if part.file == nil {
		f, err := newBatchFile(p.vj.dir, "view", p.vj.spillSch, p.mem)
		if err != nil {
			return p.vj.errorf("%w", err)
		}
		part.file = f
		p.vj.stats.SpillFiles++
	}
	rec := c.record(p.vj.spillSch)
	defer rec.Release()
	if err := part.file.write(rec); err != nil {
		return p.vj.errorf("%w", err)
	}
	p.vj.stats.SpilledBytes += recordBytes(rec)
	return nil
}

// finish makes every partition readable.
func (p *partitioner) finish() error {
	for _, part := range p.parts {
		if part.file != nil {
			if err := part.file.finish(); err != nil {
				return p.vj.errorf("%w", err)
			}
		}
	}
	return nil
}

// close removes every partition's file.
func (p *partitioner) close() {
	for _, part := range p.parts {
		if part.file != nil {
			part.file.close()
		}
	}
}
