//go:build !linux

package training

import (
	"os"
	"syscall"
)

// jobProcAttr is how a job runs without a supervisor: in its own process group. Without
// Linux's parent-death signal, a job outlives a killed quiver until the reaper finds its run
// abandoned.
func jobProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// supervisorProcAttr is how the runner starts the supervisor: leader of a new process group.
// It notices quiver's death by its parent pid changing.
func supervisorProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// supervisedProcAttr is how the supervisor starts the job: in the supervisor's group.
func supervisedProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

// becomeSubreaper does nothing: only Linux has child subreapers.
func becomeSubreaper() {}

// killDescendants kills the supervisor's whole process group, the supervisor included
// (without /proc, the group cannot be listed to leave the caller out). It is called when the
// job is to be killed or quiver died.
func killDescendants() {
	if self := os.Getpid(); syscall.Getpgrp() == self {
		_ = syscall.Kill(-self, syscall.SIGKILL)
	}
}

// killLeftovers does nothing here: killing the group would kill the supervisor before it
// reports the job's exit code; the runner kills what the job left in the group.
func killLeftovers() {}

// killGroup kills (SIGKILL) process group pgid; it reports 1 when the group existed.
func killGroup(pgid int) int {
	if syscall.Kill(-pgid, syscall.SIGKILL) == nil {
		return 1
	}
	return 0
}

// bootID is unknown here.
func bootID() string { return "" }

// procStat is what is known of a process without /proc: nothing.
type procStat struct {
	state      byte
	ppid, pgrp int
	start      string
}

func readStat(int) (procStat, bool) { return procStat{}, false }
