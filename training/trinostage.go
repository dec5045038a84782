package training

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/pitjoin"
	"github.com/quiverfs/quiver/offline/trino"
	"github.com/quiverfs/quiver/registry"
)

// dataset create --engine trino through CREATE TABLE AS: Trino writes the point-in-time join's
// result into a staging table of the Iceberg catalog it shares with Quiver, partitioned into
// contiguous ranges of entity row numbers; Quiver reads the table's Parquet files, a partition
// at a time with several read ahead in parallel, puts each partition's rows in entity-row
// order, and writes the snapshot as the in-process engine's result is written (the same
// content id rule). No result row passes through the Trino coordinator. The staging table
// ("d<build id>_<name>") is dropped when the build ends; a build killed before that leaves
// it, and the next build drops the staging tables of builds no longer in flight
// (sweepStagedJoins).

// StagedTables reads tables Trino writes into the shared catalog (the offline store).
type StagedTables interface {
	// ReadRange streams the rows of schema.table whose int64 column col is in [lo, hi), in
	// out's columns and types.
	ReadRange(ctx context.Context, schema, table, col string, lo, hi int64, out *arrow.Schema) (offline.Stream, error)
	// TableRows is the number of rows of schema.table.
	TableRows(ctx context.Context, schema, table string) (int64, error)
}

// Defaults of the staged read.
const (
	// StagePartitionRows is how many entity rows one partition of the staging table holds:
	// what one reader sorts in memory.
	StagePartitionRows = 1 << 18
	// StageReadAhead is how many partitions are read at once.
	StageReadAhead = 2
)

// joinTrinoStaged runs the pushed-down join as a CREATE TABLE AS and streams the staged rows
// back in entity-row order.
func joinTrinoStaged(ctx context.Context, req DatasetRequest, spec trino.JoinSpec, bld *build) (_ *joined, err error) {
	spec.RowNumber = true
	q, err := trino.BuildJoinSQL(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	cols, err := req.Trino.ResultColumns(ctx, q)
	if err != nil {
		return nil, err
	}
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: c.Arrow, Nullable: true}
	}
	read := arrow.NewSchema(fields, nil)                   // with the row number, last
	schema := arrow.NewSchema(fields[:len(fields)-1], nil) // the result's
	// Trino folds identifiers to lower case; the build id makes the name unique.
	table := stagedJoinPrefix + strconv.FormatInt(int64(bld.rec.ID), 10) + "_" + strings.ToLower(req.Name)
	if err := req.Trino.EnsureSchema(ctx, req.TrinoStageSchema); err != nil {
		return nil, err
	}
	if err := sweepStagedJoins(ctx, req, bld.reg); err != nil {
		return nil, err
	}
	drop := func() error {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return req.Trino.DropTable(dctx, req.TrinoStageSchema, table)
	}
	if err := drop(); err != nil { // a left-over of the same build id
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, drop())
		}
	}()
	part := req.TrinoStagePartitionRows
	if part <= 0 {
		part = StagePartitionRows
	}
	stmt := trino.BuildResultCTAS(req.TrinoStageSchema, table, q, cols, trino.RowNumberColumn, part)
	if err := req.Trino.Exec(ctx, stmt); err != nil {
		return nil, fmt.Errorf("trino: stage the point-in-time join in %s.%s: %w", req.TrinoStageSchema, table, err)
	}
	if req.Pause != nil {
		req.Pause(ctx, "dataset-staged")
	}
	n, err := req.TrinoStage.TableRows(ctx, req.TrinoStageSchema, table)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &stagedReader{ctx: rctx, req: req, table: table, read: read, schema: schema, rows: n, partRows: part}
	for range StageReadAhead {
		r.fetchNext()
	}
	return &joined{
		schema: schema,
		total:  n,
		next:   r.next,
		stats:  func() pitjoin.Stats { return pitjoin.Stats{} },
		close: func() {
			cancel()
			for _, f := range r.ahead {
				if res := <-f; res.rec != nil {
					res.rec.Release()
				}
			}
			r.ahead = nil
			_ = drop()
		},
	}, nil
}

// stagedJoinPrefix starts the name of every dataset build's staging table (materialization's
// start with "r", in the same schema).
const stagedJoinPrefix = "d"

// sweepStagedJoins drops the staging tables of the project's dataset builds that are no longer
// in flight: finished builds drop their own, so these are what killed builds left. The tables
// are listed before the builds: a build's table is created after its registry row, so every
// table listed whose build is still in flight has its row in the builds read after.
func sweepStagedJoins(ctx context.Context, req DatasetRequest, reg registry.DatasetBuilds) error {
	tables, err := req.Trino.Tables(ctx, req.TrinoStageSchema, stagedJoinPrefix)
	if err != nil {
		return err
	}
	if len(tables) == 0 {
		return nil
	}
	builds, err := reg.ListDatasetBuilds(ctx, req.Project)
	if err != nil {
		return fmt.Errorf("list dataset builds: %w", err)
	}
	host, _ := os.Hostname()
	live := map[registry.DatasetBuildID]bool{}
	for _, b := range builds {
		if !buildDead(b, host, DefaultStaleBuildAge) {
			live[b.ID] = true
		}
	}
	for _, t := range tables {
		rest, _ := strings.CutPrefix(t, stagedJoinPrefix)
		id, _, ok := strings.Cut(rest, "_")
		n, err := strconv.ParseInt(id, 10, 64)
		if !ok || err != nil || n <= 0 || live[registry.DatasetBuildID(n)] {
			continue
		}
		if err := req.Trino.DropTable(ctx, req.TrinoStageSchema, t); err != nil {
			return fmt.Errorf("drop the staging table of dataset build %d: %w", n, err)
		}
	}
	return nil
}

// stagedReader reads a staged join result a partition at a time, StageReadAhead at once.
type stagedReader struct {
	ctx          context.Context
	req          DatasetRequest
	table        string
	read, schema *arrow.Schema
	rows         int64
	partRows     int64
	part         int64 // the next partition to fetch
	ahead        []chan partResult
}

type partResult struct {
	rec arrow.RecordBatch
	err error
}

// fetchNext starts reading the next partition, if any is left.
func (r *stagedReader) fetchNext() {
	lo := r.part * r.partRows
	if lo > r.rows { // row numbers are 1..rows
		return
	}
	r.part++
	ch := make(chan partResult, 1)
	r.ahead = append(r.ahead, ch)
	go func() {
		rec, err := r.readPartition(lo, lo+r.partRows)
		ch <- partResult{rec, err}
	}()
}

func (r *stagedReader) next(ctx context.Context) (arrow.RecordBatch, error) {
	for len(r.ahead) > 0 {
		f := r.ahead[0]
		r.ahead = r.ahead[1:]
		r.fetchNext()
		var res partResult
		select {
		case res = <-f:
		case <-ctx.Done():
			r.ahead = append([]chan partResult{f}, r.ahead...) // close drains it
			return nil, ctx.Err()
		}
		if res.err != nil {
			return nil, res.err
		}
		if res.rec.NumRows() > 0 {
			return res.rec, nil
		}
		res.rec.Release()
	}
	return nil, io.EOF
}

// readPartition reads the rows numbered [lo, hi) ∩ [1, rows] and returns them in order,
// without the row number. Each number must be there exactly once.
func (r *stagedReader) readPartition(lo, hi int64) (arrow.RecordBatch, error) {
	ctx := r.ctx
	lo, hi = max(lo, 1), min(hi, r.rows+1)
	st, err := r.req.TrinoStage.ReadRange(ctx, r.req.TrinoStageSchema, r.table, trino.RowNumberColumn, lo, hi, r.read)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var recs []arrow.RecordBatch
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	for {
		rec, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	want := hi - lo
	// perm[i] is the position in the concatenated rows of row number lo+i.
	perm := make([]int64, want)
	for i := range perm {
		perm[i] = -1
	}
	var at int64
	for _, rec := range recs {
		nums := rec.Column(int(rec.NumCols()) - 1).(*array.Int64)
		for j := range nums.Len() {
			v := nums.Value(j) - lo
			if nums.IsNull(j) || v < 0 || v >= want || perm[v] >= 0 {
				return nil, fmt.Errorf("staged join result %s: row number %d is out of place or repeated", r.table, nums.Value(j))
			}
			perm[v] = at + int64(j)
		}
		at += rec.NumRows()
	}
	if at != want {
		return nil, fmt.Errorf("staged join result %s: %d rows numbered [%d, %d), want %d", r.table, at, lo, hi, want)
	}
	mem := memory.DefaultAllocator
	idx := array.NewInt64Builder(mem)
	defer idx.Release()
	idx.AppendValues(perm, nil)
	indices := idx.NewInt64Array()
	defer indices.Release()
	cols := make([]arrow.Array, r.schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for c := range cols {
		chunks := make([]arrow.Array, len(recs))
		for i, rec := range recs {
			chunks[i] = rec.Column(c)
		}
		var all arrow.Array
		if len(chunks) == 0 {
			all = array.MakeArrayOfNull(mem, r.schema.Field(c).Type, 0)
		} else if all, err = array.Concatenate(chunks, mem); err != nil {
			return nil, fmt.Errorf("staged join result %s: %w", r.table, err)
		}
		cols[c], err = compute.TakeArray(ctx, all, indices)
		all.Release()
		if err != nil {
			return nil, fmt.Errorf("staged join result %s: order rows: %w", r.table, err)
		}
	}
	out := array.NewRecordBatch(r.schema, cols, want)
	return out, nil
}
