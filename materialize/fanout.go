package materialize

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/fold"
	"github.com/quiverfs/quiver/value"
)

// Online load fan-out (materialize --online-workers N): after the offline commit, the run's
// interval is read back from the snapshot it committed and its rows are split by a hash of
// their entity key into N disjoint key ranges; each range is folded and written by a worker of
// its own (online/fold, through the stores' stale-write guard). An entity's rows all go to one
// worker, so what the store ends up holding does not depend on N. The same split would let
// the processes of a Kubernetes Indexed Job each load one range; that is not built yet.

// keyShards splits rows by entity-key hash: shard[i] is row i's worker, of n.
type keyShards struct {
	view *online.View
	vs   offline.ViewSchema
	buf  []byte
	vals []online.Value
}

func (k *keyShards) split(rec arrow.RecordBatch, n int, out []int) error {
	readers := make([]func(int) online.Value, len(k.vs.JoinKeys))
	for i, c := range k.vs.JoinKeys {
		r, err := value.ColumnReader(rec.Column(i), c.Type)
		if err != nil {
			return fmt.Errorf("join key %q: %w", c.Name, err)
		}
		readers[i] = r
	}
	if k.vals == nil {
		k.vals = make([]online.Value, len(readers))
	}
	for row := range int(rec.NumRows()) {
		for i, r := range readers {
			k.vals[i] = r(row)
		}
		b, err := k.view.AppendKeyBytes(k.buf[:0], k.vals...)
		if err != nil {
			return fmt.Errorf("row %d: %w", row, err)
		}
		k.buf = b
		h := fnv.New64a()
		_, _ = h.Write(b)
		out[row] = int(h.Sum64() % uint64(n))
	}
	return nil
}

// fanOutOnline loads the latest row per entity of the view's rows in r at snapshot into the
// online store with workers folds, each fed the rows of its key range. It returns the entity
// rows written.
func fanOutOnline(ctx context.Context, job Job, snapshot int64, r offline.Range, workers int, opts Options) (int64, error) {
	workers = max(workers, 1)
	folds := make([]*fold.Fold, workers)
	feeds := make([]chan arrow.RecordBatch, workers)
	g, gctx := errgroup.WithContext(ctx)
	for w := range workers {
		folds[w] = fold.New(job.OnlineView, job.Schema, job.Online, max(opts.OnlineMaxEntities/workers, 1), opts.OnlineBatch)
		folds[w].Since = opts.OnlineSince
		feeds[w] = make(chan arrow.RecordBatch, 2)
		g.Go(func() error {
			for rec := range feeds[w] {
				err := folds[w].Add(gctx, rec)
				rec.Release()
				if err != nil {
					for rec := range feeds[w] { // let the reader finish
						rec.Release()
					}
					return err
				}
			}
			return folds[w].Flush(gctx)
		})
	}
	ks := &keyShards{view: job.OnlineView, vs: job.Schema}
	g.Go(func() error {
		defer func() {
			for _, f := range feeds {
				close(f)
			}
		}()
		var dest []int
		_, err := scanInto(gctx, job, snapshot, r, canonicalColumns(job.Schema), func(ctx context.Context, rec arrow.RecordBatch) error {
			n := int(rec.NumRows())
			if cap(dest) < n {
				dest = make([]int, n)
			}
			dest = dest[:n]
			if workers > 1 {
				if err := ks.split(rec, workers, dest); err != nil {
					return err
				}
			} else {
				clear(dest)
			}
			parts, err := takeParts(ctx, rec, dest, workers)
			if err != nil {
				return err
			}
			for w, p := range parts {
				if p == nil {
					continue
				}
				select {
				case feeds[w] <- p:
				case <-ctx.Done():
					p.Release()
					for _, q := range parts[w+1:] {
						if q != nil {
							q.Release()
						}
					}
					return ctx.Err()
				}
			}
			return nil
		})
		return err
	})
	err := g.Wait()
	var written int64
	for _, f := range folds {
		written += f.Written
	}
	return written, err
}

// takeParts splits rec into one batch per worker (nil where a worker gets no row); dest[i] is
// row i's worker.
func takeParts(ctx context.Context, rec arrow.RecordBatch, dest []int, workers int) ([]arrow.RecordBatch, error) {
	idx := make([][]int64, workers)
	for i, w := range dest {
		idx[w] = append(idx[w], int64(i))
	}
	parts := make([]arrow.RecordBatch, workers)
	for w, rows := range idx {
		switch {
		case len(rows) == 0:
			continue
		case len(rows) == int(rec.NumRows()):
			rec.Retain()
			parts[w] = rec
			continue
		}
		b := array.NewInt64Builder(memory.DefaultAllocator)
		b.AppendValues(rows, nil)
		ix := b.NewInt64Array()
		b.Release()
		cols := make([]arrow.Array, rec.NumCols())
		var err error
		for c := range cols {
			if cols[c], err = compute.TakeArray(ctx, rec.Column(c), ix); err != nil {
				break
			}
		}
		ix.Release()
		if err != nil {
			for _, c := range cols {
				if c != nil {
					c.Release()
				}
			}
			for _, p := range parts {
				if p != nil {
					p.Release()
				}
			}
			return nil, fmt.Errorf("split rows by entity key: %w", err)
		}
		parts[w] = array.NewRecordBatch(rec.Schema(), cols, int64(len(rows)))
		for _, c := range cols {
			c.Release()
		}
	}
	return parts, nil
}
