package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/tabular"
	"github.com/quiverfs/quiver/offline"
)

// ReadFile reads a Parquet (.parquet) or CSV (.csv) file of rows for view v and returns them
// as canonical batches, checked whole (View.FromArrow: the first bad row refuses the file,
// named by its 0-based row number), and an id of the batch: the SHA-256 of the view's name
// and the file's bytes. The caller releases the batches.
func ReadFile(ctx context.Context, v *View, path string, mem memory.Allocator) (recs []arrow.RecordBatch, batchID string, err error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	format, err := tabular.FormatOf(path)
	if err != nil {
		return nil, "", invalidBatchf("push file %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		return nil, "", invalidBatchf("push file %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	h.Write([]byte(v.Name + "\x00"))
	if _, err := io.Copy(h, f); err != nil {
		return nil, "", fmt.Errorf("push file %s: %w", path, err)
	}
	batchID = hex.EncodeToString(h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, "", err
	}
	opts := tabular.Options{Allocator: mem}
	if format == tabular.CSV {
		if opts.CSVTypes, err = v.csvTypes(); err != nil {
			return nil, "", err
		}
	}
	rr, err := tabular.NewReader(ctx, f, format, opts)
	if errors.Is(err, tabular.ErrNoRows) {
		return nil, "", invalidBatchf("push file %s has no rows", path)
	}
	if err != nil {
		return nil, "", invalidBatchf("push file %s: %w", path, err)
	}
	defer rr.Release()
	var row int64
	release := func() {
		for _, r := range recs {
			r.Release()
		}
	}
	for rr.Next() {
		in := rr.RecordBatch()
		out, err := v.FromArrow(ctx, in, row, mem)
		if err != nil {
			release()
			return nil, "", fmt.Errorf("push file %s: %w", path, err)
		}
		row += in.NumRows()
		recs = append(recs, out)
	}
	if err := rr.Err(); err != nil {
		release()
		return nil, "", invalidBatchf("push file %s: %w", path, err)
	}
	if row == 0 {
		return nil, "", invalidBatchf("push file %s has no rows", path)
	}
	return recs, batchID, nil
}

// csvTypes are the Arrow types CSV columns are read as: the view's types, and timestamps for
// the time columns. Arrays cannot be written in CSV.
func (v *View) csvTypes() (map[string]arrow.DataType, error) {
	ts := v.Fields.Timestamp
	if ts == "" {
		ts = offline.EventTS
	}
	types := map[string]arrow.DataType{ts: offline.TimestampType}
	if v.Fields.Created != "" {
		types[v.Fields.Created] = offline.TimestampType
	}
	for _, c := range append(append([]offline.Column{}, v.Schema.JoinKeys...), v.Schema.Features...) {
		if c.Type.Array {
			return nil, invalidBatchf("view %q: column %q is %s, which CSV cannot hold; push a Parquet file", v.Name, c.Name, c.Type)
		}
		t, err := offline.ArrowType(c.Type)
		if err != nil {
			return nil, err
		}
		if c.Type == (definitions.Type{Elem: definitions.Int32}) {
			t = arrow.PrimitiveTypes.Int64 // narrowed by the mapper
		}
		types[c.Name] = t
	}
	return types, nil
}
