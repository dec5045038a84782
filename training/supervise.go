package training

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// SupervisorArg, as the first argument of the quiver binary, makes it a job supervisor:
// main calls Supervise(os.Args[2:]) before anything else when it sees it (the binary of a
// test that runs jobs with a supervisor does the same in TestMain).
const SupervisorArg = "__quiver-supervise-job"

// The supervisor sits between `quiver train` and the training job so that no process of a
// run outlives the quiver that started it, even one killed with kill -9:
//
//	quiver train ──▶ quiver __quiver-supervise-job (group leader P) ──▶ job (group P) ──▶ ...
//
// The runner starts it in a process group of its own, P, and asks the kernel to send it
// SIGTERM when quiver dies (PR_SET_PDEATHSIG); the job and whatever it spawns stay in group
// P. On Linux the supervisor is also a child subreaper (PR_SET_CHILD_SUBREAPER): a
// descendant whose parent died is re-parented to it, not to init, so even a process that
// left group P (setsid) is still its descendant. When quiver dies (the signal, or its
// parent pid changing, checked every parentPoll), when quiver asks it to (SIGTERM after the
// kill grace) or when the job exits, it kills every process of group P and every process
// re-parented to it, then exits with the job's exit code (128+N for a job killed by signal
// N). SIGINT, which the runner sends to the whole group, reaches the job directly; the
// supervisor ignores it. The job itself gets SIGKILL when the supervisor dies, so killing
// the supervisor with kill -9 still ends the job; its children are then left to the
// runner's group kill, or to the reaper, which kills the process group recorded with the
// run (TagProcessGroup).
//
// Other systems have neither signal: there the supervisor notices quiver's death by its
// parent pid changing and kills group P (itself included), and a descendant that left the
// group is not found.

// parentPoll is how often the supervisor checks that quiver is still its parent.
const parentPoll = 200 * time.Millisecond

// Supervise runs a training job under supervision and returns the exit code the supervisor
// exits with. args are PARENT_PID PATH ARGV0 [ARG]...: the pid of the quiver process that
// started it, the job's executable and its argument list.
func Supervise(args []string) int {
	if len(args) < 3 {
		fmt.Fprintf(os.Stderr, "quiver: %s wants PARENT_PID PATH ARGV0 [ARG]...; it is started by quiver train, not by hand\n", SupervisorArg)
		return 2
	}
	parent, err := strconv.Atoi(args[0])
	if err != nil || parent <= 1 {
		fmt.Fprintf(os.Stderr, "quiver: %s: parent pid %q is not a pid\n", SupervisorArg, args[0])
		return 2
	}
	// The job's parent-death signal is sent when the thread that started it exits: keep
	// this goroutine on its thread for the supervisor's life.
	runtime.LockOSThread()
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	becomeSubreaper()
	if os.Getppid() != parent {
		return 128 + int(syscall.SIGKILL) // quiver died before the job started: start nothing
	}
	proc, err := os.StartProcess(args[1], args[2:], &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   supervisedProcAttr(),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "quiver: start training job: %v\n", err)
		return 127
	}
	done := make(chan int, 1)
	go reapChildren(proc.Pid, done)
	gone := make(chan struct{})
	go func() {
		for os.Getppid() == parent {
			time.Sleep(parentPoll)
		}
		close(gone)
	}()
	for {
		select {
		case code := <-done:
			killLeftovers() // what the job left behind
			return code
		case s := <-signals:
			if s == syscall.SIGINT {
				continue // sent to the whole group: the job has it too, and decides
			}
			killDescendants()
			return awaitJob(done)
		case <-gone:
			killDescendants()
			return awaitJob(done)
		}
	}
}

// awaitJob is the job's exit code once it has been killed (137 if it cannot be waited for).
func awaitJob(done <-chan int) int {
	select {
	case code := <-done:
		return code
	case <-time.After(5 * time.Second):
		return 128 + int(syscall.SIGKILL)
	}
}

// reapChildren waits for every child of the supervisor — the job, and the orphans
// re-parented to it — and sends the job's exit code on done.
func reapChildren(job int, done chan<- int) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return // no child left
		}
		if pid == job {
			done <- exitStatus(ws)
		}
	}
}

// exitStatus is a wait status as a shell reports it: the exit code, or 128+N for signal N.
func exitStatus(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
