package testenv

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSharedAcrossProcesses runs two processes of this test binary at once, each asking for the
// S3 server shared through one run directory (RunDirEnv): they get the same server, which
// outlives them. Killed with SIGKILL, it is replaced by the next caller; StopShared stops it and
// removes the run directory.
func TestSharedAcrossProcesses(t *testing.T) {
	runDir := filepath.Join(t.TempDir(), "run")
	t.Cleanup(func() { _ = StopShared(runDir) })

	endpoints := make([]string, 2)
	var wg sync.WaitGroup
	for i := range endpoints {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), RunDirEnv+"="+runDir, helperEnv+"=shared-s3")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("helper %d: %v\n%s", i, err, out)
				return
			}
			for _, line := range strings.Split(string(out), "\n") {
				if e, ok := strings.CutPrefix(line, "endpoint="); ok {
					endpoints[i] = e
				}
			}
		})
	}
	wg.Wait()
	require.NotEmpty(t, endpoints[0])
	require.Equal(t, endpoints[0], endpoints[1], "both processes use one server")

	rec := readSharedRecord(t, runDir, "s3")
	require.True(t, processAlive(rec.Pid), "the server outlives the processes that used it")
	var s S3
	require.NoError(t, json.Unmarshal(rec.Info, &s))
	require.Equal(t, endpoints[0], s.Endpoint)
	require.NoError(t, s.probe())

	// A server that died (kill -9) is replaced by the next caller.
	require.NoError(t, syscall.Kill(-rec.Pid, syscall.SIGKILL))
	t.Setenv(RunDirEnv, runDir)
	again := SharedS3(t)
	require.NotEqual(t, s.Endpoint, again.Endpoint)
	require.NoError(t, again.probe())
	rec2 := readSharedRecord(t, runDir, "s3")
	require.NotEqual(t, rec.Pid, rec2.Pid)

	require.NoError(t, StopShared(runDir))
	require.False(t, processAlive(rec2.Pid), "StopShared stops the server")
	require.NoDirExists(t, runDir)
	require.Error(t, again.probe())
}

func readSharedRecord(t *testing.T, runDir, name string) sharedRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runDir, name, "server.json"))
	require.NoError(t, err)
	var rec sharedRecord
	require.NoError(t, json.Unmarshal(b, &rec))
	return rec
}

// TestStaleRecordSignalsNoStranger: a recorded server whose process id now belongs to another
// process (the id reused after the server died) is not signalled when the run stops or a
// binary replaces it; the recorded process itself is.
func TestStaleRecordSignalsNoStranger(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	started, ok := procStarted(cmd.Process.Pid)
	require.True(t, ok)

	stranger := sharedRecord{Pid: cmd.Process.Pid, Started: started + 1, StopGrace: time.Second}
	require.False(t, stranger.alive())
	stranger.stop()
	select {
	case <-done:
		t.Fatal("a process that only shares the recorded id was killed")
	case <-time.After(300 * time.Millisecond):
	}

	own := sharedRecord{Pid: cmd.Process.Pid, Started: started, StopGrace: time.Second}
	require.True(t, own.alive())
	own.stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the recorded process was not stopped")
	}
}
