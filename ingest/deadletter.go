package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/fsutil"
	"github.com/quiverfs/quiver/offline"
)

// conform returns rec in the canonical layout of vs: a feature vs has and rec lacks (added
// by a compatible change after rec was logged) is null, a column of a narrower type rec was
// logged with is widened (int32 → int64, float32 → float64). A join key or feature rec has in
// a type vs cannot read, or a column vs no longer has, is an error. The caller releases the
// result.
func conform(ctx context.Context, rec arrow.RecordBatch, vs offline.ViewSchema, mem memory.Allocator) (arrow.RecordBatch, error) {
	target := vs.Arrow()
	in := rec.Schema()
	cols := make([]arrow.Array, 0, target.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	known := map[string]bool{}
	nk := len(vs.JoinKeys)
	for i, c := range vs.Columns() {
		f := target.Field(i)
		known[f.Name] = true
		idx := in.FieldIndices(f.Name)
		if len(idx) == 0 {
			if i < nk+2 {
				return nil, fmt.Errorf("column %q missing", f.Name)
			}
			cols = append(cols, array.MakeArrayOfNull(mem, f.Type, int(rec.NumRows())))
			continue
		}
		col := rec.Column(idx[0])
		if arrow.TypeEqual(col.DataType(), f.Type) {
			col.Retain()
			cols = append(cols, col)
			continue
		}
		if _, ok := offline.Readable(col.DataType(), c.Type); !ok {
			return nil, fmt.Errorf("column %q was logged as %s, which the table's %s cannot hold", f.Name, col.DataType(), c.Type)
		}
		conv, err := offline.Convert(ctx, col, f.Type, mem)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", f.Name, err)
		}
		cols = append(cols, conv)
	}
	for _, f := range in.Fields() {
		if !known[f.Name] {
			return nil, fmt.Errorf("column %q is no longer in the view", f.Name)
		}
	}
	return array.NewRecordBatch(target, cols, rec.NumRows()), nil
}

// schemaOf is the view schema a batch was logged with: its columns before event_ts are the
// join keys, those after created_ts the features.
func schemaOf(view string, generation int, s *arrow.Schema) (offline.ViewSchema, error) {
	vs := offline.ViewSchema{View: view, Generation: generation}
	ts, cr := s.FieldIndices(offline.EventTS), s.FieldIndices(offline.CreatedTS)
	if len(ts) != 1 || len(cr) != 1 || cr[0] != ts[0]+1 {
		return vs, fmt.Errorf("logged batch has no %s, %s columns in place", offline.EventTS, offline.CreatedTS)
	}
	for i, f := range s.Fields() {
		if i == ts[0] || i == cr[0] {
			continue
		}
		t, ok := offline.TypeFromArrow(f.Type)
		if !ok {
			return vs, fmt.Errorf("logged column %q has type %s, which no view declares", f.Name, f.Type)
		}
		c := offline.Column{Name: f.Name, Type: t}
		if i < ts[0] {
			vs.JoinKeys = append(vs.JoinKeys, c)
		} else {
			vs.Features = append(vs.Features, c)
		}
	}
	return vs, vs.Validate()
}

// misfit reports whether an offline append failed because the rows do not fit the table
// (which no retry changes), rather than because the store could not be reached.
func misfit(err error) bool {
	return errors.Is(err, offline.ErrSchemaConflict) || errors.Is(err, offline.ErrColumnNotFound) ||
		errors.Is(err, offline.ErrTypeMismatch) || errors.Is(err, definitions.ErrInvalid)
}

// setAside writes logged batches that fit no offline table to the log's dead-letter folder:
// one Arrow IPC stream file per run of batches with the same schema, named
// VIEW.gGENERATION.LOG.FIRST-LAST.arrows after the view, generation, log id and sequence
// numbers it holds, the reason in its schema metadata. A file is written whole (temporary
// file, fsync, rename), so a crash before the log is truncated just writes it again.
func (in *Ingester) setAside(k groupKey, es []entry, why string) (files []string, rows int64, err error) {
	dir := filepath.Join(in.log.dir, deadLetterDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, fmt.Errorf("push log dead-letter folder: %w", err)
	}
	for start := 0; start < len(es); {
		end := start + 1
		for end < len(es) && es[end].rec.Schema().Equal(es[start].rec.Schema()) {
			end++
		}
		run := es[start:end]
		first, last := run[0].Seq, run[len(run)-1].Seq
		name := fmt.Sprintf("%s.g%d.%s.%d-%d.arrows", k.view, k.generation, k.log, first, last)
		n, err := writeDeadLetter(filepath.Join(dir, name), run, map[string]string{
			offline.SummaryView: k.view, "quiver.generation": strconv.Itoa(k.generation), offline.SummaryPushLog: k.log,
			"quiver.push-seqs": fmt.Sprintf("%d-%d", first, last), "quiver.reason": why,
		})
		if err != nil {
			return files, rows, fmt.Errorf("set aside pushed rows of %q in %s: %w", k.view, dir, err)
		}
		files = append(files, name)
		rows += n
		start = end
	}
	return files, rows, fsutil.SyncDir(dir)
}

func writeDeadLetter(path string, es []entry, meta map[string]string) (int64, error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp) // after the rename, there is nothing left to remove
	s := es[0].rec.Schema()
	md := s.Metadata()
	keys, vals := append([]string{}, md.Keys()...), append([]string{}, md.Values()...)
	for k, v := range meta {
		keys, vals = append(keys, k), append(vals, v)
	}
	schema := arrow.NewSchema(s.Fields(), func() *arrow.Metadata { m := arrow.NewMetadata(keys, vals); return &m }())
	w := ipc.NewWriter(f, ipc.WithSchema(schema))
	var rows int64
	for _, e := range es {
		r := array.NewRecordBatch(schema, e.rec.Columns(), e.rec.NumRows())
		err := w.Write(r)
		r.Release()
		if err != nil {
			f.Close()
			return 0, err
		}
		rows += e.rec.NumRows()
	}
	if err := w.Close(); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return rows, os.Rename(tmp, path)
}
