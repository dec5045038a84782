package training

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER (linux/prctl.h).
const prSetChildSubreaper = 36

// jobProcAttr is how a job runs without a supervisor: in its own process group (so Ctrl-C
// reaches it through us, once, and the group can be signalled), killed by the kernel when
// the thread that started it — kept locked to its goroutine until the job is waited for —
// dies.
func jobProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// supervisorProcAttr is how the runner starts the supervisor: leader of a new process group,
// told of quiver's death by SIGTERM, which it handles by killing the group.
func supervisorProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// supervisedProcAttr is how the supervisor starts the job: in the supervisor's group, killed
// when the supervisor dies (even by kill -9).
func supervisedProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// becomeSubreaper makes the orphaned descendants of this process its children instead of
// init's.
func becomeSubreaper() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
}

// killDescendants kills (SIGKILL) every other process of this process's group, when it
// leads one, and every process re-parented to it, round after round (a killed process's
// children are re-parented to it in turn), until none is left or 10 seconds have passed.
func killDescendants() {
	self := os.Getpid()
	group := 0
	if syscall.Getpgrp() == self {
		group = self
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := processesOf(group, self)
		if len(pids) == 0 || time.Now().After(deadline) {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killLeftovers kills what a job that exited left behind: killDescendants.
func killLeftovers() { killDescendants() }

// processesOf lists the live (not zombie) processes, other than the caller, that are in
// process group group (0: none) or whose parent is parent (0: none).
func processesOf(group, parent int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		st, ok := readStat(pid)
		if !ok || st.state == 'Z' {
			continue
		}
		if (group != 0 && st.pgrp == group) || (parent != 0 && st.ppid == parent) {
			out = append(out, pid)
		}
	}
	return out
}

// killGroup kills (SIGKILL) every process of process group pgid, round after round until
// none is left (at most a second), and returns how many it signalled.
func killGroup(pgid int) int {
	n := 0
	seen := map[int]bool{}
	deadline := time.Now().Add(time.Second)
	for {
		pids := processesOf(pgid, 0)
		if len(pids) == 0 || time.Now().After(deadline) {
			return n
		}
		for _, pid := range pids {
			if syscall.Kill(pid, syscall.SIGKILL) == nil && !seen[pid] {
				seen[pid] = true
				n++
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bootID identifies this boot of this host ("" where unknown): a process group recorded
// before a reboot is not this boot's.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procStat is what the runner reads of a process from /proc/PID/stat.
type procStat struct {
	state      byte
	ppid, pgrp int
	start      string // start time in clock ticks since boot (field 22)
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// The command name (field 2) is in parentheses and may hold spaces: count after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgrp, _ := strconv.Atoi(f[2])
	return procStat{state: f[0][0], ppid: ppid, pgrp: pgrp, start: f[19]}, true
}
