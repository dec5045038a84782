package iceberg

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
)

// TestWriteBoundsRowGroups is what keeps a write's memory flat in the number of rows it
// writes: iceberg-go buffers a whole Parquet row group per open day partition, so the
// table's row group size must be small and must be honoured. A 3-day write of 60,000 rows of
// 8 incompressible float features (~3.8 MB) into a table whose row groups are 256 KiB (pages
// 16 KiB: a page counts towards its row group once full) must give files of many row groups,
// none much larger than that — also for a table created with larger sizes (as older versions
// created them: 32 MiB row groups, 1 MiB pages), whose properties the write lowers in its
// commit.
func TestWriteBoundsRowGroups(t *testing.T) {
	const rowGroup, page = 256 << 10, 16 << 10
	fields := []definitions.Field{}
	for i := range 8 {
		fields = append(fields, definitions.Field{Name: fmt.Sprintf("f%d", i), Type: definitions.MustType("float64")})
	}
	user := definitions.Entity{Name: "user", JoinKeys: []definitions.Field{{Name: "user_id", Type: definitions.MustType("int64")}}}
	vs, err := offline.NewViewSchema(&definitions.FeatureView{Name: "wide", Entities: []string{"user"}, Source: "s", Features: fields},
		map[string]*definitions.Entity{"user": &user})
	require.NoError(t, err)
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	rng := rand.New(rand.NewPCG(5, 6))
	const rows, batch = 60_000, 5_000
	var recs []arrow.RecordBatch
	for start := 0; start < rows; start += batch {
		b := array.NewRecordBuilder(mem, vs.Arrow())
		for i := start; i < start+batch; i++ {
			ts := arrow.Timestamp(base.Add(time.Duration(rng.IntN(3*24*3600)) * time.Second).UnixMicro())
			b.Field(0).(*array.Int64Builder).Append(int64(i))
			b.Field(1).(*array.TimestampBuilder).Append(ts)
			b.Field(2).(*array.TimestampBuilder).Append(ts)
			for f := range fields {
				b.Field(3 + f).(*array.Float64Builder).Append(rng.Float64())
			}
		}
		recs = append(recs, b.NewRecordBatch())
		b.Release()
	}
	for _, tc := range []struct {
		name    string
		created int // the row group size the table was created with
	}{{"new table", 0}, {"table created with 32 MiB row groups and 1 MiB pages", 32 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cat := openCatalog(t)
			if tc.created > 0 {
				old, err := NewStore(ctx, cat, StoreOptions{RowGroupBytes: tc.created, PageBytes: 1 << 20})
				require.NoError(t, err)
				require.NoError(t, old.EnsureTable(ctx, vs))
			}
			// A small memory budget spills, so the writer gets the rows in several batches
			// per day, as a large write does.
			s, err := NewStore(ctx, cat, StoreOptions{RowGroupBytes: rowGroup, PageBytes: page, MemoryBudget: 1, SpillBuckets: 8, Allocator: mem})
			require.NoError(t, err)
			for _, r := range recs {
				r.Retain()
			}
			res, err := s.WriteInterval(ctx, vs, offline.Range{Start: base, End: base.Add(3 * day)}, offline.NewSliceStream(vs.Arrow(), recs...), "rg")
			require.NoError(t, err)
			require.Equal(t, int64(rows), res.RowsWritten)

			tbl, err := s.load(ctx, vs.View, vs.Generation)
			require.NoError(t, err)
			require.Equal(t, strconv.Itoa(rowGroup), tbl.Properties()[table.ParquetRowGroupSizeBytesKey])
			require.Equal(t, strconv.Itoa(page), tbl.Properties()[table.ParquetPageSizeBytesKey])
			tasks, err := tbl.Scan().PlanFiles(ctx)
			require.NoError(t, err)
			require.Len(t, tasks, 3, "one file per day")
			for _, task := range tasks {
				f, err := file.OpenParquetFile(strings.TrimPrefix(task.File.FilePath(), "file://"), false)
				require.NoError(t, err)
				md := f.MetaData()
				require.Greater(t, md.NumRowGroups(), 3, "%s: row groups", task.File.FilePath())
				for i := range md.NumRowGroups() {
					// A row group is closed before the write that would follow it once it
					// holds rowGroup bytes: it can exceed that by one write's rows.
					require.Less(t, md.RowGroup(i).TotalCompressedSize(), int64(2*rowGroup), "%s row group %d", task.File.FilePath(), i)
				}
				require.NoError(t, f.Close())
			}
		})
	}
	for _, r := range recs {
		r.Release()
	}
	mem.AssertSize(t, 0)
}
