package windows

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/windows"
)

// Kind says which ways a [Conn] carries data.
type Kind int

const (
	Duplex    Kind = iota // reads and writes
	ReadOnly              // the receiving end of a one-way pipe
	WriteOnly             // the sending end of a one-way pipe
)

// A Conn is one end of a named pipe, opened for overlapped I/O and held in an
// [*os.File] on the runtime's I/O completion port.
//
// Read and Write may be called concurrently with each other and with Close,
// which unblocks them; the caller serialises Reads among themselves, and
// Writes among themselves, as with an [*os.File].
type Conn struct {
	f      *os.File
	rc     syscall.RawConn
	kind   Kind
	server bool // the server end of the pipe instance

	// For a file the runtime cannot give deadlines (see NewConn),
	// WaitReady keeps the read deadline itself.
	dmu         sync.Mutex
	noDeadlines bool
	rdeadline   time.Time
}

// Conn is what the root package needs of a transport.
var _ interface {
	io.ReadWriteCloser
	Writev([][]byte) (int64, error)
	Ready() (bool, error)
	WaitReady() error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	File() *os.File
} = (*Conn)(nil)

// wrap returns a Conn on f, whose handle is an overlapped pipe handle of the
// given end and kind. It closes f on error.
func wrap(f *os.File, kind Kind, server bool) (*Conn, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Conn{f: f, rc: rc, kind: kind, server: server}, nil
}

// NewConn returns a Conn for f, which must be an end of a pipe (named or
// anonymous); the Conn takes f over (f must not be used afterwards, and is
// closed if NewConn fails). It works out the [Kind] from the handle, and
// makes the handle non-inheritable, so that a handle this process inherited
// is not passed on to its own children.
//
// Deadlines, and a Close that unblocks a blocked Read or Write, need a handle
// opened for overlapped I/O (as [Pair] makes them) and made into an
// [*os.File] with [os.NewFile], which puts it on the runtime's completion
// port; a file still on another process's port (see [DuplicateFileTo]) cannot
// join this one. On any other handle Read and Write work, but take no
// deadline, and on a synchronous handle block the calling thread until they
// are done; WaitReady still honours the read deadline.
func NewConn(f *os.File) (*Conn, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	var (
		info pipeLocalInformation
		cerr error
	)
	err = rc.Control(func(h uintptr) {
		if info, cerr = pipeInfo(windows.Handle(h)); cerr != nil {
			cerr = fmt.Errorf("procpipe: handle %#x is not a pipe: %w", h, os.NewSyscallError("NtQueryInformationFile", cerr))
			return
		}
		if err := windows.SetHandleInformation(windows.Handle(h), windows.HANDLE_FLAG_INHERIT, 0); err != nil {
			cerr = os.NewSyscallError("SetHandleInformation", err)
		}
	})
	if err != nil {
		err = &fs.PathError{Op: "NtQueryInformationFile", Path: f.Name(), Err: os.ErrClosed}
	} else {
		err = cerr
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	server := info.NamedPipeEnd == windows.FILE_PIPE_SERVER_END
	kind := info.kind()
	return wrap(f, kind, server)
}

// KindOf reports which ways the pipe h carries data, or why it is not a
// pipe. It leaves h as it is, so a caller can check a handle it does not own
// before it hands one to NewConn, which takes ownership even when it fails.
func KindOf(h windows.Handle) (Kind, error) {
	info, err := pipeInfo(h)
	if err != nil {
		return 0, fmt.Errorf("procpipe: handle %#x is not a pipe: %w", h, os.NewSyscallError("NtQueryInformationFile", err))
	}
	return info.kind(), nil
}

// kind reports which ways the pipe carries data, seen from this end.
func (info *pipeLocalInformation) kind() Kind {
	server := info.NamedPipeEnd == windows.FILE_PIPE_SERVER_END
	switch info.NamedPipeConfiguration {
	case windows.FILE_PIPE_INBOUND: // data flows from client to server
		if server {
			return ReadOnly
		}
		return WriteOnly
	case windows.FILE_PIPE_OUTBOUND:
		if server {
			return WriteOnly
		}
		return ReadOnly
	}
	return Duplex
}

// Kind reports which ways the Conn carries data.
func (c *Conn) Kind() Kind { return c.kind }

// File returns the Conn's file, for handing to a child process. Reading or
// writing it directly corrupts the stream.
func (c *Conn) File() *os.File { return c.f }

// Name returns the name of the Conn's file: for an end made by [Pair] the
// name of its pipe, \\.\pipe\procpipe-<pid>-<random>.
func (c *Conn) Name() string { return c.f.Name() }

// isGone reports whether errno says the other end of the pipe is closed.
func isGone(errno syscall.Errno) bool {
	switch errno {
	case windows.ERROR_BROKEN_PIPE, windows.ERROR_NO_DATA, windows.ERROR_PIPE_NOT_CONNECTED:
		return true
	}
	return false
}

// fileError turns an error of c.f into the one Conn promises: the errors of
// the runtime (closed, deadline) as they are, a Windows error in an
// [*os.SyscallError] naming the call.
func fileError(call string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		var errno syscall.Errno
		if errors.As(pe.Err, &errno) {
			return os.NewSyscallError(call, errno)
		}
	}
	return err
}

// controlError is the error of a failed c.rc.Control, which fails only once
// c.f is closed, with an internal error that does not match os.ErrClosed.
func (c *Conn) controlError(op string, err error) error {
	return &fs.PathError{Op: op, Path: c.f.Name(), Err: os.ErrClosed}
}

// Read reads up to len(p) bytes. It returns io.EOF when the peer has closed
// its end or is gone.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.f.Read(p)
	if err == nil || err == io.EOF {
		return n, err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && isGone(errno) {
		return n, io.EOF
	}
	return n, fileError("ReadFile", err)
}

// Write writes all of p; see [Conn.Writev].
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	return n, fileError("WriteFile", err)
}

// joinLimit is the largest total size Writev copies into one buffer to make
// one WriteFile of several buffers.
const joinLimit = 64 << 10

// Writev writes the concatenation of bufs, in order, waiting for room as
// needed. Small buffers are joined to make one call. It returns the number
// of bytes written, which is less than the total only with an error. A write
// to a peer that is gone fails with ERROR_NO_DATA or ERROR_BROKEN_PIPE in an
// [*os.SyscallError].
func (c *Conn) Writev(bufs [][]byte) (int64, error) {
	var size int
	nonEmpty := 0
	for _, b := range bufs {
		size += len(b)
		if len(b) > 0 {
			nonEmpty++
		}
	}
	if nonEmpty > 1 && size <= joinLimit {
		joined := make([]byte, 0, size)
		for _, b := range bufs {
			joined = append(joined, b...)
		}
		bufs = [][]byte{joined}
	}
	var total int64
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		n, err := c.Write(b)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Ready reports, without blocking, whether a Read would return at once: data
// is waiting, or the peer has closed its end.
func (c *Conn) Ready() (bool, error) {
	var (
		avail uint32
		perr  error
	)
	err := c.rc.Control(func(h uintptr) { avail, perr = peekAvailable(windows.Handle(h)) })
	if err != nil {
		return false, c.controlError("PeekNamedPipe", err)
	}
	if perr != nil {
		var errno syscall.Errno
		if errors.As(perr, &errno) && isGone(errno) {
			return true, nil // the next Read returns io.EOF
		}
		return false, os.NewSyscallError("PeekNamedPipe", perr)
	}
	return avail > 0, nil
}

// WaitReady blocks until a Read would return at once, the read deadline
// passes, or the Conn is closed.
//
// It waits with a zero-byte overlapped ReadFile, which a named pipe completes
// once data arrives (or the peer goes) without consuming any. On a file
// without runtime deadlines it still honours the read deadline, by checking
// at growing intervals.
func (c *Conn) WaitReady() error {
	c.dmu.Lock()
	poll, deadline := c.noDeadlines && !c.rdeadline.IsZero(), c.rdeadline
	c.dmu.Unlock()
	if poll {
		return c.pollReady(deadline)
	}
	for {
		if ok, err := c.Ready(); ok || err != nil {
			return err
		}
		_, err := c.f.Read(nil)
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			var errno syscall.Errno
			if errors.As(err, &errno) && isGone(errno) {
				return nil
			}
			return fileError("ReadFile", err)
		}
	}
}

// pollReady waits as WaitReady does until deadline, by checking Ready.
func (c *Conn) pollReady(deadline time.Time) error {
	wait := time.Millisecond
	for {
		if ok, err := c.Ready(); ok || err != nil {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return &fs.PathError{Op: "PeekNamedPipe", Path: c.f.Name(), Err: os.ErrDeadlineExceeded}
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// SetReadDeadline sets the deadline for Read and WaitReady; see
// [os.File.SetReadDeadline]. On a file without runtime deadlines it fails
// with [os.ErrNoDeadline], and the deadline applies to WaitReady only.
func (c *Conn) SetReadDeadline(t time.Time) error {
	err := c.f.SetReadDeadline(t)
	if errors.Is(err, os.ErrNoDeadline) {
		c.dmu.Lock()
		c.noDeadlines, c.rdeadline = true, t
		c.dmu.Unlock()
	}
	return err
}

// SetWriteDeadline sets the deadline for Write and Writev; see
// [os.File.SetWriteDeadline].
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// Close closes the handle, unblocking any Read or Write in progress. It may
// be called more than once.
func (c *Conn) Close() error {
	err := c.f.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
