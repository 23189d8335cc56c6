package localcluster

import "syscall"

// childSysProcAttr puts a child in its own process group and has the kernel
// kill it if we die without calling Stop (crash, SIGKILL, test timeout).
// Pdeathsig fires when the forking OS thread exits; the Go runtime retires
// threads only for goroutines that exit while locked to one, which we never do.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
