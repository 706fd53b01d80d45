package procpipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/procpipe/procpipe/frame"
)

// MaxFiles is the most files one call passes: Linux's SCM_MAX_FD, used on
// every system so that a message fits every receiver.
const MaxFiles = 253

// ackByte is the byte a receiver of files answers with when acknowledgements
// are on, as CPython's multiprocessing.reduction does.
const ackByte = 'A'

var (
	// ErrFilesNext is returned by Recv and the other message-receiving
	// methods when the next item on the Conn is a set of passed files, not a
	// message. The files stay queued, in order: receive them with
	// [Conn.RecvFiles], and then the messages after them.
	ErrFilesNext = errors.New("procpipe: recv: the next item is passed files, not a message (receive them with RecvFiles)")

	// ErrMessageNext is returned by [Conn.RecvFiles] when the next item on
	// the Conn is a message, not passed files. The message is left for Recv.
	ErrMessageNext = errors.New("procpipe: recv files: the next item is a message, not passed files (receive it with Recv)")

	// ErrNotSocket is returned by the file-passing methods on a one-way
	// Conn: files pass only over a duplex Conn (on Unix a socket, on
	// Windows a duplex named pipe, which carries the acknowledgement back).
	ErrNotSocket = errors.New("procpipe: files pass only over a duplex Conn, not a one-way pipe")

	// ErrSocketHandle is wrapped by the error of a call that passes a
	// socket on Windows, where a socket cannot be passed as a handle
	// (Windows documents DuplicateHandle as unsupported for sockets;
	// WSADuplicateSocket is the way). Nothing is sent. It matches
	// [errors.ErrUnsupported].
	ErrSocketHandle = fmt.Errorf("procpipe: sockets cannot be passed as handles on Windows: %w", errors.ErrUnsupported)

	// ErrTooManyFiles is wrapped by the error for a call that passes more
	// than [MaxFiles] files (or none); nothing is sent.
	ErrTooManyFiles = errors.New("procpipe: wrong number of files for one message")

	// ErrFilesTruncated is wrapped by the error of [Conn.RecvFiles] when the
	// files did not fit this end's control buffer (MSG_CTRUNC): those that
	// did arrive have been closed, the others the kernel discarded.
	ErrFilesTruncated = errors.New("procpipe: recv files: files lost: the control message was truncated")
)

// A filePasser carries files on a Conn's byte stream, as items between
// messages; each system has its own (files_unix.go, files_windows.go). The
// Conn's receive lock serialises filesNext and takeFiles, its send lock
// writeFiles.
type filePasser interface {
	// filesNext reports whether the next item on the stream, whose first
	// byte rd has buffered, is passed files. It consumes nothing, and
	// reads from the transport only if the first byte cannot tell.
	filesNext(rd *frame.Reader) (bool, error)

	// takeFiles consumes the passed files that filesNext found next and
	// returns them, the caller's to close. It reports whether it consumed
	// them: the peer then waits for an acknowledgement (if those are on),
	// whatever the error. A passer that takes the files out of the peer
	// after consuming the item (Windows) does so only inside gate, and
	// not at all once the gate is shut.
	takeFiles(op string, rd *frame.Reader, gate *pullGate) (files []*os.File, consumed bool, err error)

	// writeFiles sends the files under conns as one item, after wr's
	// frames. If before is not nil it is called first, once nothing but a
	// failing write can stop the files from following, and nothing is sent
	// if it fails. A non-nil release frees what the peer needs to take the
	// files: it must be called only once the peer can no longer take them,
	// because it has acknowledged the item or its end is gone (see acks).
	writeFiles(wr *frame.Writer, conns []syscall.RawConn, before func() error) (release func(), err error)
}

// SendFiles passes files to the peer, which receives duplicates of them, in
// the same order, with [Conn.RecvFiles] (or CPython's
// multiprocessing.reduction.recvfds). The files stay open and remain the
// caller's to close, even at once after SendFiles returns. Up to [MaxFiles]
// files go in one call.
//
// On the wire this is CPython's reduction.sendfds: a one-byte message
// holding len(files) % 256 with the descriptors attached (SCM_RIGHTS),
// between messages. Unless the Conn's [Config.NoFileAck] is set, SendFiles
// then waits for the peer's acknowledgement byte, so that the peer has the
// files when it returns; it stops waiting early if the peer sends a message
// first (receiving calls then consume the acknowledgement when they meet
// it), and waits for ever, like CPython, for a peer that neither
// acknowledges nor sends anything: set the Conn's read deadline to bound it.
//
// On Windows the peer pulls the handles (the wire form is in the package
// documentation, "Passing files"): SendFiles writes this process's ID and
// the values of private duplicates of the files' handles, the peer
// duplicates them out of this process and acknowledges, and SendFiles waits
// for that acknowledgement whatever [Config.NoFileAck] says. The private
// duplicates stay open until the acknowledgement is consumed, even if
// SendFiles stopped waiting early as above. If the Conn is closed first,
// [Conn.Close] closes them only if this Conn has already met the end of the
// stream (a receiving call, or SendFiles waiting for the acknowledgement,
// got [io.EOF] or [io.ErrUnexpectedEOF]: the peer's end is closed, and a
// closed Conn duplicates nothing more); otherwise they stay open until this
// process exits. Closing them under a peer that may still duplicate them
// could hand it an unrelated handle of this process, since Windows reuses
// handle values. The leak is bounded by the items whose acknowledgement is
// outstanding at Close; to avoid it, close once the acknowledgements have
// been consumed (a SendFiles that returned nil has had its own, unless the
// peer sent something first: then a later receiving call consumes it) or
// once a receiving call has returned io.EOF. This works between Go
// processes only: CPython's send_handle on Windows pickles a DupHandle
// object, a different wire form. A socket cannot be passed on Windows (the
// error matches [ErrSocketHandle]).
//
// Files pass only over a duplex Conn; other Conns return an error matching
// [ErrNotSocket]. Where acknowledgements are on, a Conn whose receiving
// side is out of sync could never read one: SendFiles then sends nothing
// and returns the receiving side's error (matching [ErrBroken], or
// [io.ErrUnexpectedEOF] after a peer that went away mid-message).
func (c *Conn) SendFiles(files ...*os.File) error {
	conns, err := fileConns("send files", files)
	if err != nil {
		return err
	}
	return c.sendFiles("send files", nil, false, conns)
}

// SendConn passes the descriptor under conn, anything with a SyscallConn
// method such as a [*net.TCPListener], [*net.UnixConn] or [*os.File], as
// [Conn.SendFiles] passes a file. The peer receives an *os.File with
// [Conn.RecvFiles] and may turn it back into a listener or connection with
// [net.FileListener] or [net.FileConn]. conn stays open and the caller's.
//
// On Windows, conn may be anything whose SyscallConn gives a handle other
// than a socket: a file, a pipe, or the file under another Conn (the peer
// makes it a Conn with [NewConn]). Sockets are refused with an error
// matching [ErrSocketHandle], because Windows does not support
// DuplicateHandle on them.
func (c *Conn) SendConn(conn syscall.Conn) error {
	if conn == nil {
		return fmt.Errorf("procpipe: send conn: nil conn: %w", os.ErrInvalid)
	}
	return c.sendFiles("send conn", nil, false, []syscall.Conn{conn})
}

// SendWithFiles sends v as one message, as [Conn.Send] does, followed at once
// by files, as [Conn.SendFiles] does; no other message sent on the Conn
// comes in between. The peer receives both with [Conn.RecvWithFiles] (or, in
// Python, recv() followed by recvfds).
func (c *Conn) SendWithFiles(v any, files ...*os.File) error {
	if _, err := c.passer(); err != nil {
		return err
	}
	conns, err := fileConns("send with files", files)
	if err != nil {
		return err
	}
	bp := getBuf()
	b, err := c.codec.AppendMarshal((*bp)[:0], v)
	if err != nil {
		return fmt.Errorf("procpipe: send with files: encoding %T: %w", v, err)
	}
	err = c.sendFiles("send with files", b, true, conns)
	putBuf(bp, b)
	return err
}

// RecvFiles receives the files the peer passed with [Conn.SendFiles] (or
// CPython's reduction.sendfds), which must be the next item on the Conn. The
// files are new descriptors, close-on-exec, owned by the caller.
//
// On Windows the files are new handles, not inheritable, that RecvFiles
// duplicated out of the sending process (see [Conn.SendFiles]); it always
// acknowledges them, whatever [Config.NoFileAck] says. It trusts the peer to
// name itself: it duplicates out of whichever process the item names, if
// it may open that process with PROCESS_DUP_HANDLE, as CPython's DupHandle
// does. A handle opened for
// overlapped I/O that is on another process's completion port (the pipe
// under a Conn, say) works in the received file, but without deadlines:
// see [github.com/procpipe/procpipe/windows.DuplicateFileTo]. If the handles
// cannot be duplicated (the sender is gone, or a value is not a handle
// there), the error is an [*os.SyscallError] naming OpenProcess or
// DuplicateHandle, no handle is left open, and the Conn stays usable; a
// malformed item leaves the receiving side unusable (errors match
// [ErrBroken]).
//
// If the next item is a message, RecvFiles leaves it for Recv and returns an
// error matching [ErrMessageNext]. Files that did not fit this end's buffer
// give an error matching [ErrFilesTruncated], with every file that did arrive
// closed. Unless [Config.NoFileAck] is set, RecvFiles answers the peer with
// the acknowledgement byte once it has taken the files off the stream.
func (c *Conn) RecvFiles() ([]*os.File, error) {
	return c.recvFiles("recv files", nil, false)
}

// RecvWithFiles receives a message into v, as [Conn.Recv] does, and the files
// that follow it, as [Conn.RecvFiles] does; no other receiving call on the
// Conn takes anything in between. If the message is followed by something
// other than files, v holds the message and the error matches
// [ErrMessageNext]. On any error no file is returned open.
func (c *Conn) RecvWithFiles(v any) ([]*os.File, error) {
	if err := decodeTarget("recv with files", v); err != nil {
		return nil, err
	}
	return c.recvFiles("recv with files", v, true)
}

func fileConns(op string, files []*os.File) ([]syscall.Conn, error) {
	conns := make([]syscall.Conn, len(files))
	for i, f := range files {
		if f == nil {
			return nil, fmt.Errorf("procpipe: %s: file %d of %d is nil: %w", op, i+1, len(files), os.ErrInvalid)
		}
		conns[i] = f
	}
	return conns, nil
}

// passer returns the Conn's transport as a filePasser, or the error for a
// Conn that cannot pass files.
func (c *Conn) passer() (filePasser, error) {
	if c == nil || c.t == nil {
		return nil, errInvalidConn
	}
	if c.fp == nil {
		return nil, noPasserError()
	}
	return c.fp, nil
}

func (c *Conn) sendFiles(op string, msg []byte, withMsg bool, conns []syscall.Conn) error {
	fp, err := c.passer()
	if err != nil {
		return err
	}
	if len(conns) == 0 || len(conns) > MaxFiles {
		return fmt.Errorf("procpipe: %s: %d files, want 1 to %d: %w", op, len(conns), MaxFiles, ErrTooManyFiles)
	}
	if withMsg && c.limit >= 0 && int64(len(msg)) > c.limit {
		return &TooLargeError{Size: uint64(len(msg)), Limit: c.limit}
	}
	rcs := make([]syscall.RawConn, len(conns))
	for i, x := range conns {
		rc, err := x.SyscallConn()
		if err != nil {
			return fmt.Errorf("procpipe: %s: file %d of %d: %w", op, i+1, len(conns), err)
		}
		rcs[i] = rc
	}
	c.lock(context.Background(), &c.wlock)
	switch {
	case c.closed.Load():
		err = closedError(op)
	default:
		err = c.wr.Err()
	}
	if err == nil && c.ack {
		err = c.recvBroken(op)
	}
	var before func() error
	if withMsg {
		// Written while every file is held open, so that the files
		// cannot fail to follow for being closed meanwhile.
		before = func() error { return c.wr.WriteFrame(msg) }
	}
	var (
		ticket  uint64
		release func()
	)
	if err == nil {
		// Expect the acknowledgement before it can arrive, so that any
		// receiving call that meets it knows it for one.
		if c.ack {
			ticket = c.acks.expect()
		}
		if release, err = fp.writeFiles(c.wr, rcs, before); err != nil && c.ack {
			c.acks.unexpect()
		}
	}
	c.unlock(&c.wlock)
	if err != nil {
		return c.opError(op, context.Background(), err)
	}
	if release != nil {
		// Only where acknowledgements are always on (Windows).
		c.acks.hold(ticket, release)
	}
	if !c.ack {
		return nil
	}
	// The send lock is not held while waiting for the answer: a receiver
	// of files takes the send lock to answer while it holds its receive
	// lock, and the opposite order could deadlock.
	return c.awaitAck(op, ticket)
}

// recvBroken returns an error if the receiving side is out of sync (a
// malformed item or frame from the peer, say): the acknowledgement of files
// sent now could never be read, and on Windows the private duplicates held
// for it could never be released, not even by Close, which releases them
// only once the end of the stream has been read. It only tries the receive
// lock, which the caller's send lock forbids waiting for; a receiving call
// holding it returns at once on a stream out of sync. The caller holds the
// send lock.
func (c *Conn) recvBroken(op string) error {
	if !c.rlock.tryLock() {
		return nil
	}
	_, err := c.rd.Peek(0) // no I/O: the stream's sticky error, if any
	c.unlockRead()
	if err != nil {
		return fmt.Errorf("procpipe: %s: nothing sent: the acknowledgement could not be read: %w", op, err)
	}
	return nil
}

// acks counts the acknowledgements a Conn expects and has consumed. Any
// receiving call that finds an expected acknowledgement byte where the next
// item would start consumes it, so that a goroutine receiving messages while
// another sends files does not mistake it for the start of a message.
type acks struct {
	expected atomic.Uint64 // acknowledgements asked for so far
	seen     atomic.Uint64 // acknowledgements consumed so far

	// peerGone is set once the Conn's reader got the end of the stream
	// from the transport while the Conn was open: the peer's end is
	// closed, so the peer takes no more passed files (see peerWatch).
	peerGone atomic.Bool

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when seen grows
	held    []held        // in any order: each released once seen reaches its ticket
	closed  bool          // the Conn is closed: no receiving call consumes acknowledgements
}

// held is what a sender keeps for its peer until the acknowledgement with
// the ticket is consumed.
type held struct {
	ticket  uint64
	release func()
}

// hold keeps release until the acknowledgement with the ticket is consumed,
// or the Conn is closed after its peer's end went away, and then calls it.
func (a *acks) hold(ticket uint64, release func()) {
	a.mu.Lock()
	if a.seen.Load() < ticket && !(a.closed && a.peerGone.Load()) {
		a.held = append(a.held, held{ticket, release})
		release = nil
	}
	a.mu.Unlock()
	if release != nil {
		release()
	}
}

// close is called when the Conn closes. If the peer's end is gone, the
// peer can take nothing more, and everything held is released, now and
// from now on. Otherwise what is held stays held for ever, since no
// receiving call will consume its acknowledgement: a peer that is still
// open may yet duplicate the values it was sent (a closed peer Conn does
// not: see pullGate), and Windows reuses handle values, so closing them
// could hand it an unrelated handle of this process where it should get
// an error. That leak is bounded by the items whose acknowledgement was
// outstanding at Close.
func (a *acks) close() {
	a.mu.Lock()
	a.closed = true
	var h []held
	if a.peerGone.Load() {
		h, a.held = a.held, nil
	}
	a.mu.Unlock()
	for _, x := range h {
		x.release()
	}
}

// peerWatch is the transport as a Conn's frame reader reads it where files
// sent are held for the peer (Windows): it notes the end of the stream in
// acks.peerGone. Only an end that comes while the Conn is open counts: the
// error a read gets from Close itself is not the peer's doing. (It hides
// the transport's frame.ScatterReader, which Windows pipes do not have.)
type peerWatch struct{ c *Conn }

func (w peerWatch) Read(p []byte) (int, error) {
	n, err := w.c.t.Read(p)
	if err == io.EOF && !w.c.closed.Load() {
		// Checked after the read: Close marks the Conn closed before it
		// closes the transport, so this read ended before Close began.
		w.c.acks.peerGone.Store(true)
	}
	return n, err
}

// A pullGate stops a Conn from duplicating handles out of its peer
// (Windows) once the Conn is closed, and lets Close wait for a duplication
// under way: so when the peer sees this end gone, nothing here will still
// duplicate the values the peer sent, and it may close them. Its enter and
// leave are in files_windows.go, the only user.
type pullGate struct {
	mu   sync.Mutex
	shut bool
}

// close waits for a duplication under way and stops later ones.
func (g *pullGate) close() {
	g.mu.Lock()
	g.shut = true
	g.mu.Unlock()
}

// expect notes one more acknowledgement to come and returns its ticket.
func (a *acks) expect() uint64 { return a.expected.Add(1) }

// unexpect takes back an expect, for files that were not sent.
func (a *acks) unexpect() { a.expected.Add(^uint64(0)) }

// pending reports whether an acknowledgement is expected but not consumed;
// every receiving call asks, so it takes no lock.
func (a *acks) pending() bool { return a.seen.Load() < a.expected.Load() }

// wait returns whether the acknowledgement with the ticket has been
// consumed and, if not, a channel closed when another one is.
func (a *acks) wait(ticket uint64) (bool, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen.Load() >= ticket {
		return true, nil
	}
	if a.changed == nil {
		a.changed = make(chan struct{})
	}
	return false, a.changed
}

func (a *acks) consumed() {
	a.mu.Lock()
	seen := a.seen.Add(1)
	if a.changed != nil {
		close(a.changed)
		a.changed = nil
	}
	// Scan the whole list: hold is called after the send lock is released,
	// so two SendFiles racing can hold their tickets out of order, and an
	// early ticket behind a later one must not wait for the later ack.
	var done []held
	kept := a.held[:0]
	for _, x := range a.held {
		if x.ticket <= seen {
			done = append(done, x)
		} else {
			kept = append(kept, x)
		}
	}
	clear(a.held[len(kept):])
	a.held = kept
	a.mu.Unlock()
	for _, x := range done {
		x.release()
	}
}

// skipAcks consumes the expected acknowledgements at the head of the
// stream. It waits for a byte to arrive only if block is set. The caller
// holds the receive lock.
func (c *Conn) skipAcks(block bool) error {
	for c.acks.pending() {
		if c.rd.Buffered() == 0 && !block {
			return nil
		}
		b, err := c.rd.PeekByte()
		if err != nil {
			return err
		}
		if b != ackByte {
			return nil
		}
		if files, err := c.fp.filesNext(c.rd); files || err != nil {
			return err
		}
		c.rd.ReadByte()
		c.acks.consumed()
	}
	return nil
}

// nextItem waits until the first byte of the next item (a message or files)
// is buffered, consuming expected acknowledgements before it. The caller
// holds the receive lock.
func (c *Conn) nextItem() error {
	for {
		if err := c.skipAcks(true); err != nil {
			return err
		}
		if c.rd.Buffered() > 0 {
			// An acknowledgement is expected before it can arrive, so
			// one that arrived is pending and was skipped above.
			return nil
		}
		if err := c.rd.Fill(); err != nil {
			return err
		}
	}
}

// awaitAck waits until the acknowledgement with the ticket has been
// consumed, by this call or by any other receiving call on the Conn.
func (c *Conn) awaitAck(op string, ticket uint64) error {
	for {
		done, changed := c.acks.wait(ticket)
		if done {
			return nil
		}
		if !c.rlock.lockUntil(changed) {
			continue
		}
		err := c.readAck(op, ticket)
		c.unlockRead()
		return err
	}
}

// readAck consumes acknowledgements up to the one with the ticket, unless
// the peer's next item is something else. The caller holds the receive
// lock.
func (c *Conn) readAck(op string, ticket uint64) error {
	if c.closed.Load() {
		return closedError(op)
	}
	for {
		if done, _ := c.acks.wait(ticket); done {
			return nil
		}
		b, err := c.rd.PeekByte()
		if err != nil {
			return c.opError(op+": waiting for the acknowledgement", context.Background(), err)
		}
		files := false
		if b == ackByte {
			if files, err = c.fp.filesNext(c.rd); err != nil {
				return c.opError(op+": waiting for the acknowledgement", context.Background(), err)
			}
		}
		if b != ackByte || files {
			// The peer sent something before its acknowledgement (it
			// may be answering from another goroutine), and nobody is
			// receiving it. Waiting here for that to change could wait
			// forever; the acknowledgement stays expected, and the
			// receiving call that meets it consumes it.
			return nil
		}
		c.rd.ReadByte()
		c.acks.consumed()
	}
}

// filesAhead returns ErrFilesNext if the next item on the stream is passed
// files, reading from the transport if nothing is buffered. The caller holds
// the receive lock.
func (c *Conn) filesAhead() error {
	if c.fp == nil {
		return nil
	}
	if err := c.nextItem(); err != nil {
		return err
	}
	files, err := c.fp.filesNext(c.rd)
	if files {
		return ErrFilesNext
	}
	return err
}

func (c *Conn) recvFiles(op string, v any, withMsg bool) ([]*os.File, error) {
	fp, err := c.passer()
	if err != nil {
		return nil, err
	}
	c.lock(context.Background(), &c.rlock)
	if c.closed.Load() {
		c.unlockRead()
		return nil, closedError(op)
	}
	var (
		bp  *[]byte
		msg []byte
	)
	if withMsg {
		bp = getBuf()
		defer func() { putBuf(bp, msg) }()
		err = c.filesAhead()
		if err == nil {
			msg, err = c.rd.ReadFrame((*bp)[:0], c.limit)
		}
		if err != nil {
			c.unlockRead()
			if err == ErrFilesNext {
				return nil, err
			}
			return nil, c.opError(op, context.Background(), err)
		}
	}
	files, consumed, err := c.takeFiles(op, fp)
	if consumed && c.ack {
		// CPython answers as soon as it has the count byte, whatever
		// came with it, so that the sender does not wait forever.
		if aerr := c.sendAck(op); aerr != nil && err == nil {
			closeFiles(files)
			files, err = nil, aerr
		}
	}
	c.unlockRead()
	if withMsg {
		if derr := c.codec.Unmarshal(msg, v); derr != nil {
			closeFiles(files)
			return nil, fmt.Errorf("procpipe: %s: decoding a %d-byte message into %T: %w", op, len(msg), v, derr)
		}
	}
	return files, err
}

// takeFiles consumes the passed files that are the next item on the stream
// and returns them. It reports whether it consumed them. The caller holds
// the receive lock.
func (c *Conn) takeFiles(op string, fp filePasser) (files []*os.File, consumed bool, err error) {
	if err := c.nextItem(); err != nil {
		return nil, false, c.opError(op, context.Background(), err)
	}
	next, err := fp.filesNext(c.rd)
	if err != nil {
		return nil, false, c.opError(op, context.Background(), err)
	}
	if !next {
		return nil, false, ErrMessageNext
	}
	files, consumed, err = fp.takeFiles(op, c.rd, &c.pulls)
	if err != nil && !consumed {
		err = c.opError(op, context.Background(), err)
	}
	return files, consumed, err
}

// sendAck answers received files. The caller holds the receive lock.
func (c *Conn) sendAck(op string) error {
	c.lock(context.Background(), &c.wlock)
	defer c.unlock(&c.wlock)
	if c.closed.Load() {
		return closedError(op)
	}
	if err := c.wr.Err(); err != nil {
		return err
	}
	_, err := c.t.Write([]byte{ackByte})
	return c.opError(op+": acknowledging", context.Background(), err)
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
