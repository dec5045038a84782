package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// defaultStopGrace is how long a server gets to exit after SIGTERM before its process group is
// killed, unless its processOptions say otherwise.
const defaultStopGrace = 10 * time.Second

// process is a server the helpers started: the leader of its own process group, its standard
// output and error in a log file.
type process struct {
	name string
	log  string
	// logs are further log files the server writes itself, shown after log in error messages.
	logs  []string
	grace time.Duration
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited
	// exitErr is the exit status; read only after done is closed.
	exitErr error
	stopped sync.Once
}

// processOptions say how to start a server process.
type processOptions struct {
	// Dir is the working directory.
	Dir string
	// Log is the file that receives standard output and error (created or appended to).
	Log string
	// ServerLogs are log files the server writes itself; error messages show their tails too.
	ServerLogs []string
	// StopGrace is how long stop waits after SIGTERM before SIGKILL; zero means defaultStopGrace.
	StopGrace time.Duration
	// Env is added to the test process's environment.
	Env []string
	// Detached starts the process in its own session without a parent-death signal, so it
	// outlives the test binary (a server shared by a whole test run). Otherwise the process is
	// killed when the test binary dies.
	Detached bool
}

// startProcess starts bin with args as the leader of a new process group.
func startProcess(name, bin string, args []string, o processOptions) (*process, error) {
	logFile, err := os.OpenFile(o.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = o.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), o.Env...)
	if o.Detached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: run %s: %w", name, bin, err)
	}
	grace := o.StopGrace
	if grace == 0 {
		grace = defaultStopGrace
	}
	p := &process{name: name, log: o.Log, logs: o.ServerLogs, grace: grace, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id, which is also its process group id.
func (p *process) Pid() int { return p.cmd.Process.Pid }

// exited reports an error when the process has exited, naming its status and the log's tail.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited during start-up (%v):\n%s", p.name, p.exitErr, p.logTails())
	default:
		return nil
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after the grace period, and waits for
// the leader to exit. Stopping twice is harmless.
func (p *process) stop() {
	p.stopped.Do(func() {
		stopGroup(p.Pid(), p.done, p.grace)
	})
}

// kill sends SIGKILL to the process group at once and waits for the leader to exit.
func (p *process) kill() {
	p.stopped.Do(func() {
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	})
}

// stopGroup stops the process group pgid (SIGTERM, SIGKILL after grace). done, when not nil, is
// closed when the leader has been reaped; without it the leader is polled.
func stopGroup(pgid int, done <-chan struct{}, grace time.Duration) {
	if pgid <= 0 {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if done != nil {
			select {
			case <-done:
				_ = syscall.Kill(-pgid, syscall.SIGKILL) // children the leader left behind
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if !processAlive(pgid) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if done != nil {
		<-done
		return
	}
	// Not our child: wait until the leader is gone (or a zombie of its parent) after SIGKILL.
	for end := time.Now().Add(5 * time.Second); processAlive(pgid) && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return runtime.GOOS != "linux"
	}
	// The state follows the parenthesized command name: "pid (comm) S ...".
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// logTails returns the tails of the process's log files.
func (p *process) logTails() string {
	out := logTail(p.log, 40)
	for _, l := range p.logs {
		out += "\n" + logTail(l, 40)
	}
	return out
}

// logTail returns the last n lines of a log file, for error messages.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log at " + path + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "log " + path + " (last lines):\n" + strings.Join(lines, "\n")
}

// waitReady polls ready every interval until it returns nil, the process exits, or timeout.
func waitReady(p *process, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if p != nil {
			if err := p.exited(); err != nil {
				return err
			}
		}
		if last = ready(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("not ready within %s: %v", timeout, last)
			if p != nil {
				msg += "\n" + p.logTails()
			}
			return errors.New(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// portTaken reports whether a start-up error says a port was taken: the one failure worth a
// retry on other free ports (another process may bind a port between FreePort and the server).
func portTaken(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "address already in use") || strings.Contains(msg, "bindexception")
}

// moduleRoot is the directory of Quiver's go.mod, found from this source file, so the helpers
// can run the install scripts under scripts/ from any package's test.
func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("locate the module root: no caller information")
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("locate the module root: no go.mod above %s", filepath.Dir(file))
		}
		dir = parent
	}
}

// installed returns the install path of a component: the environment variable env when set
// (the Makefile sets it from the script), otherwise what scripts/<script> prints, which
// installs the component into the cache on first use and is instant after that.
func installed(env, script string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", env, p, err)
		}
		return p, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	path := filepath.Join(root, "scripts", script)
	out, err := exec.Command(path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("%s (set %s to skip it) failed: %v\n%s", path, env, err, ee.Stderr)
		}
		return "", fmt.Errorf("run %s (set %s to skip it): %w", path, env, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}
