package training

import "syscall"

// jobProcAttr puts the job in its own process group and has the kernel kill it when the
// quiver process that started it dies, even by kill -9 (PR_SET_PDEATHSIG).
func jobProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
