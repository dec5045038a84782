package training

import (
	"context"
	"errors"
	"io"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
)

// streamReader adapts an offline.Stream to an array.RecordReader for the join engine.
type streamReader struct {
	refs atomic.Int64
	ctx  context.Context
	s    offline.Stream
	cur  arrow.RecordBatch
	err  error
}

func newStreamReader(ctx context.Context, s offline.Stream) *streamReader {
	r := &streamReader{ctx: ctx, s: s}
	r.refs.Store(1)
	return r
}

func (r *streamReader) Retain()               { r.refs.Add(1) }
func (r *streamReader) Schema() *arrow.Schema { return r.s.Schema() }
func (r *streamReader) Err() error            { return r.err }

func (r *streamReader) Release() {
	if r.refs.Add(-1) != 0 {
		return
	}
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	_ = r.s.Close()
}

func (r *streamReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.err != nil {
		return false
	}
	rec, err := r.s.Next(r.ctx)
	if errors.Is(err, io.EOF) {
		return false
	}
	if err != nil {
		r.err = err
		return false
	}
	r.cur = rec
	return true
}

func (r *streamReader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is RecordBatch.
//
// Deprecated: use RecordBatch.
func (r *streamReader) Record() arrow.RecordBatch { return r.cur }

// emptyViewReader is the feature rows of a view that was never materialized: none, with the
// canonical columns, so every entity row gets nulls.
func emptyViewReader(v *definitions.FeatureView, keys []definitions.Field, features []string) (array.RecordReader, error) {
	var fields []arrow.Field
	for _, k := range keys {
		t, err := offline.ArrowType(k.Type)
		if err != nil {
			return nil, err
		}
		fields = append(fields, arrow.Field{Name: k.Name, Type: t})
	}
	fields = append(fields, arrow.Field{Name: "event_ts", Type: offline.TimestampType}, arrow.Field{Name: "created_ts", Type: offline.TimestampType, Nullable: true})
	for _, name := range features {
		f, ok := v.Feature(name)
		if !ok { // an aggregation view's event column
			f, _ = v.Column(name)
		}
		t, err := offline.ArrowType(f.Type)
		if err != nil {
			return nil, err
		}
		fields = append(fields, arrow.Field{Name: name, Type: t, Nullable: true})
	}
	return array.NewRecordReader(arrow.NewSchema(fields, nil), nil)
}
