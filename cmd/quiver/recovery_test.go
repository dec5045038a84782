package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/internal/testenv"
)

// cliEnv makes the test binary act as the quiver binary (see TestMain), for tests that kill
// a real quiver process.
const cliEnv = "QUIVER_TEST_RUN_AS_CLI"

func TestMain(m *testing.M) {
	superviseIfAsked(os.Args) // quiver train's job supervisor is this binary
	if os.Getenv(cliEnv) == "1" {
		if v := os.Getenv(fsizeEnv); v != "" { // TestFullDiskFailsCleanly
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				panic(err)
			}
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
				panic(err)
			}
		}
		main()
		return
	}
	// Every goroutine the commands start (servers, committers, consumers, watchers) is owned
	// and stopped: none outlives the tests, but the waiters of the shared test servers.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/quiverfs/quiver/internal/testenv.(*Postgres).start.func1"),
		goleak.IgnoreAnyFunction("github.com/quiverfs/quiver/internal/testenv.(*Redis).Start.func1"),
		// The waiter of a server this binary started for the whole test run (QUIVER_TESTENV_DIR):
		// it outlives the binary's tests by design, until bin/testenv stops the server.
		goleak.IgnoreAnyFunction("github.com/quiverfs/quiver/internal/testenv.startProcess.func1"))
}

// lockedBuffer is a bytes.Buffer a child process writes to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// quiverProcess starts this test binary as `quiver args...` in its own process, with env
// added to a clean environment (no QUIVER_* of the developer's).
func quiverProcess(t testing.TB, env map[string]string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUIVER_") && !strings.HasPrefix(kv, "TMPDIR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, cliEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("quiver %v said:\n%s", args, out.String())
		}
	})
	return cmd, out
}

// getOnlineAll is get-online of every feature of user_stats for users 1..n, as JSON.
func getOnlineAll(t *testing.T, env map[string]string, dir string, n int) string {
	t.Helper()
	args := []string{"-C", dir, "-o", "json", "get-online", "--feature", "user_stats:*"}
	for u := 1; u <= n; u++ {
		args = append(args, "--entity", "user_id="+strconv.Itoa(u))
	}
	r := quiver(t, env, args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	return r.stdout
}

// TestOnlineOnlyRefillsEmptyRedis is seen item 1 end to end: the online store is switched to
// an empty Redis; materialize-incremental says every view is up to date and get-online finds
// nothing; materialize --online-only brings back exactly what the old store served.
func TestOnlineOnlyRefillsEmptyRedis(t *testing.T) {
	oldRedis, newRedis := testenv.StartRedis(t), testenv.StartRedis(t)
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	oldEnv := map[string]string{"QUIVER_ONLINE": "redis://" + oldRedis.Addr + "/0"}
	newEnv := map[string]string{"QUIVER_ONLINE": "redis://" + newRedis.Addr + "/0"}
	require.Equal(t, exitOK, quiver(t, oldEnv, "-C", dir, "apply").code)
	r := quiver(t, oldEnv, "-C", dir, "materialize-incremental")
	require.Equal(t, exitOK, r.code, r.stderr)
	before := getOnlineAll(t, oldEnv, dir, 200)
	require.Contains(t, before, "PRESENT")

	r = quiver(t, newEnv, "-C", dir, "materialize-incremental")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "up to date", "the seen bug: the watermark says there is nothing to do")
	empty := getOnlineAll(t, newEnv, dir, 200)
	require.NotContains(t, empty, "PRESENT")

	r = quiver(t, newEnv, "-C", dir, "-o", "json", "materialize", "--online-only")
	require.Equal(t, exitOK, r.code, r.stderr)
	var out struct {
		Views []struct {
			View       string `json:"view"`
			RowsRead   int64  `json:"rows_read"`
			OnlineRows int64  `json:"online_rows"`
		} `json:"views"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.Len(t, out.Views, 1)
	require.EqualValues(t, 200, out.Views[0].OnlineRows)
	require.Equal(t, before, getOnlineAll(t, newEnv, dir, 200), "every entity's value, status and time as the old store served them")

	// Nothing else moved: the incremental run is still up to date, one audit entry was made.
	r = quiver(t, newEnv, "-C", dir, "materialize", "--online-only", "--start", "2026-01-01")
	require.Equal(t, exitUsage, r.code)
}

// TestCorrectionsFromTheCLI: --reset-watermark and online delete, with their errors.
func TestCorrectionsFromTheCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	r := quiver(t, nil, "-C", dir, "materialize", "--reset-watermark", "user_stats", "--to", "2026-01-01")
	require.Equal(t, exitInvalid, r.code)
	require.Contains(t, r.stderr, "no watermark yet")
	r = quiver(t, nil, "-C", dir, "materialize", "--start", "2020-01-01", "--end", "2100-01-01")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, getOnlineAll(t, nil, dir, 1), "PRESENT")

	r = quiver(t, nil, "-C", dir, "materialize", "--reset-watermark", "user_stats")
	require.Equal(t, exitUsage, r.code)
	r = quiver(t, nil, "-C", dir, "materialize", "--reset-watermark", "user_stats", "--to", "2101-01-01")
	require.Equal(t, exitInvalid, r.code)
	require.Contains(t, r.stderr, "must move the watermark back")
	to := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	r = quiver(t, nil, "-C", dir, "-o", "json", "materialize", "--reset-watermark", "user_stats", "--to", to.Format(time.RFC3339))
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, `"from": "2100-01-01T00:00:00Z"`)
	r = quiver(t, nil, "-C", dir, "materialize-incremental", "--dry-run")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, to.Format(time.RFC3339), "incremental runs start at the reset watermark")

	r = quiver(t, nil, "-C", dir, "online", "delete", "user_stats", "--entity", "user_id=1", "--entity", "user_id=424242")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Removed 1 of 2 entities")
	require.NotContains(t, getOnlineAll(t, nil, dir, 1), "PRESENT")
	r = quiver(t, nil, "-C", dir, "online", "delete", "user_stats", "--entity", "merchant=1")
	require.Equal(t, exitInvalid, r.code)
	require.Contains(t, r.stderr, "user_id")
	r = quiver(t, nil, "-C", dir, "online", "delete", "user_stat", "--entity", "user_id=1")
	require.Equal(t, exitInvalid, r.code)
	r = quiver(t, nil, "-C", dir, "online", "delete", "user_stats")
	require.Equal(t, exitUsage, r.code)

	// --replace-online brings user 1 back from the offline table.
	r = quiver(t, nil, "-C", dir, "-o", "json", "materialize", "--start", "2020-01-01", "--end", "2100-01-01", "--replace-online")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, getOnlineAll(t, nil, dir, 1), "PRESENT")

	// Each correction is in the audit trail, newest first.
	r = quiver(t, map[string]string{"QUIVER_USER": "ann"}, "-C", dir, "-o", "json", "audit")
	require.Equal(t, exitOK, r.code, r.stderr)
	var audit struct {
		Events []struct{ Action, Target string } `json:"events"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &audit))
	var actions []string
	for _, e := range audit.Events {
		require.Equal(t, "user_stats", e.Target)
		actions = append(actions, e.Action)
	}
	require.Equal(t, []string{"replace_online", "online_delete", "reset_watermark"}, actions)
	r = quiver(t, nil, "-C", dir, "audit", "--action", "online_delete")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "user_id=424242")
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || !bytes.HasPrefix(bytes.TrimSpace(b[i+1:]), []byte("Z"))
}

func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKilledTrainIsReaped is seen item 3 for training: kill -9 of a real quiver train whose
// trainer has a child of its own. The trainer dies with quiver (parent-death signal); within
// one lease runs list shows the run FAILED (abandoned) and kills what is left of the job; the
// next run removes the dead run's temp folder and succeeds.
func TestKilledTrainIsReaped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	tmp := t.TempDir()
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	script := filepath.Join(dir, "train.sh")
	require.NoError(t, os.WriteFile(script, []byte(`#!/bin/sh
if [ -f "`+dir+`/fast" ]; then
  echo fake-onnx > "$QUIVER_OUTPUT_DIR/model.onnx"
  exit 0
fi
sleep 300 &
echo $! > "`+dir+`/child.pid"
echo $$ > "`+dir+`/trainer.pid"
wait
`), 0o755))
	jobs := filepath.Join(dir, "features", "churn.yaml")
	b, err := os.ReadFile(jobs)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(jobs, []byte(strings.Replace(string(b), `command: ["shop-trainer"]`, `command: ["./train.sh"]`, 1)), 0o644))
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	r := quiver(t, nil, "-C", dir, "materialize-incremental")
	require.Equal(t, exitOK, r.code, r.stderr)

	const lease = time.Second
	env := map[string]string{"QUIVER_RUN_LEASE": lease.String(), "TMPDIR": tmp}
	cmd, _ := quiverProcess(t, env, "-C", dir, "train", "churn_train")
	pidOf := func(name string) int {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	waitFor(t, "the trainer to start", time.Minute, func() bool { return pidOf("trainer.pid") > 0 && pidOf("child.pid") > 0 })
	trainer, child := pidOf("trainer.pid"), pidOf("child.pid")
	workDirs, _ := filepath.Glob(filepath.Join(tmp, "quiver-run-*"))
	require.Len(t, workDirs, 1)

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	killedAt := time.Now()
	waitFor(t, "the trainer to die with quiver", 10*time.Second, func() bool { return !alive(trainer) })

	// Within one lease (plus a beat of margin), runs list reaps the run.
	time.Sleep(time.Until(killedAt.Add(lease + lease/4)))
	r = quiver(t, env, "-C", dir, "runs", "list")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "FAILED (abandoned)")
	require.Contains(t, r.stderr, "marked FAILED (abandoned)")
	waitFor(t, "the trainer's own child to be killed", 5*time.Second, func() bool { return !alive(child) })
	_, err = os.Stat(workDirs[0])
	require.True(t, os.IsNotExist(err), "the dead run's temp folder is removed")

	// A re-run succeeds.
	writeFile(t, filepath.Join(dir, "fast"), "")
	r = quiver(t, env, "-C", dir, "train", "churn_train")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, env, "-C", dir, "-o", "json", "runs", "list")
	require.Equal(t, exitOK, r.code, r.stderr)
	var runs []struct{ Status, Error string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs))
	require.Len(t, runs, 2)
	require.Equal(t, "FINISHED", runs[0].Status)
	require.Equal(t, "FAILED", runs[1].Status)
	require.Equal(t, "abandoned", runs[1].Error)
	left, _ := filepath.Glob(filepath.Join(tmp, "quiver-run-*"))
	require.Empty(t, left)
}

// TestKilledMaterializeIsReaped is seen item 3 for materialization: a quiver materialize
// killed while it reads its source (a FIFO nobody writes: the run blocks in it) stays
// RUNNING no longer than one lease; then runs list shows it FAILED (abandoned), and a re-run
// of the interval succeeds.
func TestKilledMaterializeIsReaped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	data := filepath.Join(dir, "data", "user_activity.parquet")
	require.NoError(t, os.Rename(data, data+".real"))
	require.NoError(t, syscall.Mkfifo(data, 0o644))

	const lease = 2 * time.Second
	env := map[string]string{"QUIVER_RUN_LEASE": lease.String()}
	start, end := time.Now().UTC().Add(-40*24*time.Hour).Format(time.RFC3339), time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	cmd, _ := quiverProcess(t, env, "-C", dir, "materialize", "--start", start, "--end", end)
	running := func() bool {
		r := quiver(t, map[string]string{"QUIVER_RUN_LEASE": "1h"}, "-C", dir, "runs", "list", "--kind", "materialization")
		return strings.Contains(r.stdout, "RUNNING")
	}
	waitFor(t, "the run to start", time.Minute, running)
	// It keeps beating: still RUNNING after more than a lease.
	time.Sleep(lease + lease/2)
	r := quiver(t, env, "-C", dir, "runs", "list", "--kind", "materialization")
	require.Contains(t, r.stdout, "RUNNING", "a live run is not reaped: %s", r.stderr)

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	killedAt := time.Now()
	time.Sleep(time.Until(killedAt.Add(lease + lease/4)))
	r = quiver(t, env, "-C", dir, "runs", "list", "--kind", "materialization")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "FAILED (abandoned)", r.stdout)
	require.NotContains(t, r.stdout, "RUNNING")

	require.NoError(t, os.Remove(data))
	require.NoError(t, os.Rename(data+".real", data))
	r = quiver(t, env, "-C", dir, "materialize", "--start", start, "--end", end)
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, env, "-C", dir, "-o", "json", "runs", "list", "--kind", "materialization")
	var runs struct {
		Runs []struct{ Status, Error string } `json:"runs"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs))
	require.Len(t, runs.Runs, 2)
	require.Equal(t, "SUCCEEDED", runs.Runs[0].Status)
	require.Equal(t, "FAILED", runs.Runs[1].Status)
	require.True(t, strings.HasPrefix(runs.Runs[1].Error, "abandoned"), runs.Runs[1].Error)
}
