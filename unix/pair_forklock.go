//go:build darwin || aix

package unix

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// These systems cannot create a descriptor close-on-exec in one call, so the
// descriptors are made and marked under syscall.ForkLock, which os/exec holds
// while it forks: no child can inherit them in between.

func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return fds, err
	}
	if err := setFlags(fds[:]); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return fds, err
	}
	return fds, nil
}

func pipe(fds *[2]int) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		return err
	}
	if err := setFlags(p[:]); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return err
	}
	*fds = p
	return nil
}

func setFlags(fds []int) error {
	for _, fd := range fds {
		unix.CloseOnExec(fd)
		if err := unix.SetNonblock(fd, true); err != nil {
			return err
		}
	}
	return nil
}

func dupCloexec(fd int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Dup(fd)
	if err != nil {
		return -1, os.NewSyscallError("dup", err)
	}
	unix.CloseOnExec(fd)
	return fd, nil
}
