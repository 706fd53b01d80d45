package windows

import (
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

// PeerPID returns the ID of the process that holds the other end of the
// pipe, as the system recorded it when the pipe was connected: the client's
// for a server end, the server's for a client end. After the other end was
// handed to a child, it still names the process that opened it; a peer that
// passes its end on must say so in its protocol.
func (c *Conn) PeerPID() (uint32, error) {
	var (
		pid  uint32
		perr error
	)
	err := c.rc.Control(func(h uintptr) {
		if c.server {
			if perr = windows.GetNamedPipeClientProcessId(windows.Handle(h), &pid); perr != nil {
				perr = os.NewSyscallError("GetNamedPipeClientProcessId", perr)
			}
			return
		}
		if perr = windows.GetNamedPipeServerProcessId(windows.Handle(h), &pid); perr != nil {
			perr = os.NewSyscallError("GetNamedPipeServerProcessId", perr)
		}
	})
	if err != nil {
		return 0, c.controlError("PeerPID", err)
	}
	return pid, perr
}

// DuplicateTo duplicates the handle h of this process into the process pid,
// with the same access, not inheritable, and returns the duplicate's value in
// that process, to be sent there (in a frame, say) and taken with
// [os.NewFile]. h stays open here. Until the other process takes the
// duplicate, it is this process's to clean up: if sending the value fails,
// close it with [CloseIn].
func DuplicateTo(pid uint32, h windows.Handle) (windows.Handle, error) {
	p, err := windows.OpenProcess(windows.PROCESS_DUP_HANDLE, false, pid)
	if err != nil {
		return 0, os.NewSyscallError("OpenProcess", err)
	}
	defer windows.CloseHandle(p)
	var dup windows.Handle
	err = windows.DuplicateHandle(windows.CurrentProcess(), h, p, &dup, 0, false, windows.DUPLICATE_SAME_ACCESS)
	if err != nil {
		return 0, os.NewSyscallError("DuplicateHandle", err)
	}
	return dup, nil
}

// DuplicateFileTo is [DuplicateTo] for the handle of f, which stays open
// here.
//
// A file opened for overlapped I/O belongs to at most one completion port,
// shared by all its handles in all processes, and [os.NewFile] put f on this
// process's. For the other process's runtime to take the duplicate onto its
// own port (for deadlines, and a Close that interrupts), give f up here first
// with f.Fd(), which on Windows takes f off this process's port; f then
// still works here, without deadlines. Otherwise the duplicate works there
// without deadlines. (Wine 8 cannot move a file between ports at all.)
func DuplicateFileTo(pid uint32, f *os.File) (windows.Handle, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		dup  windows.Handle
		derr error
	)
	if err := rc.Control(func(h uintptr) { dup, derr = DuplicateTo(pid, windows.Handle(h)) }); err != nil {
		return 0, &fs.PathError{Op: "DuplicateHandle", Path: f.Name(), Err: os.ErrClosed}
	}
	return dup, derr
}

// CloseIn closes the handle h of the process pid, a duplicate made by
// [DuplicateTo] that the other process will never take (because sending its
// value failed), so that it does not leak there.
func CloseIn(pid uint32, h windows.Handle) error {
	p, err := windows.OpenProcess(windows.PROCESS_DUP_HANDLE, false, pid)
	if err != nil {
		return os.NewSyscallError("OpenProcess", err)
	}
	defer windows.CloseHandle(p)
	// DUPLICATE_CLOSE_SOURCE closes the handle there; the copy it makes
	// here is closed at once. (Windows takes no target at all, but Wine 8
	// fails that with ERROR_INVALID_HANDLE.)
	var here windows.Handle
	err = windows.DuplicateHandle(p, h, windows.CurrentProcess(), &here, 0, false, windows.DUPLICATE_CLOSE_SOURCE|windows.DUPLICATE_SAME_ACCESS)
	if err != nil {
		return os.NewSyscallError("DuplicateHandle", err)
	}
	return windows.CloseHandle(here)
}
