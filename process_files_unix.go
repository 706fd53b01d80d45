//go:build unix

package procpipe

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"golang.org/x/sys/unix"
)

// attachFile adds f to the files cmd's child inherits and returns the
// descriptor number it has there.
func attachFile(cmd *exec.Cmd, f *os.File) (string, error) {
	cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	return strconv.Itoa(2 + len(cmd.ExtraFiles)), nil
}

// keepFromChildren marks the inherited descriptor named by v close-on-exec,
// if v names one, so that it reaches none of this process's children
// whether or not this process takes it.
func keepFromChildren(v string) {
	if fd, err := strconv.Atoi(v); err == nil && fd > 2 {
		unix.CloseOnExec(fd)
	}
}

// inheritFile wraps the inherited descriptor named by v, after marking it
// close-on-exec: it came without the flag, and this process's own children
// must not inherit it by accident.
func inheritFile(name, v string) (*os.File, error) {
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("not a descriptor number above 2")
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), name), nil
}
