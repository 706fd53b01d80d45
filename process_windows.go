package procpipe

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/windows"
)

// attachEnd makes an inheritable duplicate of f's handle, lists it in the
// handles cmd's child inherits, and returns the value of EnvConn that names
// it there, with a function that closes the duplicate, to be called once the
// child has started (or failed to). Only the duplicate is inheritable, and
// os/exec passes a child only the handles it lists, so no other child gets
// it.
func attachEnd(cmd *exec.Cmd, f *os.File) (string, func(), error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = new(syscall.SysProcAttr)
	}
	if cmd.SysProcAttr.NoInheritHandles {
		return "", nil, errors.New("procpipe: start: the command's SysProcAttr.NoInheritHandles keeps the child from inheriting its end")
	}
	// A file object belongs to one completion port at most: this
	// process's runtime took f's when f was made. f.Fd gives it up (its
	// documented effect on Windows), so that the child's runtime can take
	// it and the child gets deadlines and a Close that interrupts. f is
	// not used here any more: Start closes it.
	f.Fd()
	rc, err := f.SyscallConn()
	if err != nil {
		return "", nil, err
	}
	var (
		dup  windows.Handle
		derr error
	)
	err = rc.Control(func(h uintptr) {
		p := windows.CurrentProcess()
		if derr = windows.DuplicateHandle(p, windows.Handle(h), p, &dup, 0, true, windows.DUPLICATE_SAME_ACCESS); derr != nil {
			derr = os.NewSyscallError("DuplicateHandle", derr)
		}
	})
	if err != nil {
		return "", nil, closedError("start")
	}
	if derr != nil {
		return "", nil, derr
	}
	cmd.SysProcAttr.AdditionalInheritedHandles = append(cmd.SysProcAttr.AdditionalInheritedHandles, syscall.Handle(dup))
	return strconv.FormatUint(uint64(dup), 10), func() { windows.CloseHandle(dup) }, nil
}
