//go:build !linux

package localcluster

import "syscall"

// childSysProcAttr puts a child in its own process group. Only Linux can
// tie a child's life to ours; elsewhere a crashed parent leaves it running.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
