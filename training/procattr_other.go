//go:build !linux

package training

import "syscall"

// jobProcAttr puts the job in its own process group. Without Linux's parent-death signal, a
// job outlives a killed quiver until the reaper finds its run abandoned.
func jobProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
