package iceberg

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
)

// PropMaterializedFrom is the table property where WriteInterval records the earliest start
// of the intervals ever written to the table (RFC 3339): where its materialized history
// begins. Table properties outlive snapshot expiry.
const PropMaterializedFrom = "quiver.materialized-from"

// Defaults of StoreOptions.
const (
	DefaultNamespace    = "quiver"
	DefaultMemoryBudget = 256 << 20
	DefaultSpillBuckets = 64
	// PartitionField is the name of the day(event_ts) partition field of every view table.
	PartitionField = "event_ts_day"
	// dictColumnKey prefixes the per-column dictionary-encoding table property
	// (iceberg-go's write.parquet.dict-encoding-enabled.column).
	dictColumnKey = "write.parquet.dict-encoding-enabled.column"
	// RowGroupSizeBytes is the Parquet row group size (compressed bytes) view tables are
	// written with. iceberg-go keeps one buffered Parquet writer open per day partition a write
	// touches, each holding up to one row group (≈ 2.5× this in heap), so this bounds a write's
	// memory by the days it covers, not by its rows: 4 MiB ≈ 50,000 rows of 10 features.
	RowGroupSizeBytes = 4 << 20
	// PageSizeBytes is the Parquet data page size (uncompressed) view tables are written with.
	// Every column of every open partition writer fills a page in memory before it counts
	// towards the row group (iceberg-go's default, 1 MiB, makes that days × columns × 1 MiB).
	PageSizeBytes = 256 << 10
)

// StoreOptions tune the offline store. The zero value means the defaults.
type StoreOptions struct {
	// Namespace holds the view tables; empty means DefaultNamespace. A dotted name is a
	// nested namespace.
	Namespace string
	// MemoryBudget is how many bytes of rows a write keeps in memory before spilling them to
	// disk to de-duplicate; 0 means DefaultMemoryBudget.
	MemoryBudget int64
	// SpillBuckets is how many hash buckets spilled rows are split into; each is
	// de-duplicated alone, so a write needs about spilled bytes / SpillBuckets of memory.
	// 0 means DefaultSpillBuckets.
	SpillBuckets int
	// SpillDir is where spill files go; empty means os.TempDir().
	SpillDir string
	// Allocator allocates Arrow memory; nil means memory.DefaultAllocator.
	Allocator memory.Allocator
	// RowGroupBytes is the Parquet row group size (compressed bytes) tables are written
	// with; 0 means RowGroupSizeBytes. A write's Parquet buffers are about the days it
	// touches × 2.5 × this.
	RowGroupBytes int
	// PageBytes is the Parquet data page size (uncompressed bytes); 0 means PageSizeBytes.
	PageBytes int
}

// Store is the offline store: one Iceberg table per feature view, named NAMESPACE.VIEW,
// with the view's canonical columns, partitioned by day(event_ts). It is safe for
// concurrent use; concurrent writes to one view are serialized by the catalog's optimistic
// commit (a loser fails with a commit conflict and may retry).
type Store struct {
	cat  *Catalog
	ns   table.Identifier
	opts StoreOptions
}

var _ offline.Store = (*Store)(nil)

// NewStore returns the store over cat, creating its namespace if needed. The caller keeps
// ownership of cat.
func NewStore(ctx context.Context, cat *Catalog, opts StoreOptions) (*Store, error) {
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.MemoryBudget <= 0 {
		opts.MemoryBudget = DefaultMemoryBudget
	}
	if opts.SpillBuckets <= 0 {
		opts.SpillBuckets = DefaultSpillBuckets
	}
	if opts.RowGroupBytes <= 0 {
		opts.RowGroupBytes = RowGroupSizeBytes
	}
	if opts.PageBytes <= 0 {
		opts.PageBytes = PageSizeBytes
	}
	if opts.SpillDir == "" {
		opts.SpillDir = os.TempDir()
	}
	if opts.Allocator == nil {
		opts.Allocator = memory.DefaultAllocator
	}
	ns := strings.Split(opts.Namespace, ".")
	if err := cat.ensureNamespace(ctx, ns); err != nil {
		return nil, err
	}
	return &Store{cat: cat, ns: ns, opts: opts}, nil
}

// Identifier is the table identifier of a view's definition generation (0 or 1: the first):
// NAMESPACE.VIEW for the first generation, NAMESPACE."VIEW-gN" after (TableName).
func (s *Store) Identifier(view string, generation int) table.Identifier {
	return append(append(table.Identifier{}, s.ns...), TableName(view, generation))
}

// TableName is the name of the table of a view's definition generation inside the store's
// namespace: the view's name for the first generation, VIEW-gN after. View names cannot
// contain '-', so no view's table collides with another's generation.
func TableName(view string, generation int) string {
	if generation <= 1 {
		return view
	}
	return view + "-g" + strconv.Itoa(generation)
}

func (s *Store) tableName(view string, generation int) string {
	return strings.Join(s.Identifier(view, generation), ".")
}

func (s *Store) load(ctx context.Context, view string, generation int) (*table.Table, error) {
	tbl, err := s.cat.cat.LoadTable(ctx, s.Identifier(view, generation))
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return nil, fmt.Errorf("offline table %s: %w", s.tableName(view, generation), offline.ErrTableNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load offline table %s: %w", s.tableName(view, generation), err)
	}
	return tbl, nil
}

// EnsureTable implements offline.Writer.
func (s *Store) EnsureTable(ctx context.Context, vs offline.ViewSchema) error {
	_, err := s.ensure(ctx, vs)
	return err
}

func (s *Store) ensure(ctx context.Context, vs offline.ViewSchema) (*table.Table, error) {
	if err := vs.Validate(); err != nil {
		return nil, err
	}
	name := s.tableName(vs.View, vs.Generation)
	tbl, err := s.load(ctx, vs.View, vs.Generation)
	if errors.Is(err, offline.ErrTableNotFound) {
		sc, err := tableSchema(vs)
		if err != nil {
			return nil, err
		}
		ts, _ := sc.FindFieldByName(offline.EventTS)
		spec := ice.NewPartitionSpec(ice.PartitionField{
			SourceIDs: []int{ts.ID}, FieldID: 1000, Name: PartitionField, Transform: ice.DayTransform{},
		})
		props := ice.Properties{
			offline.SummaryView: vs.View,
		}
		// Each day partition a write touches keeps a Parquet writer open with one row group
		// buffered; smaller row groups and pages than iceberg-go's defaults bound a
		// multi-day write's memory.
		maps.Copy(props, s.writeProps())
		// Dictionary encoding rarely pays for float features (nearly every value distinct)
		// and its hash tables cost memory in every open partition writer.
		for _, c := range vs.Features {
			if !c.Type.Array && (c.Type.Elem == definitions.Float32 || c.Type.Elem == definitions.Float64) {
				props[dictColumnKey+"."+c.Name] = "false"
			}
		}
		tbl, err = s.cat.cat.CreateTable(ctx, s.Identifier(vs.View, vs.Generation), sc,
			catalog.WithPartitionSpec(&spec), catalog.WithProperties(props))
		if errors.Is(err, catalog.ErrTableAlreadyExists) {
			return s.ensure(ctx, vs) // created concurrently: check it
		}
		if err != nil {
			return nil, fmt.Errorf("create offline table %s: %w", name, err)
		}
		return tbl, nil
	}
	if err != nil {
		return nil, err
	}
	cur := tbl.Schema()
	var missing, promoted []offline.Column
	for _, c := range vs.Columns() {
		f, ok := cur.FindFieldByName(c.Name)
		if !ok {
			missing = append(missing, c)
			continue
		}
		got, ok := TypeFromIceberg(f.Type)
		if ok && got != c.Type && definitions.Widens(got, c.Type) {
			promoted = append(promoted, c)
			continue
		}
		if !ok || got != c.Type {
			return nil, fmt.Errorf("offline table %s: %w: column %q is stored as %s but view %q declares it %s; "+
				"only int32 to int64 and float32 to float64 widen in place: apply the change with "+
				"'quiver apply --allow-breaking' to start a new generation of the view, then materialize",
				name, offline.ErrSchemaConflict, c.Name, f.Type, vs.View, c.Type)
		}
	}
	if len(missing) == 0 && len(promoted) == 0 {
		return tbl, nil
	}
	tx := tbl.NewTransaction()
	us := tx.UpdateSchema(true, false)
	var added []string
	for _, c := range promoted {
		t, err := IcebergType(c.Type, func() int { return 0 })
		if err != nil {
			return nil, fmt.Errorf("offline table %s column %q: %w", name, c.Name, err)
		}
		us = us.UpdateColumn([]string{c.Name}, table.ColumnUpdate{FieldType: ice.Optional[ice.Type]{Val: t, Valid: true}})
		added = append(added, c.Name+" (promoted to "+c.Type.String()+")")
	}
	for _, c := range missing {
		t, err := IcebergType(c.Type, func() int { return 0 })
		if err != nil {
			return nil, fmt.Errorf("offline table %s column %q: %w", name, c.Name, err)
		}
		us = us.AddColumn([]string{c.Name}, t, "", false, nil)
		added = append(added, c.Name)
	}
	if err := us.Commit(); err != nil {
		return nil, fmt.Errorf("offline table %s: evolve columns %s: %w", name, strings.Join(added, ", "), err)
	}
	tbl, err = tx.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("offline table %s: evolve columns %s: %w", name, strings.Join(added, ", "), err)
	}
	return tbl, nil
}

// WriteInterval implements offline.Writer with one Iceberg overwrite commit: the files of
// the interval's days are deleted (or, for days the interval covers only in part, rewritten
// without the interval's rows) and the new rows appended, in a single snapshot whose summary
// records offline.SummaryRunID, offline.SummaryIntervalStart and offline.SummaryIntervalEnd.
//
// Rows are de-duplicated before writing. They are held in memory up to
// StoreOptions.MemoryBudget bytes, then spilled to disk in StoreOptions.SpillBuckets hash
// buckets and de-duplicated a bucket at a time, so the memory a write needs is about
// max(MemoryBudget, interval bytes / SpillBuckets), independent of the stream's length.
func (s *Store) WriteInterval(ctx context.Context, vs offline.ViewSchema, r offline.Range, rows offline.Stream, runID string) (res offline.WriteResult, err error) {
	defer func() {
		if cerr := rows.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write %s: close input: %w", s.tableName(vs.View, vs.Generation), cerr)
		}
	}()
	name := s.tableName(vs.View, vs.Generation)
	if err := r.Validate(); err != nil {
		return res, fmt.Errorf("write %s: %w", name, err)
	}
	tbl, err := s.ensure(ctx, vs)
	if err != nil {
		return res, err
	}
	canon := vs.Arrow()
	var pick []int
	if _, err := inputColumns(rows.Schema(), canon); err != nil { // fail before reading when the schema does not fit
		return res, fmt.Errorf("write %s: %w", name, err)
	}
	var keyCols []int
	for i := range len(vs.JoinKeys) + 2 { // join keys, event_ts, created_ts
		keyCols = append(keyCols, i)
	}
	tsCol := len(vs.JoinKeys)
	buf := newDedupBuffer(canon, keyCols, s.opts.MemoryBudget, s.opts.SpillBuckets, s.opts.SpillDir, SpillPrefix(strings.Join(s.ns, ".")), s.opts.Allocator)
	defer func() {
		if cerr := buf.close(); cerr != nil && err == nil {
			err = fmt.Errorf("write %s: %w", name, cerr)
		}
	}()
	start, end := r.Micros()
	for {
		rec, err := rows.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("write %s: read input: %w", name, err)
		}
		if pick, err = inputColumns(rec.Schema(), canon); err != nil { // a batch may not match Schema()
			rec.Release()
			return res, fmt.Errorf("write %s: input batch: %w", name, err)
		}
		cols := make([]arrow.Array, len(pick))
		for i, p := range pick {
			cols[i] = rec.Column(p)
		}
		c := array.NewRecordBatch(canon, cols, rec.NumRows())
		rec.Release()
		if err := checkInterval(c.Column(tsCol).(*array.Timestamp), start, end); err != nil {
			c.Release()
			return res, fmt.Errorf("write %s %s: %w", name, r, err)
		}
		err = buf.add(ctx, c)
		c.Release()
		if err != nil {
			return res, fmt.Errorf("write %s: %w", name, err)
		}
	}
	if err := buf.finish(); err != nil {
		return res, fmt.Errorf("write %s: %w", name, err)
	}
	if buf.rowsIn == 0 {
		// Nothing to load: commit only if there are rows in the interval to remove.
		empty, err := intervalEmpty(ctx, tbl, start, end)
		if err != nil {
			return res, fmt.Errorf("write %s %s: %w", name, r, err)
		}
		if empty {
			return offline.WriteResult{NoOp: true}, nil
		}
	}
	props := ice.Properties{
		offline.SummaryRunID:         runID,
		offline.SummaryIntervalStart: r.Start.UTC().Format(time.RFC3339Nano),
		offline.SummaryIntervalEnd:   r.End.UTC().Format(time.RFC3339Nano),
		offline.SummaryView:          vs.View,
	}
	for attempt := 1; ; attempt++ {
		res, err = s.commit(ctx, tbl, vs, buf, keyCols, start, end, props)
		if err == nil || !isCommitConflict(err) || attempt == maxCommitAttempts {
			if err != nil {
				return res, fmt.Errorf("write %s %s: %w", name, r, err)
			}
			return res, nil
		}
		// Another writer committed first (parallel chunks of a backfill, a push): wait a
		// random moment, so that racing writers spread out, and replay the buffered rows on
		// the new state.
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Duration(10+rand.IntN(90)) * time.Millisecond):
		}
		if tbl, err = s.ensure(ctx, vs); err != nil {
			return res, err
		}
	}
}

// maxCommitAttempts bounds how often WriteInterval retries a commit that lost a race.
const maxCommitAttempts = 8

// isCommitConflict reports whether a commit lost a race with another writer. iceberg-go
// v0.7.0 wraps some conflicts in table.ErrCommitFailed; the SQL catalog returns failed
// table requirements ("branch main has changed") as plain errors.
func isCommitConflict(err error) bool {
	return errors.Is(err, table.ErrCommitFailed) || strings.Contains(err.Error(), "requirement failed:")
}

// commit makes one attempt at the overwrite commit of the buffered rows. It moves the
// table's PropMaterializedFrom back to start when the interval begins earlier.
func (s *Store) commit(ctx context.Context, tbl *table.Table, vs offline.ViewSchema, buf *dedupBuffer, keyCols []int, start, end int64, props ice.Properties) (offline.WriteResult, error) {
	var tableProps ice.Properties
	if from, ok := materializedFrom(tbl); !ok || start < from.UnixMicro() {
		tableProps = ice.Properties{PropMaterializedFrom: time.UnixMicro(start).UTC().Format(time.RFC3339Nano)}
	}
	return s.commitWith(ctx, tbl, vs, buf, keyCols, tableProps, func(tx *table.Transaction, rdr *dedupReader) error {
		filter, keep, err := overwriteFilter(ctx, tbl, start, end)
		if err != nil {
			return err
		}
		if keep == nil {
			return tx.Overwrite(ctx, rdr, props, table.WithOverwriteFilter(filter))
		}
		kept, err := scanReader(ctx, tbl, keep, rdr.Schema(), s.opts.Allocator)
		if err != nil {
			return err
		}
		rdr.Retain() // the concatenation releases it; commitWith still reads its counts
		in := &concatReader{readers: []array.RecordReader{rdr, kept}}
		in.refs.Store(1)
		defer in.Release()
		return tx.Overwrite(ctx, in, props, table.WithOverwriteFilter(filter))
	})
}

// overwriteFilter is the filter of the overwrite that replaces the rows of [start, end). It is
// the interval itself, and keep is nil, unless a data file the interval touches has delete
// files (position or equality deletes, deletion vectors: what Trino's DELETE, UPDATE and MERGE
// write). iceberg-go v0.7.0 rewrites a file the filter covers in part from the file alone,
// without its delete files, so rows another engine deleted would come back. Then the filter
// widens to whole files — the smallest time range that holds every file it touches, found by
// widening to the touched files' event_ts bounds until no other file is touched (all time when
// a file has no bounds, or null event times) — so no file is rewritten, and keep selects the
// rows of that range outside the interval, which the caller reads back through a scan (which
// applies the deletes) and writes again with the new rows.
func overwriteFilter(ctx context.Context, tbl *table.Table, start, end int64) (filter, keep ice.BooleanExpression, err error) {
	interval := intervalFilter(start, end)
	cur := tbl.CurrentSnapshot()
	if cur == nil {
		return interval, nil, nil
	}
	f, ok := tbl.Schema().FindFieldByName(offline.EventTS)
	if !ok {
		return nil, nil, fmt.Errorf("table has no %s column", offline.EventTS)
	}
	ref := ice.Reference(offline.EventTS)
	outside := ice.NewOr(ice.LessThan(ref, ice.Timestamp(start)), ice.GreaterThanEqual(ref, ice.Timestamp(end)))
	lo, hi := start, end
	for first := true; ; first = false {
		tasks, err := tbl.Scan(table.WithRowFilter(intervalFilter(lo, hi)), table.WithSnapshotID(cur.SnapshotID)).PlanFiles(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("plan files of the interval: %w", err)
		}
		deletes := false
		nlo, nhi := lo, hi
		for _, task := range tasks {
			deletes = deletes || len(task.DeleteFiles)+len(task.EqualityDeleteFiles)+len(task.DeletionVectorFiles) > 0
			l, u, ok := timeBounds(task.File, f.ID)
			if !ok {
				return ice.AlwaysTrue{}, ice.NewOr(outside, ice.IsNull(ref)), nil
			}
			nlo, nhi = min(nlo, l), max(nhi, u+1)
		}
		if first && !deletes {
			return interval, nil, nil
		}
		if nlo == lo && nhi == hi {
			return intervalFilter(lo, hi), ice.NewAnd(intervalFilter(lo, hi), outside), nil
		}
		lo, hi = nlo, nhi
	}
}

// timeBounds are a data file's lowest and highest event_ts (field id), in microseconds; ok is
// false when the file does not record them or holds null event times.
func timeBounds(df ice.DataFile, id int) (lo, hi int64, ok bool) {
	if n, found := df.NullValueCounts()[id]; !found || n > 0 {
		return 0, 0, false
	}
	l, u := df.LowerBoundValues()[id], df.UpperBoundValues()[id]
	if len(l) != 8 || len(u) != 8 { // a timestamp bound is 8 bytes, little-endian microseconds
		return 0, 0, false
	}
	return int64(binary.LittleEndian.Uint64(l)), int64(binary.LittleEndian.Uint64(u)), true
}

// scanReader reads the current snapshot's rows that filter selects (delete files applied) as
// batches of target's columns.
func scanReader(ctx context.Context, tbl *table.Table, filter ice.BooleanExpression, target *arrow.Schema, mem memory.Allocator) (array.RecordReader, error) {
	opts := []table.ScanOption{table.WithRowFilter(filter)}
	if cur := tbl.CurrentSnapshot(); cur != nil {
		opts = append(opts, table.WithSnapshotID(cur.SnapshotID))
	}
	scan := tbl.Scan(opts...)
	_, seq, err := scan.ToArrowRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the rows kept around the interval: %w", err)
	}
	next, stop := iter.Pull2(seq)
	r := &funcReader{schema: target, stop: func() { stop(); _ = scan.Close() }, next: func() (arrow.RecordBatch, error) {
		rec, err, ok := next()
		if !ok {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("read the rows kept around the interval: %w", err)
		}
		defer rec.Release()
		return conformScan(ctx, rec, target, mem)
	}}
	r.refs.Store(1)
	return r, nil
}

// funcReader is an array.RecordReader over a function returning batches, then io.EOF.
type funcReader struct {
	schema *arrow.Schema
	next   func() (arrow.RecordBatch, error)
	stop   func()
	refs   atomic.Int64
	cur    arrow.RecordBatch
	err    error
	done   bool
}

func (r *funcReader) Retain()                        { r.refs.Add(1) }
func (r *funcReader) Schema() *arrow.Schema          { return r.schema }
func (r *funcReader) Err() error                     { return r.err }
func (r *funcReader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is the deprecated name of RecordBatch.
func (r *funcReader) Record() arrow.RecordBatch { return r.cur }

func (r *funcReader) Release() {
	if r.refs.Add(-1) == 0 {
		if r.cur != nil {
			r.cur.Release()
			r.cur = nil
		}
		r.stop()
	}
}

func (r *funcReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.done || r.err != nil {
		return false
	}
	rec, err := r.next()
	if errors.Is(err, io.EOF) {
		r.done = true
		return false
	}
	if err != nil {
		r.err = err
		return false
	}
	r.cur = rec
	return true
}

// concatReader reads its readers one after the other; it releases them when released. They
// share one schema.
type concatReader struct {
	readers []array.RecordReader
	i       int
	refs    atomic.Int64
}

func (c *concatReader) Retain()               { c.refs.Add(1) }
func (c *concatReader) Schema() *arrow.Schema { return c.readers[0].Schema() }

func (c *concatReader) Release() {
	if c.refs.Add(-1) == 0 {
		for _, r := range c.readers {
			r.Release()
		}
	}
}

func (c *concatReader) Next() bool {
	for c.i < len(c.readers) {
		if c.readers[c.i].Next() {
			return true
		}
		if c.readers[c.i].Err() != nil {
			return false
		}
		c.i++
	}
	return false
}

func (c *concatReader) RecordBatch() arrow.RecordBatch {
	return c.readers[min(c.i, len(c.readers)-1)].RecordBatch()
}

// Record is the deprecated name of RecordBatch.
func (c *concatReader) Record() arrow.RecordBatch { return c.RecordBatch() }

func (c *concatReader) Err() error {
	for _, r := range c.readers {
		if err := r.Err(); err != nil {
			return err
		}
	}
	return nil
}

// materializedFrom is where a table's materialized history begins: its PropMaterializedFrom,
// or, for a table written before the property existed, the earliest interval start recorded
// in its snapshots. ok is false when neither says (a table only appended to, or empty).
func materializedFrom(tbl *table.Table) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, tbl.Properties()[PropMaterializedFrom]); err == nil {
		return t, true
	}
	var from time.Time
	for _, sn := range tbl.Metadata().Snapshots() {
		if sn.Summary == nil {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, sn.Summary.Properties[offline.SummaryIntervalStart]); err == nil && (from.IsZero() || t.Before(from)) {
			from = t
		}
	}
	return from, !from.IsZero()
}

// MaterializedFrom says where the materialized history of a view's table (of one definition
// generation) begins: the earliest start of the intervals WriteInterval wrote to it. ok is
// false when the table has none (a push or stream view's table, or one never written);
// offline.ErrTableNotFound when there is no table.
func (s *Store) MaterializedFrom(ctx context.Context, view string, generation int) (time.Time, bool, error) {
	tbl, err := s.load(ctx, view, generation)
	if err != nil {
		return time.Time{}, false, err
	}
	from, ok := materializedFrom(tbl)
	return from, ok, nil
}

// commitWith makes one attempt at a commit of the buffered rows, deduplicated and cast to the
// table's schema, staged on the transaction by stage (an overwrite or an append), setting
// tableProps on the table in the same commit.
func (s *Store) commitWith(ctx context.Context, tbl *table.Table, vs offline.ViewSchema, buf *dedupBuffer, keyCols []int, tableProps ice.Properties, stage func(*table.Transaction, *dedupReader) error) (offline.WriteResult, error) {
	var res offline.WriteResult
	target, err := writeSchema(tbl.Schema(), vs)
	if err != nil {
		return res, err
	}
	rdr := &dedupReader{ctx: ctx, buf: buf, keyCols: keyCols, target: target, mem: s.opts.Allocator}
	rdr.refs.Store(1)
	defer rdr.Release()
	tx := tbl.NewTransaction()
	set := maps.Clone(tableProps)
	for k, want := range s.writeProps() {
		if tbl.Properties()[k] != want {
			// A table created with other sizes (older versions: 32 MiB row groups, 1 MiB
			// pages) is written with these from now on, set in the same atomic commit.
			if set == nil {
				set = ice.Properties{}
			}
			maps.Copy(set, s.writeProps())
			break
		}
	}
	if len(set) > 0 {
		if err := tx.SetProperties(set); err != nil {
			return res, fmt.Errorf("set table properties: %w", err)
		}
	}
	if err := stage(tx, rdr); err != nil {
		if rerr := rdr.Err(); rerr != nil {
			err = rerr
		}
		return res, err
	}
	if err := rdr.Err(); err != nil {
		return res, err
	}
	committed, err := tx.Commit(ctx)
	if err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	res = offline.WriteResult{RowsIn: buf.rowsIn, RowsWritten: rdr.rowsOut, Spilled: buf.spilled(),
		Conflicts: rdr.conflicts.n, ConflictExample: rdr.conflicts.example}
	if snap := committed.CurrentSnapshot(); snap != nil {
		res.SnapshotID = snap.SnapshotID
	}
	return res, nil
}

// writeProps are the table properties that bound the Parquet writers' memory.
func (s *Store) writeProps() ice.Properties {
	return ice.Properties{
		table.ParquetRowGroupSizeBytesKey: strconv.Itoa(s.opts.RowGroupBytes),
		table.ParquetPageSizeBytesKey:     strconv.Itoa(s.opts.PageBytes),
	}
}

// intervalEmpty reports whether the table's current snapshot has no data file that may hold
// rows in [start, end) (files are pruned by partition and column statistics, so a file kept
// here may still turn out to hold none: then the commit is made, harmlessly).
func intervalEmpty(ctx context.Context, tbl *table.Table, start, end int64) (bool, error) {
	if tbl.CurrentSnapshot() == nil {
		return true, nil
	}
	tasks, err := tbl.Scan(table.WithRowFilter(intervalFilter(start, end))).PlanFiles(ctx)
	if err != nil {
		return false, fmt.Errorf("plan files of the interval: %w", err)
	}
	return len(tasks) == 0, nil
}

func intervalFilter(start, end int64) ice.BooleanExpression {
	ref := ice.Reference(offline.EventTS)
	return ice.NewAnd(ice.GreaterThanEqual(ref, ice.Timestamp(start)), ice.LessThan(ref, ice.Timestamp(end)))
}

// inputColumns finds each canonical column in the input schema and checks its type.
func inputColumns(in, canon *arrow.Schema) ([]int, error) {
	pick := make([]int, canon.NumFields())
	for i, f := range canon.Fields() {
		idx := in.FieldIndices(f.Name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("input rows: %w: %q", offline.ErrColumnNotFound, f.Name)
		}
		got := in.Field(idx[0]).Type
		if !arrow.TypeEqual(got, f.Type) {
			return nil, &offline.ColumnTypeError{Source: "input rows", Column: f.Name, Actual: got.String(), Declared: f.Type.String()}
		}
		pick[i] = idx[0]
	}
	return pick, nil
}

func checkInterval(ts *array.Timestamp, start, end int64) error {
	for i, v := range ts.Values() {
		if ts.IsNull(i) {
			return fmt.Errorf("%w: row with null %s", offline.ErrOutsideInterval, offline.EventTS)
		}
		if int64(v) < start || int64(v) >= end {
			return fmt.Errorf("%w: row with %s %s", offline.ErrOutsideInterval, offline.EventTS,
				time.UnixMicro(int64(v)).UTC().Format(time.RFC3339Nano))
		}
	}
	return nil
}

// writeSchema is the Arrow schema written: the table's columns in its order, with the
// canonical type of each.
func writeSchema(sc *ice.Schema, vs offline.ViewSchema) (*arrow.Schema, error) {
	fields := make([]arrow.Field, 0, len(sc.Fields()))
	for _, f := range sc.Fields() {
		dt, err := arrowTypeOf(f.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", f.Name, err)
		}
		fields = append(fields, arrow.Field{Name: f.Name, Type: dt, Nullable: true})
	}
	return arrow.NewSchema(fields, nil), nil
}

// arrowTypeOf is the canonical Arrow type of a stored column.
func arrowTypeOf(t ice.Type) (arrow.DataType, error) {
	if dt, ok := TypeFromIceberg(t); ok {
		return offline.ArrowType(dt)
	}
	return table.TypeToArrowType(t, false, false)
}

// dedupReader feeds the de-duplicated rows to iceberg-go as an array.RecordReader, a group
// of rows at a time, projected to the table's columns (columns the view lacks are null).
type dedupReader struct {
	ctx     context.Context
	buf     *dedupBuffer
	keyCols []int
	target  *arrow.Schema
	mem     memory.Allocator
	refs    atomic.Int64

	group     int
	pending   []arrow.RecordBatch
	cur       arrow.RecordBatch
	err       error
	rowsOut   int64
	conflicts conflicts
}

func (d *dedupReader) Retain()               { d.refs.Add(1) }
func (d *dedupReader) Schema() *arrow.Schema { return d.target }
func (d *dedupReader) Err() error            { return d.err }

func (d *dedupReader) Release() {
	if d.refs.Add(-1) == 0 {
		if d.cur != nil {
			d.cur.Release()
			d.cur = nil
		}
		releaseAll(d.pending)
		d.pending = nil
	}
}

func (d *dedupReader) RecordBatch() arrow.RecordBatch { return d.cur }

// Record is the deprecated name of RecordBatch.
func (d *dedupReader) Record() arrow.RecordBatch { return d.cur }

func (d *dedupReader) Next() bool {
	if d.cur != nil {
		d.cur.Release()
		d.cur = nil
	}
	if d.err != nil {
		return false
	}
	for len(d.pending) == 0 {
		if d.group >= d.buf.numGroups() {
			return false
		}
		if err := d.ctx.Err(); err != nil {
			d.err = err
			return false
		}
		recs, err := d.buf.group(d.ctx, d.group)
		d.group++
		if err != nil {
			d.err = err
			return false
		}
		collapsed, err := collapse(d.ctx, recs, d.keyCols, d.mem, &d.conflicts)
		if err != nil {
			d.err = err
			return false
		}
		if len(collapsed) > 0 {
			tsCol := collapsed[0].Schema().FieldIndices(offline.EventTS)[0]
			if d.pending, err = sortByTime(d.ctx, collapsed, tsCol, d.mem); err != nil {
				d.err = err
				return false
			}
		}
	}
	rec := d.pending[0]
	d.pending = d.pending[1:]
	d.cur = project(rec, d.target, d.mem)
	rec.Release()
	d.rowsOut += d.cur.NumRows()
	return true
}

// project arranges rec's columns as target's, adding null columns for those rec lacks.
func project(rec arrow.RecordBatch, target *arrow.Schema, mem memory.Allocator) arrow.RecordBatch {
	n := rec.NumRows()
	cols := make([]arrow.Array, target.NumFields())
	var nulls []arrow.Array
	for i, f := range target.Fields() {
		if idx := rec.Schema().FieldIndices(f.Name); len(idx) > 0 {
			cols[i] = rec.Column(idx[0])
			continue
		}
		a := array.MakeArrayOfNull(mem, f.Type, int(n))
		nulls = append(nulls, a)
		cols[i] = a
	}
	out := array.NewRecordBatch(target, cols, n)
	for _, a := range nulls {
		a.Release()
	}
	return out
}

// Scan implements offline.Reader.
func (s *Store) Scan(ctx context.Context, view string, req offline.ScanRequest) (offline.SnapshotStream, error) {
	name := s.tableName(view, req.Generation)
	tbl, err := s.load(ctx, view, req.Generation)
	if err != nil {
		return nil, err
	}
	var snapID int64
	if req.SnapshotID != 0 {
		if tbl.SnapshotByID(req.SnapshotID) == nil {
			return nil, fmt.Errorf("offline table %s: %w: %d", name, offline.ErrSnapshotNotFound, req.SnapshotID)
		}
		snapID = req.SnapshotID
	} else if cur := tbl.CurrentSnapshot(); cur != nil {
		snapID = cur.SnapshotID
	}
	cols := req.Columns
	if len(cols) == 0 {
		for _, f := range tbl.Schema().Fields() {
			cols = append(cols, f.Name)
		}
	}
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		f, ok := tbl.Schema().FindFieldByName(c)
		if !ok {
			return nil, fmt.Errorf("offline table %s: %w: %q", name, offline.ErrColumnNotFound, c)
		}
		dt, err := arrowTypeOf(f.Type)
		if err != nil {
			return nil, fmt.Errorf("offline table %s column %q: %w", name, c, err)
		}
		fields[i] = arrow.Field{Name: c, Type: dt, Nullable: true}
	}
	out := arrow.NewSchema(fields, nil)
	if snapID == 0 {
		return &scanStream{Stream: offline.NewSliceStream(out)}, nil
	}
	// A snapshot written before a column was added does not know it: leave it out of the
	// scan and let conformScan fill it with nulls.
	read := cols
	if sc := snapshotSchema(tbl, snapID); sc != nil {
		read = nil
		for _, c := range cols {
			if _, ok := sc.FindFieldByName(c); ok {
				read = append(read, c)
			}
		}
		if len(read) == 0 {
			read = []string{offline.EventTS}
		}
	}
	opts := []table.ScanOption{table.WithSnapshotID(snapID), table.WithSelectedFields(read...)}
	if !req.Range.Start.IsZero() || !req.Range.End.IsZero() {
		if err := req.Range.Validate(); err != nil {
			return nil, fmt.Errorf("scan %s: %w", name, err)
		}
		start, end := req.Range.Micros()
		opts = append(opts, table.WithRowFilter(intervalFilter(start, end)))
	}
	scan := tbl.Scan(opts...)
	_, seq, err := scan.ToArrowRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("scan %s snapshot %d: %w", name, snapID, err)
	}
	next, stop := iter.Pull2(seq)
	closeFn := func() error {
		stop()
		return scan.Close()
	}
	mem := s.opts.Allocator
	nextFn := func(ctx context.Context) (arrow.RecordBatch, error) {
		rec, err, ok := next()
		if !ok {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("scan %s snapshot %d: %w", name, snapID, err)
		}
		defer rec.Release()
		return conformScan(ctx, rec, out, mem)
	}
	return &scanStream{Stream: offline.NewFuncStream(out, nextFn, closeFn), id: snapID}, nil
}

// snapshotSchema is the schema a snapshot was written with, or nil if unknown.
func snapshotSchema(tbl *table.Table, id int64) *ice.Schema {
	snap := tbl.SnapshotByID(id)
	if snap == nil || snap.SchemaID == nil {
		return nil
	}
	return tbl.Schemas()[*snap.SchemaID]
}

type scanStream struct {
	offline.Stream
	id int64
}

func (s *scanStream) SnapshotID() int64 { return s.id }

// conformScan picks out's columns from a scanned batch by name and casts them to out's types
// (iceberg-go may hand back large strings or differently named list elements).
func conformScan(ctx context.Context, rec arrow.RecordBatch, out *arrow.Schema, mem memory.Allocator) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, 0, out.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, f := range out.Fields() {
		idx := rec.Schema().FieldIndices(f.Name)
		if len(idx) == 0 {
			cols = append(cols, array.MakeArrayOfNull(mem, f.Type, int(rec.NumRows())))
			continue
		}
		a := rec.Column(idx[0])
		if arrow.TypeEqual(a.DataType(), f.Type) {
			a.Retain()
			cols = append(cols, a)
			continue
		}
		c, err := offline.Convert(ctx, a, f.Type, mem)
		if err != nil {
			return nil, fmt.Errorf("convert column %q from %s to %s: %w", f.Name, a.DataType(), f.Type, err)
		}
		cols = append(cols, c)
	}
	return array.NewRecordBatch(out, cols, rec.NumRows()), nil
}

// Count implements offline.Reader by scanning the event_ts column.
func (s *Store) Count(ctx context.Context, view string, req offline.ScanRequest) (int64, error) {
	req.Columns = []string{offline.EventTS}
	st, err := s.Scan(ctx, view, req)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	var n int64
	for {
		rec, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		n += rec.NumRows()
		rec.Release()
	}
}

// DropTable implements offline.Dropper: the table leaves the catalog and, where the catalog
// can purge (the SQL catalog, a REST server that supports it), its files are deleted.
func (s *Store) DropTable(ctx context.Context, view string, generation int) error {
	ident := s.Identifier(view, generation)
	var err error
	if p, ok := s.cat.cat.(catalog.PurgeableTable); ok {
		err = p.PurgeTable(ctx, ident)
	} else {
		err = s.cat.cat.DropTable(ctx, ident)
	}
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("drop offline table %s: %w", s.tableName(view, generation), err)
	}
	return nil
}

var _ offline.Dropper = (*Store)(nil)

// Snapshots implements offline.Reader.
func (s *Store) Snapshots(ctx context.Context, view string, generation int) ([]offline.Snapshot, error) {
	tbl, err := s.load(ctx, view, generation)
	if err != nil {
		return nil, err
	}
	snaps := tbl.Metadata().Snapshots()
	out := make([]offline.Snapshot, 0, len(snaps))
	for _, sn := range snaps {
		o := offline.Snapshot{ID: sn.SnapshotID, Committed: time.UnixMilli(sn.TimestampMs).UTC(), Summary: map[string]string{}}
		if sn.ParentSnapshotID != nil {
			o.ParentID = *sn.ParentSnapshotID
		}
		if sn.Summary != nil {
			o.Operation = string(sn.Summary.Operation)
			for k, v := range sn.Summary.Properties {
				o.Summary[k] = v
			}
		}
		o.RunID = o.Summary[offline.SummaryRunID]
		if st, err := time.Parse(time.RFC3339Nano, o.Summary[offline.SummaryIntervalStart]); err == nil {
			o.Interval.Start = st
		}
		if en, err := time.Parse(time.RFC3339Nano, o.Summary[offline.SummaryIntervalEnd]); err == nil {
			o.Interval.End = en
		}
		out = append(out, o)
	}
	return out, nil
}

// ReadStaged streams the rows of table schema.table (a staging table another engine wrote
// into the shared catalog) in vs's canonical columns and types. Its files are read in
// parallel by iceberg-go's scan.
func (s *Store) ReadStaged(ctx context.Context, schema, table string, vs offline.ViewSchema) (offline.Stream, error) {
	st := &Store{cat: s.cat, ns: []string{schema}, opts: s.opts}
	canon := vs.Arrow()
	cols := make([]string, canon.NumFields())
	for i, f := range canon.Fields() {
		cols[i] = f.Name
	}
	scan, err := st.Scan(ctx, table, offline.ScanRequest{Columns: cols})
	if err != nil {
		return nil, err
	}
	mem := s.opts.Allocator
	return offline.NewFuncStream(canon, func(ctx context.Context) (arrow.RecordBatch, error) {
		rec, err := scan.Next(ctx)
		if err != nil {
			return nil, err
		}
		defer rec.Release()
		return conformScan(ctx, rec, canon, mem)
	}, scan.Close), nil
}

// ReadRange streams the rows of table schema.table (a table another engine wrote into the
// shared catalog) whose int64 column col is in [lo, hi), in out's columns and types; files
// whose partition or statistics exclude the range are not read.
func (s *Store) ReadRange(ctx context.Context, schema, name, col string, lo, hi int64, out *arrow.Schema) (offline.Stream, error) {
	tbl, err := s.cat.cat.LoadTable(ctx, table.Identifier{schema, name})
	name = schema + "." + name
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	cur := tbl.CurrentSnapshot()
	if cur == nil {
		return offline.NewSliceStream(out), nil
	}
	ref := ice.Reference(col)
	scan := tbl.Scan(table.WithSnapshotID(cur.SnapshotID),
		table.WithRowFilter(ice.NewAnd(ice.GreaterThanEqual(ref, lo), ice.LessThan(ref, hi))))
	_, seq, err := scan.ToArrowRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", name, err)
	}
	next, stop := iter.Pull2(seq)
	mem := s.opts.Allocator
	return offline.NewFuncStream(out, func(ctx context.Context) (arrow.RecordBatch, error) {
		rec, err, ok := next()
		if !ok {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", name, err)
		}
		defer rec.Release()
		return conformScan(ctx, rec, out, mem)
	}, func() error {
		stop()
		return scan.Close()
	}), nil
}

// TableRows is the number of rows in the current snapshot of schema.table.
func (s *Store) TableRows(ctx context.Context, schema, name string) (int64, error) {
	tbl, err := s.cat.cat.LoadTable(ctx, table.Identifier{schema, name})
	if err != nil {
		return 0, fmt.Errorf("load %s.%s: %w", schema, name, err)
	}
	cur := tbl.CurrentSnapshot()
	if cur == nil || cur.Summary == nil {
		return 0, nil
	}
	n, err := strconv.ParseInt(cur.Summary.Properties["total-records"], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s.%s: snapshot %d has no total-records: %w", schema, name, cur.SnapshotID, err)
	}
	return n, nil
}
