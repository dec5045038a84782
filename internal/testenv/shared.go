package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RunDirEnv names the environment variable that makes the heavy servers (Trino, Kafka, S3)
// shared by a whole test run: `make unit` points it at a fresh directory, every test binary of
// the run reuses the servers recorded there, and the Makefile stops them at the end with
// `go run ./internal/testenv/cmd/testenv stop DIR`. Unset, each test binary starts its own.
const RunDirEnv = "QUIVER_TESTENV_DIR"

// sharedRecord is what a run directory holds for one shared server, in DIR/NAME/server.json.
type sharedRecord struct {
	// Pid is the server's process id, the leader of its own session and process group.
	Pid int `json:"pid"`
	// Started is the process's start time (procStarted): a process id the kernel has given to
	// another process since the server died is not the server's, and is not signalled.
	Started uint64 `json:"started,omitempty"`
	// StopGrace is how long the server gets between SIGTERM and SIGKILL.
	StopGrace time.Duration `json:"stop_grace"`
	// Info is how to reach it (addresses, credentials), as the server's helper defines it.
	Info json.RawMessage `json:"info"`
}

// sharedStart starts a detached server in dir and returns its process and connection info.
type sharedStart func(dir string) (*process, any, error)

// acquireShared returns the connection info of the run-wide server name in runDir. Under an
// exclusive lock on runDir/NAME.lock (so concurrent test binaries start it once), it reuses the
// recorded server when its process is alive and probe accepts the info; otherwise it stops any
// leftover, starts a new detached server in runDir/NAME with start, and records it.
func acquireShared(runDir, name string, probe func(info []byte) error, start sharedStart) ([]byte, error) {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("shared %s: %w", name, err)
	}
	lock, err := os.OpenFile(filepath.Join(runDir, name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("shared %s: %w", name, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("shared %s: lock %s: %w", name, lock.Name(), err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()

	dir := filepath.Join(runDir, name)
	recPath := filepath.Join(dir, "server.json")
	if b, err := os.ReadFile(recPath); err == nil {
		var rec sharedRecord
		if err := json.Unmarshal(b, &rec); err == nil && rec.alive() {
			if err := probe(rec.Info); err == nil {
				return rec.Info, nil
			}
		}
		rec.stop() // dead or not answering: replace it
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("shared %s: %w", name, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("shared %s: %w", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("shared %s: %w", name, err)
	}
	p, info, err := start(dir)
	if err != nil {
		return nil, fmt.Errorf("shared %s: %w", name, err)
	}
	raw, err := json.Marshal(info)
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("shared %s: %w", name, err)
	}
	started, _ := procStarted(p.Pid())
	b, err := json.Marshal(sharedRecord{Pid: p.Pid(), Started: started, StopGrace: p.grace, Info: raw})
	if err == nil {
		err = writeFileAtomic(recPath, b)
	}
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("shared %s: record: %w", name, err)
	}
	return raw, nil
}

// alive reports whether the recorded server's process still runs: its id exists, is no
// zombie, and (when recorded) started when the server did.
func (r sharedRecord) alive() bool {
	if !processAlive(r.Pid) {
		return false
	}
	started, ok := procStarted(r.Pid)
	return !ok || r.Started == 0 || started == r.Started
}

// stop stops the recorded server's process group, unless its process is gone: with pid_max
// at 32,768 and builds spawning thousands of processes, a dead server's id (and with it the
// process group id a new leader gets) is soon another process's, which a blind kill(-pid)
// would take down.
func (r sharedRecord) stop() {
	if r.Pid <= 0 || !r.alive() {
		return
	}
	stopGroup(r.Pid, nil, r.StopGrace)
}

// procStarted is process pid's start time in clock ticks since boot (/proc/PID/stat field
// 22); ok is false where it cannot be read.
func procStarted(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // field 3 (state) onwards
	if len(f) < 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(f[19], 10, 64)
	return n, err == nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// StopShared stops every server recorded in the run directory dir (SIGTERM to its process group,
// SIGKILL after a grace period) and removes dir. The Makefile calls it through
// `go run ./internal/testenv/cmd/testenv stop DIR` when a test run ends.
func StopShared(dir string) error {
	recs, err := filepath.Glob(filepath.Join(dir, "*", "server.json"))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, path := range recs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var rec sharedRecord
		if json.Unmarshal(b, &rec) != nil || rec.Pid <= 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec.stop()
		}()
	}
	wg.Wait()
	return os.RemoveAll(dir)
}

// perProcess holds the servers shared within one test binary when RunDirEnv is unset: the
// first caller's TB owns each, and its cleanup stops it and forgets it, so a later caller
// starts a fresh one.
var perProcess = struct {
	sync.Mutex
	servers map[string]any
}{servers: map[string]any{}}

// sharedInProcess returns the server name cached for this process, starting it with start(t)
// (which registers its stop on t) when there is none.
func sharedInProcess[T any](t TB, name string, start func(TB) T) T {
	t.Helper()
	perProcess.Lock()
	defer perProcess.Unlock()
	if s, ok := perProcess.servers[name]; ok {
		return s.(T)
	}
	s := start(t)
	perProcess.servers[name] = s
	t.Cleanup(func() {
		perProcess.Lock()
		delete(perProcess.servers, name)
		perProcess.Unlock()
	})
	return s
}

// sharedServer is the body of SharedKafka, SharedS3 and SharedTrinoServer: the server name
// shared by the test run (RunDirEnv; started detached with startDetached, its connection info
// recorded as JSON and probed before reuse) or, without a run directory, by this test binary
// (startInProcess). label names it in messages; where says how it is reached.
func sharedServer[T any, P interface {
	*T
	probe() error
}](t TB, name, label string, startInProcess func(TB) P, startDetached func(dir string) (P, *process, error), where func(P) string) P {
	t.Helper()
	runDir := os.Getenv(RunDirEnv)
	if runDir == "" {
		return sharedInProcess(t, name, startInProcess)
	}
	raw, err := acquireShared(runDir, name, func(info []byte) error {
		s := P(new(T))
		if err := json.Unmarshal(info, s); err != nil {
			return err
		}
		return s.probe()
	}, func(dir string) (*process, any, error) {
		s, proc, err := startDetached(dir)
		if err != nil {
			return nil, nil, err
		}
		return proc, s, nil
	})
	if err != nil {
		t.Fatalf("start %s: %v", label, err)
	}
	s := P(new(T))
	if err := json.Unmarshal(raw, s); err != nil {
		t.Fatalf("shared %s: %v", name, err)
	}
	t.Logf("%s shared by the test run at %s", label, where(s))
	return s
}
