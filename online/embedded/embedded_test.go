package embedded

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childWriter())
	}
	goleak.VerifyTestMain(m)
}

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, Options{})
	require.NoError(t, err)
	return s
}

// TestConformance: the embedded store is a file, with no server to lose (no unavailable case).
func TestConformance(t *testing.T) {
	onlinetest.RunStoreTests(t, func(t *testing.T) online.Store {
		return open(t, filepath.Join(t.TempDir(), "online.db"))
	}, nil)
}

func TestOpenURL(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s, err := Open(context.Background(), "sqlite://.quiver/online.db", Options{})
	require.NoError(t, err)
	require.Equal(t, ".quiver/online.db", s.Path())
	require.NoError(t, s.Close())
	require.FileExists(t, filepath.Join(dir, ".quiver", "online.db"))

	_, err = Open(context.Background(), "sqlite://", Options{})
	require.ErrorIs(t, err, online.ErrInvalidArgument)
}

func TestUseAfterClose(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "online.db"))
	require.NoError(t, s.Close())
	v := onlinetest.MustView(t, "p", onlinetest.FeatureView("v", []string{"user"}, 0, "int64"))
	_, err := s.Read(context.Background(), online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: []online.EntityKey{onlinetest.UserKey(t, v, 1)}}}})
	require.ErrorIs(t, err, online.ErrClosed)
}

const (
	childEnv   = "QUIVER_EMBEDDED_TEST_CHILD"
	childPath  = "QUIVER_EMBEDDED_TEST_PATH"
	childKeys  = 20
	childSteps = 40
)

var childView = onlinetest.FeatureView("v", []string{"user"}, 0, "int64")

// childWriter is the body of a writer process: writer w writes every key at event times
// step*10+w, in ascending order for even w and descending for odd w.
func childWriter() int {
	w, _ := strconv.Atoi(os.Getenv(childEnv))
	s, err := Open(context.Background(), os.Getenv(childPath), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	v, err := online.NewView("p", childView, onlinetest.Entities)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for step := range childSteps {
		ver := step
		if w%2 == 1 {
			ver = childSteps - 1 - step
		}
		ev := ver*10 + w
		rows := make([]online.Row, childKeys)
		for k := range rows {
			key, _ := v.Key(online.Int64(int64(k)))
			rows[k] = online.Row{Key: key, EventTS: base.Add(time.Duration(ev) * time.Second), Values: []online.Value{online.Int64(int64(ev))}}
		}
		if err := s.Write(context.Background(), v, rows); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// TestSeveralProcesses runs four writer processes on one file while this process reads it:
// nothing fails with "database is locked", and the newest row of every key wins.
func TestSeveralProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "online.db")
	reader := open(t, path)
	defer reader.Close()
	v := onlinetest.MustView(t, "p", childView)
	keys := make([]online.EntityKey, childKeys)
	for k := range keys {
		keys[k] = onlinetest.UserKey(t, v, int64(k))
	}
	const writers = 4
	var wg sync.WaitGroup
	outs := make([][]byte, writers)
	errs := make([]error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+strconv.Itoa(w), childPath+"="+path)
			outs[w], errs[w] = cmd.CombinedOutput()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	reads := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			_, err := reader.Read(context.Background(), online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: keys}}})
			require.NoError(t, err)
			reads++
			time.Sleep(5 * time.Millisecond)
		}
	}
	for w := range writers {
		require.NoError(t, errs[w], "writer %d: %s", w, outs[w])
	}
	res, err := reader.Read(context.Background(), online.ReadRequest{Views: []online.ViewRead{{View: v, Keys: keys}}})
	require.NoError(t, err)
	for k := range keys {
		require.Equal(t, online.Present, res.Columns[0].Statuses[k])
		require.Equal(t, int64((childSteps-1)*10+writers-1), res.Columns[0].Values[k].Int64(), "key %d", k)
	}
	t.Logf("%d reads during the writes", reads)
}
