package parquet

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

// TestNestedColumnsBeforeWanted reads a file with a struct column (two Parquet leaves) before
// every column a view reads, as the files of Feast's `feast init` template have
// (driver_metadata: struct<vehicle_type, rating> before driver_config). Top-level field
// indices and leaf column indices then differ: the source used to pass field indices where
// leaf indices were wanted, reading the struct's leaves instead of the view's columns
// ("column not found"), and the timestamp statistics of the wrong leaf for row-group pruning.
func TestNestedColumnsBeforeWanted(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	var rows []sourcetest.Row
	for h := range 24 {
		rows = append(rows, sourcetest.Row{UserID: int64(h % 5), TS: sourcetest.Base.Add(time.Duration(h) * time.Hour), Created: sourcetest.Base, Spend: float64(h)})
	}
	flat := sourcetest.SourceBatch(mem, rows)
	defer flat.Release()

	// meta: struct<a: string, b: string>, first, so every column after it shifts by one leaf.
	metaType := arrow.StructOf(arrow.Field{Name: "a", Type: arrow.BinaryTypes.String, Nullable: true}, arrow.Field{Name: "b", Type: arrow.BinaryTypes.String, Nullable: true})
	sb := array.NewStructBuilder(mem, metaType)
	defer sb.Release()
	for range rows {
		sb.Append(true)
		sb.FieldBuilder(0).(*array.StringBuilder).Append("x")
		sb.FieldBuilder(1).(*array.StringBuilder).Append("y")
	}
	meta := sb.NewArray()
	defer meta.Release()
	fields := append([]arrow.Field{{Name: "meta", Type: metaType, Nullable: true}}, flat.Schema().Fields()...)
	cols := append([]arrow.Array{meta}, flat.Columns()...)
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, flat.NumRows())
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "nested.parquet")
	writeParquet(t, path, rec, 6) // 4 row groups of 6 hours

	for _, r := range []offline.Range{
		{Start: sourcetest.Base, End: sourcetest.Base.Add(24 * time.Hour)},
		{Start: sourcetest.Base.Add(7 * time.Hour), End: sourcetest.Base.Add(13 * time.Hour)},
	} {
		s := newSource(t, path, sourcetest.Fields(), Options{Allocator: mem, BatchSize: 5})
		out, err := s.Read(context.Background(), sourcetest.View(), r)
		require.NoError(t, err)
		tbl, err := offline.ReadAll(context.Background(), out)
		require.NoError(t, err)
		require.Equal(t, sourcetest.Expected(rows, r, true), sourcetest.RowStrings(t, tbl))
		tbl.Release()
	}
}
