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
	"unsafe"

	"github.com/procpipe/procpipe/internal/testhook"
	"golang.org/x/sys/unix"
)

// MaxFiles is the most descriptors one message carries. It is Linux's
// SCM_MAX_FD; the same limit holds on every system so that a message fits
// every receiver's control buffer.
const MaxFiles = 253

// ErrTruncated is wrapped by the error for descriptors that did not fit the
// receiver's control buffer (MSG_CTRUNC). Those that did arrive are closed.
var ErrTruncated = errors.New("procpipe: descriptors lost: the control message was truncated (MSG_CTRUNC)")

// maxWaiting bounds the descriptors a socket Conn holds for its user. A
// correct peer attaches descriptors only to the first byte of an item
// between messages, and a read stops after each byte that carries some, so
// no more than a batch or two wait at a time; a peer attaching descriptors
// to every byte of one long message could otherwise fill this process's
// descriptor table before the receiver takes or drops them. Descriptors
// beyond the bound are closed as they arrive, and errFlood takes their
// place, so that an item they belonged to gets an error saying so; past
// maxWaiting batches, with the peer plainly breaking the protocol, nothing
// more is kept.
const maxWaiting = 4 * MaxFiles

var errFlood = fmt.Errorf("procpipe: descriptors closed on arrival: more than %d were waiting to be taken", maxWaiting)

// A batch is the descriptors that arrived with one byte of the stream.
type batch struct {
	off   int64 // the stream offset of that byte
	files []*os.File
	err   error // the batch arrived damaged; files is empty
}

// fileQueue holds a socket's descriptors that Read received with the data,
// with the place in the stream each belongs to, until they are taken.
type fileQueue struct {
	off int64  // bytes Read returned so far; only Read touches it
	oob []byte // control buffer; only Read touches it

	n      atomic.Int32 // len(q), read without the lock on every check
	mu     sync.Mutex   // guards q and closed
	q      []batch      // in stream order
	closed bool
}

func newFileQueue() *fileQueue {
	size := int64(unix.CmsgSpace(MaxFiles * 4))
	if n := testhook.ControlBufferSize.Load(); n > 0 {
		size = n
	}
	return &fileQueue{oob: make([]byte, size)}
}

// received records what a read of n bytes on the socket brought besides
// its bytes: the control messages in oob, and the read's flags.
func (q *fileQueue) received(n int, oob []byte, flags int, err, serr error) {
	if err == nil && serr == nil && (len(oob) > 0 || flags&unix.MSG_CTRUNC != 0) {
		q.arrived(n, oob, flags&unix.MSG_CTRUNC != 0)
	}
	if err == nil && serr == nil && n > 0 {
		q.off += int64(n)
	}
}

// arrived queues the descriptors a read of n bytes received in control
// messages oob, wrapping each in an *os.File first; when the control buffer
// was too small (truncated) it closes them and queues the error instead.
func (q *fileQueue) arrived(n int, oob []byte, truncated bool) {
	fds := parseRights(oob)
	files := make([]*os.File, 0, len(fds))
	for _, fd := range fds {
		if f := os.NewFile(uintptr(fd), fmt.Sprintf("procpipe-received-fd-%d", fd)); f != nil {
			files = append(files, f)
		}
	}
	b := batch{off: q.off + filesAt(n), files: files}
	if truncated {
		closeAll(files)
		b.files = nil
		b.err = fmt.Errorf("%w: %d arrived and were closed (control buffer of %d bytes)", ErrTruncated, len(fds), len(q.oob))
	}
	if n == 0 {
		// Descriptors with no byte to belong to: no correct peer sends
		// them, and nobody can ask for them.
		closeAll(b.files)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		closeAll(b.files)
		return
	}
	if q.waiting()+len(b.files) > maxWaiting {
		closeAll(b.files)
		if len(q.q) >= maxWaiting {
			return
		}
		b = batch{off: b.off, err: errFlood}
	}
	q.q = append(q.q, b)
	q.n.Store(int32(len(q.q)))
}

// waiting returns how many descriptors the queue holds. q.mu is held.
func (q *fileQueue) waiting() int {
	n := 0
	for _, b := range q.q {
		n += len(b.files)
	}
	return n
}

// parseRights returns the descriptors in the SCM_RIGHTS messages of oob. A
// message the kernel cut short (MSG_CTRUNC) yields the whole descriptors it
// holds, so that they can be closed.
func parseRights(oob []byte) []int {
	var fds []int
	hdrLen := unix.CmsgLen(0)
	for len(oob) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		end := int(h.Len)
		if end < hdrLen {
			break
		}
		if end > len(oob) {
			end = len(oob)
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_RIGHTS {
			for data := oob[hdrLen:end]; len(data) >= 4; data = data[4:] {
				fds = append(fds, int(*(*int32)(unsafe.Pointer(&data[0]))))
			}
		}
		next := unix.CmsgSpace(end - hdrLen)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return fds
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// ReadOffset returns how many bytes Read has returned from the stream so
// far. Call it where Reads are serialised.
func (c *Conn) ReadOffset() int64 {
	if c.files == nil {
		return 0
	}
	return c.files.off
}

// FilesAt reports whether descriptors arrived with the byte at stream
// offset off, which Read has returned, or were lost on the way (then
// [Conn.TakeFiles] returns the error). Descriptors that came with earlier
// bytes, which the caller consumed as ordinary data, are closed: nobody can
// ask for them any more.
func (c *Conn) FilesAt(off int64) bool {
	q := c.files
	if q == nil || q.n.Load() == 0 {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	i := 0
	for i < len(q.q) && q.q[i].off < off {
		closeAll(q.q[i].files)
		i++
	}
	q.q = q.q[i:]
	q.n.Store(int32(len(q.q)))
	return len(q.q) > 0 && q.q[0].off == off
}

// TakeFiles removes and returns the descriptors that arrived with the byte
// at stream offset off (see [Conn.FilesAt]); the caller owns them. It
// returns nil if there are none, and an error wrapping [ErrTruncated] if they
// were lost.
func (c *Conn) TakeFiles(off int64) ([]*os.File, error) {
	if !c.FilesAt(off) {
		return nil, nil
	}
	q := c.files
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.q[0]
	q.q = q.q[1:]
	q.n.Store(int32(len(q.q)))
	return b.files, b.err
}

// close closes every descriptor still queued, and those that arrive later.
func (q *fileQueue) close() {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for _, b := range q.q {
		closeAll(b.files)
	}
	q.q = nil
	q.n.Store(0)
}

// WriteFiles sends the one-byte message b with the descriptors under conns
// attached in one SCM_RIGHTS control message. Each descriptor is used inside
// its RawConn's Control, so none can be closed and reused while it is sent;
// the callers keep them. If before is not nil, WriteFiles calls it once it
// holds every descriptor, just before sending, and sends nothing if it
// fails: a caller can write a message that must precede the descriptors
// knowing that they will follow. WriteFiles fails on anything but a socket,
// and with more than [MaxFiles] descriptors.
func (c *Conn) WriteFiles(b byte, conns []syscall.RawConn, before func() error) error {
	if c.kind != Socket {
		return errors.New("procpipe: descriptors can only be sent over a socket")
	}
	if len(conns) > MaxFiles {
		return fmt.Errorf("procpipe: %d descriptors do not fit one message (at most %d)", len(conns), MaxFiles)
	}
	fds := make([]int, 0, len(conns))
	var werr error
	var with func(rest []syscall.RawConn) error
	with = func(rest []syscall.RawConn) error {
		if len(rest) == 0 {
			if before != nil {
				if werr = before(); werr != nil {
					return nil
				}
			}
			werr = c.writeRights(b, unix.UnixRights(fds...))
			return nil
		}
		var inner error
		err := rest[0].Control(func(fd uintptr) {
			fds = append(fds, int(fd))
			inner = with(rest[1:])
		})
		if err != nil {
			return err
		}
		return inner
	}
	if err := with(conns); err != nil {
		return fmt.Errorf("procpipe: descriptor %d of %d to send: %w", len(fds)+1, len(conns), err)
	}
	return werr
}

func (c *Conn) writeRights(b byte, oob []byte) error {
	var (
		n    int
		serr error
	)
	msg := [][]byte{{b}}
	err := c.waitWrite(func(fd uintptr) bool {
		for {
			n, serr = unix.SendmsgBuffers(int(fd), msg, oob, nil, rightsFlags)
			switch serr {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			return true
		}
	})
	switch {
	case err != nil:
		return c.pollerError("write", err)
	case serr != nil:
		return os.NewSyscallError("sendmsg", serr)
	case n != 1:
		return os.NewSyscallError("sendmsg", unix.EIO)
	}
	return nil
}

// readResult turns what a read's system call returned into Read's result.
func readResult(n int, err, serr error) (int, error) {
	switch {
	case err != nil:
		return 0, err
	case serr == unix.ECONNRESET:
		return 0, io.EOF
	case serr != nil:
		return 0, os.NewSyscallError("read", serr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
