package iceberg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
)

// SourceOptions tune an Iceberg source. The zero value is valid.
type SourceOptions struct {
	// Allocator allocates the batches; nil means memory.DefaultAllocator.
	Allocator memory.Allocator
}

// Source reads a feature view's rows from an Iceberg table through a catalog. Each Read pins
// the table's current snapshot and reports it through offline.SnapshotStream. It is safe for
// concurrent use.
type Source struct {
	name   string
	table  string
	ident  table.Identifier
	cat    *Catalog
	fields offline.Fields
	mem    memory.Allocator
}

var _ offline.Source = (*Source)(nil)

// NewSource returns the source for a definition with an iceberg block, read through cat
// (which the caller keeps open while the source is used).
func NewSource(src *definitions.Source, cat *Catalog, opts SourceOptions) (*Source, error) {
	if src == nil || src.Iceberg == nil {
		return nil, fmt.Errorf("iceberg source: %w: no iceberg table", offline.ErrInvalidSource)
	}
	if src.TimestampField == "" {
		return nil, fmt.Errorf("iceberg source %q: %w: no timestamp_field", src.Name, offline.ErrInvalidSource)
	}
	if cat == nil {
		return nil, fmt.Errorf("iceberg source %q: %w: no catalog configured", src.Name, offline.ErrInvalidSource)
	}
	ident, err := ParseIdentifier(src.Iceberg.Table)
	if err != nil {
		return nil, fmt.Errorf("iceberg source %q: %w", src.Name, err)
	}
	if opts.Allocator == nil {
		opts.Allocator = memory.DefaultAllocator
	}
	return &Source{
		name: src.Name, table: src.Iceberg.Table, ident: ident, cat: cat,
		fields: offline.Fields{Timestamp: src.TimestampField, Created: src.CreatedTimestampField},
		mem:    opts.Allocator,
	}, nil
}

func (s *Source) String() string { return fmt.Sprintf("iceberg source %q (table %s)", s.name, s.table) }

// Read scans the table's current snapshot with the time range as the scan's row filter (so
// iceberg-go prunes partitions and files by their statistics) and only the needed columns.
// The returned stream is an offline.SnapshotStream.
func (s *Source) Read(ctx context.Context, vs offline.ViewSchema, r offline.Range) (offline.Stream, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	if err := vs.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	tbl, err := s.cat.cat.LoadTable(ctx, s.ident)
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return nil, fmt.Errorf("%s: %w", s, offline.ErrTableNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: load table: %w", s, err)
	}
	schema, err := table.SchemaToArrowSchema(tbl.Schema(), nil, false, false)
	if err != nil {
		return nil, fmt.Errorf("%s: table schema: %w", s, err)
	}
	m, err := offline.NewMapper(s.String(), schema, vs, s.fields, r, s.mem)
	if err != nil {
		return nil, err
	}
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return &scanStream{Stream: offline.NewSliceStream(m.Schema())}, nil
	}
	start, end := r.Micros()
	ref := ice.Reference(s.fields.Timestamp)
	filter := ice.NewAnd(ice.GreaterThanEqual(ref, ice.Timestamp(start)), ice.LessThan(ref, ice.Timestamp(end)))
	scan := tbl.Scan(
		table.WithSnapshotID(snap.SnapshotID),
		table.WithSelectedFields(m.SourceColumns()...),
		table.WithRowFilter(filter),
	)
	_, seq, err := scan.ToArrowRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: scan snapshot %d: %w", s, snap.SnapshotID, err)
	}
	next, stop := iter.Pull2(seq)
	nextFn := func(ctx context.Context) (arrow.RecordBatch, error) {
		rec, err, ok := next()
		if !ok {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("%s: scan snapshot %d: %w", s, snap.SnapshotID, err)
		}
		defer rec.Release()
		return m.Map(ctx, rec)
	}
	closeFn := func() error {
		stop()
		return scan.Close()
	}
	return &scanStream{Stream: offline.NewFuncStream(m.Schema(), nextFn, closeFn), id: snap.SnapshotID}, nil
}
