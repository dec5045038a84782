package iceberg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/quiverfs/quiver/offline"
)

// Append adds rows to the table of the view's definition generation in one atomic append
// commit whose summary holds props. Unlike WriteInterval it replaces nothing: it is the
// offline write of pushed and streamed rows (see the ingest package), which arrive at any
// event time. Rows with equal (join keys, EventTS, CreatedTS) within the call collapse into
// the one given last; rows already in the table are not compared against (callers make
// appends idempotent by recording what they committed in props). rows is closed.
func (s *Store) Append(ctx context.Context, vs offline.ViewSchema, rows offline.Stream, props map[string]string) (res offline.WriteResult, err error) {
	defer func() {
		if cerr := rows.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("append %s: close input: %w", s.tableName(vs.View, vs.Generation), cerr)
		}
	}()
	name := s.tableName(vs.View, vs.Generation)
	tbl, err := s.ensure(ctx, vs)
	if err != nil {
		return res, err
	}
	canon := vs.Arrow()
	if _, err := inputColumns(rows.Schema(), canon); err != nil {
		return res, fmt.Errorf("append %s: %w", name, err)
	}
	var keyCols []int
	for i := range len(vs.JoinKeys) + 2 {
		keyCols = append(keyCols, i)
	}
	buf := newDedupBuffer(canon, keyCols, s.opts.MemoryBudget, s.opts.SpillBuckets, s.opts.SpillDir, SpillPrefix(strings.Join(s.ns, ".")), s.opts.Allocator)
	defer func() {
		if cerr := buf.close(); cerr != nil && err == nil {
			err = fmt.Errorf("append %s: %w", name, cerr)
		}
	}()
	for {
		rec, err := rows.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("append %s: read input: %w", name, err)
		}
		pick, err := inputColumns(rec.Schema(), canon)
		if err != nil {
			rec.Release()
			return res, fmt.Errorf("append %s: input batch: %w", name, err)
		}
		cols := make([]arrow.Array, len(pick))
		for i, p := range pick {
			cols[i] = rec.Column(p)
		}
		c := array.NewRecordBatch(canon, cols, rec.NumRows())
		rec.Release()
		if ts := c.Column(len(vs.JoinKeys)); ts.NullN() > 0 {
			c.Release()
			return res, fmt.Errorf("append %s: a row has no event time: %w", name, offline.ErrOutsideInterval)
		}
		err = buf.add(ctx, c)
		c.Release()
		if err != nil {
			return res, fmt.Errorf("append %s: %w", name, err)
		}
	}
	if err := buf.finish(); err != nil {
		return res, fmt.Errorf("append %s: %w", name, err)
	}
	if buf.rowsIn == 0 {
		return offline.WriteResult{NoOp: true}, nil
	}
	p := ice.Properties{offline.SummaryView: vs.View}
	for k, v := range props {
		p[k] = v
	}
	for attempt := 1; ; attempt++ {
		res, err = s.appendOnce(ctx, tbl, vs, buf, keyCols, p)
		if err == nil || !isCommitConflict(err) || attempt == maxCommitAttempts {
			if err != nil {
				return res, fmt.Errorf("append %s: %w", name, err)
			}
			return res, nil
		}
		if tbl, err = s.ensure(ctx, vs); err != nil {
			return res, err
		}
	}
}

func (s *Store) appendOnce(ctx context.Context, tbl *table.Table, vs offline.ViewSchema, buf *dedupBuffer, keyCols []int, props ice.Properties) (offline.WriteResult, error) {
	return s.commitWith(ctx, tbl, vs, buf, keyCols, nil, func(tx *table.Transaction, rdr *dedupReader) error {
		return tx.Append(ctx, rdr, props)
	})
}
