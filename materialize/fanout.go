package materialize

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"

	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/fold"
	"github.com/quiverfs/quiver/value"
)

// Online load fan-out (materialize --online-workers N): after the offline commit, the run's
// interval is read back from the snapshot it committed and its rows are split by a hash of
// their entity key into N disjoint key ranges; each range is folded and written by a worker of
// its own (online/fold, through the stores' stale-write guard). An entity's rows all go to one
// worker, so what the store ends up holding does not depend on N. The same split lets the
// pods of a Kubernetes Indexed Job each load one range (materialize --shard i/N,
// LoadOnlineShard): shard i of N is the rows worker i of --online-workers N would load.

// Shard is part Index (0-based) of Count of a sharded online load: the rows whose entity-key
// hash modulo Count is Index. The zero Shard is the whole load.
type Shard struct{ Index, Count int }

// ParseShard reads "i/N" (0 <= i < N, 1 <= N <= 1024).
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(ns)
	if !ok || err1 != nil || err2 != nil || n < 1 || n > 1024 || i < 0 || i >= n {
		return Shard{}, errkind.Errorf(errkind.Usage, "--shard %q: want INDEX/COUNT with 0 <= INDEX < COUNT <= 1024, e.g. 0/4 (in a Kubernetes Indexed Job: $(JOB_COMPLETION_INDEX)/4)", s)
	}
	return Shard{Index: i, Count: n}, nil
}

// TileShard is the shard that rebuilds an aggregation view's tiles.
const TileShard = 0

func (s Shard) String() string { return strconv.Itoa(s.Index) + "/" + strconv.Itoa(s.Count) }

// LoadOnlineShard loads shard's part of the view's rows in [start, end) from the offline
// table's current snapshot into the online store (the latest row per entity, through the
// stale-write guard), with max(opts.OnlineWorkers, 1) workers. It writes nothing offline and
// records no run: the interval must already be committed offline (a materialize run before
// it). The shards 0..N-1 of one interval, run in any order or at once, leave the online store
// as one load of the whole interval does. An aggregation view's tiles are rebuilt whole, as a
// run does, by shard 0 (TileShard); the other shards leave them.
func LoadOnlineShard(ctx context.Context, job Job, start, end time.Time, shard Shard, opts Options) (SyncResult, error) {
	view := job.Schema.View
	res := SyncResult{View: view}
	switch {
	case job.Online == nil || job.OnlineView == nil:
		return res, fmt.Errorf("load shard %s of %q: the view is not online (online: false)", shard, view)
	case job.OfflineReader == nil:
		return res, fmt.Errorf("load shard %s of %q: no offline store to read", shard, view)
	}
	if opts.OnlineBatch <= 0 {
		opts.OnlineBatch = 2048
	}
	if opts.OnlineMaxEntities <= 0 {
		opts.OnlineMaxEntities = 1_000_000
	}
	began := time.Now()
	var n int64
	var err error
	switch {
	case !job.OnlineView.IsAggregation():
		n, err = fanOutOnline(ctx, job, 0, offline.Range{Start: start, End: end}, max(opts.OnlineWorkers, 1), shard, opts)
	case shard.Index == TileShard:
		n, err = rebuildTiles(ctx, job, end, 0, opts.OnlineBatch)
	}
	res.OnlineRows, res.Duration = n, time.Since(began)
	if err != nil {
		return res, errkind.Mark(errkind.Failed, fmt.Errorf("load shard %s of %q: %w", shard, view, err))
	}
	return res, nil
}

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
func fanOutOnline(ctx context.Context, job Job, snapshot int64, r offline.Range, workers int, shard Shard, opts Options) (int64, error) {
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
			// Shard i of C keeps the rows whose hash modulo C is i; h mod (C*W) keeps that
			// residue modulo C, and its quotient by C spreads them over the W workers.
			c := max(shard.Count, 1)
			if workers*c > 1 {
				if err := ks.split(rec, workers*c, dest); err != nil {
					return err
				}
				for i, x := range dest {
					if x%c != shard.Index {
						dest[i] = -1 // another shard's row
					} else {
						dest[i] = x / c
					}
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
// row i's worker, -1 for a row no worker takes.
func takeParts(ctx context.Context, rec arrow.RecordBatch, dest []int, workers int) ([]arrow.RecordBatch, error) {
	idx := make([][]int64, workers)
	for i, w := range dest {
		if w >= 0 {
			idx[w] = append(idx[w], int64(i))
		}
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
