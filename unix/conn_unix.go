//go:build unix

package unix

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Kind says what a [Conn]'s descriptor is and which ways it carries data.
type Kind int

const (
	Socket    Kind = iota // a stream socket: reads and writes
	PipeRead              // the read end of a pipe
	PipeWrite             // the write end of a pipe
)

// A Conn is one end of a Unix byte stream: a stream socket or one end of a
// pipe, held in an [*os.File]. Its calls wait on the runtime poller. On
// Linux the descriptor joins the poller only while calls keep waiting:
// a Read that would block waits in ppoll(2) first, for up to a millisecond,
// and parks on the poller through a descriptor of its own after that, as
// does a Write that waits for room; that descriptor is dropped once 64
// calls in a row have not waited. A descriptor on the poller costs every
// write by the peer a wake-up of the poller's epoll entry (see
// park_linux.go); a wait in ppoll holds an OS thread (at most 16 do at once
// in a process, unless no descriptor is left to park with). A deadline set,
// or Close called, while a Read waits in ppoll takes effect within that
// millisecond (10 if no descriptor is left to park with).
//
// Read and Write may be called concurrently with each other and with Close,
// which unblocks them; the caller serialises Reads among themselves, and
// Writes among themselves, as with an [*os.File] (TryRead and WaitReady
// count as Reads, Writev, TryWrite and WriteFiles as Writes).
type Conn struct {
	f    *os.File
	rc   syscall.RawConn
	kind Kind
	waits
	rop readOp  // the Read in progress (see op.go)
	wop writeOp // the Writev in progress

	// A Read or Write makes its first attempt on fd directly (see
	// Conn.firstRead), holding live for reading, as do the attempts of the
	// waiting path on Linux (see Conn.wait); Close holds it for writing
	// while it sets closed, so no attempt uses fd once it may be closed
	// and its number reused. rdl and wdl say a read or write deadline is
	// set: only the waiting path (waitRead, waitWrite) honours them. dmu
	// serialises the deadline setters, so that each flag ends as its
	// deadline does.
	fd       int
	live     sync.RWMutex
	closed   atomic.Bool
	rdl, wdl atomic.Bool
	dmu      sync.Mutex

	files *fileQueue // descriptors received on a socket; nil on a pipe

	// shared is what File hands out when the Conn owns its open file (see
	// ownFile): another open file of the same pipe end, closed by Close;
	// fmu serialises its making.
	fmu    sync.Mutex
	shared *os.File
}

var _ interface {
	io.ReadWriteCloser
	Writev([][]byte) (int64, error)
	TryRead([]byte) (int, bool)
	TryWrite([]byte) (int, bool)
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
} = (*Conn)(nil)

// newConn wraps fd, which must be close-on-exec and non-blocking, and a pipe
// end's own open file if own is true (see ownFile). It closes fd on error.
func newConn(fd int, name string, kind Kind, own bool) (*Conn, error) {
	f := newFile(fd, name)
	if f == nil {
		unix.Close(fd)
		return nil, fmt.Errorf("procpipe: invalid descriptor %d", fd)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	c := &Conn{f: f, rc: rc, kind: kind, fd: fd}
	if kind == Socket {
		c.files = newFileQueue()
	}
	c.rop.init(c.files, own)
	c.wop.init(kind == Socket, own)
	return c, nil
}

// Socketpair returns the two ends of a new connected pair of stream sockets
// (socketpair(AF_UNIX, SOCK_STREAM)).
func Socketpair() (*Conn, *Conn, error) {
	fds, err := socketpair()
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	for _, fd := range fds {
		tuneSocket(fd)
		if err := tune(fd); err != nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
			return nil, nil, err
		}
	}
	a, err := newConn(fds[0], "procpipe-socket", Socket, false)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	b, err := newConn(fds[1], "procpipe-socket", Socket, false)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// Pipe returns the read and write ends of a new pipe (pipe(2)).
func Pipe() (r, w *Conn, err error) {
	var fds [2]int
	if err := pipe(&fds); err != nil {
		return nil, nil, os.NewSyscallError("pipe", err)
	}
	tunePipe(fds[1])
	rfd, rown := ownFile(fds[0], PipeRead)
	r, err = newConn(rfd, "procpipe-pipe-r", PipeRead, rown)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	wfd, wown := ownFile(fds[1], PipeWrite)
	w, err = newConn(wfd, "procpipe-pipe-w", PipeWrite, wown)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return r, w, nil
}

// NewConn returns a Conn for f, which must be a stream socket or one end of a
// pipe; the Conn takes f over (f must not be used afterwards, and is closed if
// NewConn fails). It works out the [Kind] from the descriptor, and moves it
// to non-blocking mode; as the mode belongs to the open file, other
// processes sharing it see it too (on Linux, also briefly blocking, which
// keeps the Conn's os.File off the runtime poller, see [Conn]). On Linux, one end of a pipe
// (not a FIFO, nor in packet mode or with O_ASYNC) is opened again instead,
// where /proc is mounted, as an open file of the Conn's own (see
// [Conn.File]), and f's keeps its mode.
func NewConn(f *os.File) (*Conn, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	var (
		dup  int
		kind Kind
		own  bool
		cerr error
	)
	err = rc.Control(func(fd uintptr) {
		if kind, cerr = kindOf(int(fd)); cerr != nil {
			return
		}
		// A dup made under the fork lock and then marked close-on-exec
		// is never seen by a concurrent fork. Off Linux the new
		// descriptor joins the poller because it is non-blocking when
		// os.NewFile sees it (on Linux, see newFile).
		if dup, cerr = dupCloexec(int(fd)); cerr != nil {
			return
		}
		if kind != Socket {
			if dup, own = ownFile(dup, kind); own {
				return // f's open file keeps its mode
			}
		}
		if cerr = unix.SetNonblock(dup, true); cerr != nil {
			unix.Close(dup)
			cerr = os.NewSyscallError("fcntl", cerr)
		}
	})
	f.Close()
	if err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return newConn(dup, f.Name(), kind, own)
}

// KindOf reports what kind of Conn descriptor fd can be, or why it can be
// none (it is not a stream socket or one end of a pipe). It leaves fd as it
// is, so a caller can check a descriptor it does not own before it hands
// one to NewConn, which takes ownership even when it fails.
func KindOf(fd int) (Kind, error) { return kindOf(fd) }

func kindOf(fd int) (Kind, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, os.NewSyscallError("fstat", err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK:
		typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			return 0, os.NewSyscallError("getsockopt", err)
		}
		if typ != unix.SOCK_STREAM {
			return 0, fmt.Errorf("procpipe: descriptor %d is a socket of type %d, not a stream socket", fd, typ)
		}
		return Socket, nil
	case unix.S_IFIFO:
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			return 0, os.NewSyscallError("fcntl", err)
		}
		switch fl & unix.O_ACCMODE {
		case unix.O_RDONLY:
			return PipeRead, nil
		case unix.O_WRONLY:
			return PipeWrite, nil
		}
		return 0, fmt.Errorf("procpipe: descriptor %d is a pipe open for both reading and writing", fd)
	}
	return 0, fmt.Errorf("procpipe: descriptor %d is neither a stream socket nor a pipe (mode %#o)", fd, st.Mode)
}

// Kind reports what the Conn's descriptor is.
func (c *Conn) Kind() Kind { return c.kind }

// File returns the Conn's file, for handing to a child process (as in
// exec.Cmd.ExtraFiles). Reading or writing it directly corrupts the stream,
// and it must be closed only by [Conn.Close]: a Conn whose file was closed
// behind its back could reach a descriptor that reused its number.
//
// On Linux a pipe Conn (not a FIFO's; where /proc is mounted) reads and
// writes an open file of its own, which it never hands out, so that no
// other process can clear its O_NONBLOCK; File returns another open file of
// the same end, made at the first call, blocking (as programs expect of an
// inherited descriptor) and so not on the runtime poller (it takes no
// deadlines), and closed by Close with the rest. Should that file not open
// (no descriptor left, say), File returns the Conn's own, whose calls then
// go the waiting path only and trust its O_NONBLOCK. Elsewhere, and for
// sockets, FIFOs and pipes in packet mode (O_DIRECT) or with O_ASYNC, File
// returns the Conn's own file, whose mode every process given it shares.
func (c *Conn) File() *os.File { return c.file() }

// Control calls f with the Conn's own descriptor, which stays open until f
// returns, as [syscall.RawConn.Control] does: for calls that neither keep
// the descriptor nor change its mode nor pass it on (polling it, say). To
// hand the Conn's file to another process, use File: on Linux a pipe
// Conn's own open file is never shared (see File). It fails only once the
// Conn is closed. (It is not a SyscallConn method, so that a Conn is not
// taken for a syscall.Conn whose descriptor may be sent elsewhere.)
func (c *Conn) Control(f func(fd uintptr)) error { return c.rc.Control(f) }

// Write writes all of p; see [Conn.Writev]. Read, ReadScatter and Writev are
// in op.go, with the rest of a message's path (see there).
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.Writev([][]byte{p})
	return int(n), err
}

// pollerError is the error for a call that the runtime poller refused or
// ended with err (nil stays nil). The poller's own error for a call that
// meets Close ("use of closed file") matches neither os.ErrClosed nor
// net.ErrClosed; a Conn's matches os.ErrClosed, as an os.File's and the
// windows package's Conn's do. A deadline that passed first stays what it
// is. It is small enough to inline: a Read that succeeds pays one compare.
func (c *Conn) pollerError(op string, err error) error {
	if err == nil {
		return nil
	}
	return c.closedError(op, err)
}

func (c *Conn) closedError(op string, err error) error {
	if c.closed.Load() && !errors.Is(err, os.ErrDeadlineExceeded) {
		return &os.PathError{Op: op, Path: c.f.Name(), Err: os.ErrClosed}
	}
	return err
}

// Ready reports, without blocking, whether a Read would return at once: data
// is waiting, or the peer has closed its end.
func (c *Conn) Ready() (bool, error) {
	var ready bool
	var serr error
	err := c.rc.Control(func(fd uintptr) { ready, serr = pollIn(int(fd)) })
	if err == nil {
		err = serr
	}
	return ready, c.pollerError("poll", err)
}

// WaitReady blocks until a Read would return at once, the read deadline
// passes, or the Conn is closed.
func (c *Conn) WaitReady() error {
	var serr error
	err := c.waitRead(func(fd uintptr) bool {
		var ready bool
		ready, serr = pollIn(int(fd))
		return ready || serr != nil
	})
	if err == nil {
		err = serr
	}
	return c.pollerError("poll", err)
}

func pollIn(fd int) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, os.NewSyscallError("poll", err)
		}
		return n > 0, nil
	}
}

// SetReadDeadline sets the deadline for Read and WaitReady; see
// [os.File.SetReadDeadline].
func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(&c.rdl, dirRead, t)
}

// SetWriteDeadline sets the deadline for Write and Writev; see
// [os.File.SetWriteDeadline].
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(&c.wdl, dirWrite, t)
}

// setDeadline sets direction d's deadline and its flag (rdl or wdl). The
// flag is up while the deadline changes, so no first attempt skips a
// deadline that is being set.
func (c *Conn) setDeadline(flag *atomic.Bool, d int, t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	flag.Store(true)
	err := c.setDeadlineAt(d, t)
	flag.Store(!t.IsZero())
	return c.pollerError("set deadline", err)
}

// Close closes the descriptor, unblocking any Read or Write in progress (on
// Linux, one waiting in ppoll within a millisecond: see [Conn]), and every
// received descriptor not yet taken. It may be called more than once.
// The calls it unblocks, and any made after it, fail with an error matching
// [os.ErrClosed].
// It first waits for a read or write attempt in progress on the descriptor
// itself, which does not wait for the peer.
func (c *Conn) Close() error {
	c.live.Lock()
	c.closed.Store(true)
	c.live.Unlock()
	c.closeWaits()
	c.files.close()
	c.fmu.Lock()
	if c.shared != nil {
		c.shared.Close()
	}
	c.fmu.Unlock()
	err := c.f.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
