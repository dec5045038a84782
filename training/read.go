package training

import (
	"os"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

func pqarrowOpen(f *os.File) (*pqarrow.FileReader, error) {
	pf, err := file.NewParquetReader(f)
	if err != nil {
		return nil, err
	}
	return pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10, Parallel: false}, memory.DefaultAllocator)
}

// concatReader reads several record readers one after the other.
type concatReader struct {
	refs    atomic.Int64
	schema  *arrow.Schema
	readers []array.RecordReader
	files   []*os.File
	cur     arrow.RecordBatch
	err     error
}

func newConcatReader(readers []array.RecordReader, files []*os.File) *concatReader {
	r := &concatReader{schema: readers[0].Schema(), readers: readers, files: files}
	r.refs.Store(1)
	return r
}

func (r *concatReader) Retain() { r.refs.Add(1) }

func (r *concatReader) Release() {
	if r.refs.Add(-1) != 0 {
		return
	}
	for _, rr := range r.readers {
		rr.Release()
	}
	for _, f := range r.files {
		f.Close()
	}
	r.readers, r.files = nil, nil
}

func (r *concatReader) Schema() *arrow.Schema { return r.schema }

func (r *concatReader) Next() bool {
	for len(r.readers) > 0 {
		if r.readers[0].Next() {
			r.cur = r.readers[0].RecordBatch()
			return true
		}
		if err := r.readers[0].Err(); err != nil {
			r.err = err
			return false
		}
		r.readers[0].Release()
		r.readers = r.readers[1:]
	}
	r.cur = nil
	return false
}

func (r *concatReader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is the deprecated name of RecordBatch.
func (r *concatReader) Record() arrow.RecordBatch { return r.cur }

func (r *concatReader) Err() error { return r.err }
