//go:build unix

package procpipe

import (
	"os"
	"os/exec"
	"strconv"

	"golang.org/x/sys/unix"
)

// attachEnd adds f to the files cmd's child inherits and returns the value of
// EnvConn that names it there, with a function to call once the child has
// started (or failed to): nothing to release on Unix, where the child gets a
// copy of f itself.
func attachEnd(cmd *exec.Cmd, f *os.File) (string, func(), error) {
	// The child gets the descriptor in blocking mode, as programs expect of
	// an inherited descriptor (Python's Connection fails on a non-blocking
	// one). The mode belongs to the open file, which this process's copy
	// may share (a socket's; on Linux a pipe Conn's File is an open file of
	// its own, already blocking), so this is done only just before that
	// copy is closed.
	rc, err := f.SyscallConn()
	if err != nil {
		return "", nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), false) }); err != nil {
		return "", nil, err
	}
	if serr != nil {
		return "", nil, os.NewSyscallError("fcntl", serr)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	return strconv.Itoa(2 + len(cmd.ExtraFiles)), func() {}, nil
}
