package iceberg

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

const (
	childWriteEnv = "QUIVER_ICEBERG_CHILD_WRITE"
	killBatches   = 40
	killBatchRows = 500
)

var killRange = offline.Range{Start: base, End: base.Add(3 * day)}

// killRows builds batch i of a write of the given version: killBatchRows rows spread over
// the three days of killRange, spend = version.
func killRows(i int, version float64) []sourcetest.Row {
	rows := make([]sourcetest.Row, killBatchRows)
	for j := range rows {
		n := i*killBatchRows + j
		ts := base.Add(time.Duration(n) * (3 * day / (killBatches * killBatchRows)))
		rows[j] = sourcetest.Row{UserID: int64(n % 1000), TS: ts, Created: ts, Spend: version}
	}
	return rows
}

// killStream streams a version's batches, pausing between them so a kill lands mid-write.
func killStream(mem memory.Allocator, version float64, pause time.Duration, started func()) offline.Stream {
	i := 0
	return offline.NewFuncStream(sourcetest.View().Arrow(), func(ctx context.Context) (arrow.RecordBatch, error) {
		if i == killBatches {
			return nil, io.EOF
		}
		if i == 1 && started != nil {
			started()
		}
		time.Sleep(pause)
		src := sourcetest.SourceBatch(mem, killRows(i, version))
		defer src.Release()
		i++
		m, err := offline.NewMapper("kill", src.Schema(), sourcetest.View(), sourcetest.Fields(), killRange, mem)
		if err != nil {
			return nil, err
		}
		return m.Map(ctx, src)
	}, nil)
}

func killConfig(dir string) CatalogConfig {
	return CatalogConfig{URI: "sqlite://" + filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")}
}

// childWrite runs in a child process: it writes version 2 of killRange slowly, announcing
// on stdout when it has started, until it is killed.
func childWrite(dir string) int {
	ctx := context.Background()
	cat, err := OpenCatalog(ctx, killConfig(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := NewStore(ctx, cat, StoreOptions{MemoryBudget: 64 << 10, SpillBuckets: 4, SpillDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, err = s.WriteInterval(ctx, sourcetest.View(), killRange, killStream(memory.DefaultAllocator, 2, 10*time.Millisecond, func() {
		fmt.Println("writing")
	}), "child")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("committed")
	return 0
}

// TestKilledWriteIsInvisible kills a writing child process at several points and checks that
// the table then holds exactly the old rows or exactly the new ones, never a mix, and that
// re-running the write gives the new rows once.
func TestKilledWriteIsInvisible(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	ctx := context.Background()
	for _, delay := range []time.Duration{50 * time.Millisecond, 400 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			dir := t.TempDir()
			cat, err := OpenCatalog(ctx, killConfig(dir))
			require.NoError(t, err)
			defer cat.Close()
			s, err := NewStore(ctx, cat, StoreOptions{})
			require.NoError(t, err)
			_, err = s.WriteInterval(ctx, sourcetest.View(), killRange, killStream(memory.DefaultAllocator, 1, 0, nil), "v1")
			require.NoError(t, err)

			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childWriteEnv+"="+dir)
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			cmd.Stderr = os.Stderr
			require.NoError(t, cmd.Start())
			sc := bufio.NewScanner(out)
			require.True(t, sc.Scan(), "child did not start writing")
			require.Equal(t, "writing", sc.Text())
			time.Sleep(delay)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()

			// All old or all new.
			versions := spendCounts(t, s)
			total := int64(killBatches * killBatchRows)
			require.True(t, versions[1] == total && len(versions) == 1 || versions[2] == total && len(versions) == 1,
				"after kill at %s: rows per version %v", delay, versions)

			// Re-running lands the new version exactly once.
			_, err = s.WriteInterval(ctx, sourcetest.View(), killRange, killStream(memory.DefaultAllocator, 2, 0, nil), "rerun")
			require.NoError(t, err)
			require.Equal(t, map[float64]int64{2: total}, spendCounts(t, s))
		})
	}
}

// spendCounts counts the view's rows per spend value.
func spendCounts(t *testing.T, s *Store) map[float64]int64 {
	t.Helper()
	ctx := context.Background()
	st, err := s.Scan(ctx, "user_stats", offline.ScanRequest{Columns: []string{"spend"}})
	require.NoError(t, err)
	tbl, err := offline.ReadAll(ctx, st)
	require.NoError(t, err)
	defer tbl.Release()
	counts := map[float64]int64{}
	for _, r := range sourcetest.RowStrings(t, tbl) {
		var v float64
		_, err := fmt.Sscan(r, &v)
		require.NoError(t, err)
		counts[v]++
	}
	return counts
}
