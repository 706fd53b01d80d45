package procpipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procpipe/procpipe/frame"
)

// transport is one end of a byte stream, from the package of the platform.
type transport interface {
	io.Reader
	frame.VectorWriter
	// Ready reports without blocking whether a Read would return at once.
	Ready() (bool, error)
	// WaitReady blocks until a Read would return at once, or the read
	// deadline passes, or the transport is closed.
	WaitReady() error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	Close() error
	// File returns the file to hand to a child process.
	File() *os.File
}

// A Conn is one end of a connection made by [Pipe] (or taken with [Parent])
// that sends and receives whole messages.
//
// Multiple goroutines may call Conn's methods at once. Messages never
// interleave: each Send writes one whole message, and each message goes to
// exactly one receiving call. Close may be called at any time, more than
// once, and unblocks every call in progress.
type Conn struct {
	t        transport
	canRead  bool
	canWrite bool
	codec    Codec
	limit    int64 // -1: no limit

	fp    filePasser // nil if the Conn cannot pass files
	ack   bool       // acknowledge passed files (see Config.NoFileAck)
	acks  acks       // acknowledgements of files this end sent
	pulls pullGate   // shut by Close: no handle duplicated out of the peer after

	// The receive and send locks let a caller waiting for one give up when
	// its context is done. They live in the Conn rather than behind
	// pointers, so a message's path touches fewer pages of memory.
	rlock ctxMutex
	rd    *frame.Reader
	// rbuf tells Poll and Wait, which cannot look at rd while another
	// goroutine holds rlock, whether rd held bytes when rlock was last
	// released.
	rbuf  atomic.Bool
	wlock ctxMutex
	wr    *frame.Writer

	closed    atomic.Bool
	closeOnce sync.Once
	waits     waiters // calls to Wait watching this Conn, stopped by Close

	dmu sync.Mutex // guards the deadlines below and their application
	rdl deadline
	wdl deadline
}

// A deadline holds what decides one direction's deadline on the transport,
// where the earliest of them applies, so that no setter undoes another's.
type deadline struct {
	user        time.Time // set by SetReadDeadline or SetWriteDeadline
	poll        time.Time // a Poll's own time limit (reads only)
	interrupted bool      // a context ended the call under way
}

func (d *deadline) earliest() time.Time {
	if d.interrupted {
		return aLongTimeAgo
	}
	t := d.user
	if !d.poll.IsZero() && (t.IsZero() || d.poll.Before(t)) {
		t = d.poll
	}
	return t
}

// setDeadline changes one direction's deadline with f and applies the
// result to the transport.
func (c *Conn) setDeadline(read bool, f func(d *deadline)) error {
	if c == nil || c.t == nil {
		return errInvalidConn
	}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	d, set := &c.wdl, c.t.SetWriteDeadline
	if read {
		d, set = &c.rdl, c.t.SetReadDeadline
	}
	f(d)
	return set(d.earliest())
}

func newConn(t transport, canRead, canWrite bool, cfg *Config) *Conn {
	c := &Conn{
		t:        t,
		canRead:  canRead,
		canWrite: canWrite,
		codec:    cfg.codec(),
		limit:    cfg.limit(),
		fp:       passerOf(t),
		ack:      filesAlwaysAcked || !cfg.noFileAck(),
	}
	c.rlock.init()
	c.wlock.init()
	if canRead {
		var r io.Reader = t
		if c.fp != nil && filesAlwaysAcked {
			// Where sent files are held for the peer (Windows), Close
			// needs to know whether the peer's end is gone.
			r = peerWatch{c}
		}
		c.rd = frame.NewReader(r, cfg.bufferSize())
	}
	if canWrite {
		c.wr = frame.NewWriter(t)
	}
	return c
}

// Pipe returns a pair of connected Conns, like Python's
// multiprocessing.Pipe(duplex). If duplex is true both ends send and receive;
// otherwise the first end only receives and the second only sends.
func Pipe(duplex bool) (*Conn, *Conn, error) { return (*Config)(nil).Pipe(duplex) }

// Pipe is like the package-level [Pipe] with the settings of cfg.
func (cfg *Config) Pipe(duplex bool) (*Conn, *Conn, error) {
	a, b, err := newPair(duplex)
	if err != nil {
		return nil, nil, err
	}
	if duplex {
		return newConn(a, true, true, cfg), newConn(b, true, true, cfg), nil
	}
	return newConn(a, true, false, cfg), newConn(b, false, true, cfg), nil
}

// NewConn returns a Conn on f, an end of a byte stream made elsewhere (on
// Unix a stream socket or one end of a pipe; on Windows an end of a named or
// anonymous pipe, which needs to be opened for overlapped I/O for deadlines,
// contexts and Close to interrupt blocked calls; on one that is not, the
// deadline setters fail with [os.ErrNoDeadline] and a context's end does not
// interrupt a call already waiting). The Conn takes f over: f must not be
// used afterwards, and is closed if NewConn fails.
func NewConn(f *os.File) (*Conn, error) { return (*Config)(nil).NewConn(f) }

// NewConn is like the package-level [NewConn] with the settings of cfg.
func (cfg *Config) NewConn(f *os.File) (*Conn, error) {
	t, canRead, canWrite, err := fileTransport(f)
	if err != nil {
		return nil, err
	}
	return newConn(t, canRead, canWrite, cfg), nil
}

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooled is the largest buffer kept for reuse between messages.
const maxPooled = 64 << 10

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(bp *[]byte, b []byte) {
	if cap(b) <= maxPooled {
		*bp = b[:0]
		bufPool.Put(bp)
	}
}

// Send encodes v with the Conn's [Codec] and sends it as one message, like
// Python's send(obj).
func (c *Conn) Send(v any) error { return c.SendContext(context.Background(), v) }

// SendContext is like [Conn.Send], giving up when ctx is done.
func (c *Conn) SendContext(ctx context.Context, v any) error {
	if c == nil || !c.canWrite {
		return c.cannot(ErrReceiveOnly)
	}
	bp := getBuf()
	b, err := c.codec.AppendMarshal((*bp)[:0], v)
	if err != nil {
		return fmt.Errorf("procpipe: send: encoding %T: %w", v, err)
	}
	err = c.SendBytesContext(ctx, b)
	putBuf(bp, b)
	return err
}

// SendBytesBatch sends each of msgs as one message, in order, like as many
// calls to [Conn.SendBytes], but in as few system calls as it can: small
// messages are copied into a batch and each batch of up to 64 KiB is written
// at once. The messages of one call are never interleaved with those of
// other goroutines' sends; each message stays whole. The msgs may be
// modified once SendBytesBatch returns.
//
// It returns how many messages were sent. If any message is larger than
// the Conn's [Config.MaxMessageSize], none is sent and the error is a
// [*TooLargeError]. On another error, msgs[:n] were sent whole; if the failed
// write had written part of a message, the sending side is unusable (errors
// match [ErrBroken]).
func (c *Conn) SendBytesBatch(msgs [][]byte) (n int, err error) {
	if c == nil || !c.canWrite {
		return 0, c.cannot(ErrReceiveOnly)
	}
	if c.limit >= 0 {
		for _, p := range msgs {
			if int64(len(p)) > c.limit {
				return 0, &TooLargeError{Size: uint64(len(p)), Limit: c.limit}
			}
		}
	}
	c.lock(context.Background(), &c.wlock)
	defer c.unlock(&c.wlock)
	if c.closed.Load() {
		return 0, closedError("send")
	}
	n, err = c.wr.WriteFrames(msgs)
	return n, c.opError("send", nil, err)
}

// Recv receives one message and decodes it into v, which must be a non-nil
// pointer, like Python's recv(). It returns io.EOF when the peer has closed
// its end (or died) and no message is left.
func (c *Conn) Recv(v any) error { return c.RecvContext(context.Background(), v) }

// RecvContext is like [Conn.Recv], giving up when ctx is done.
func (c *Conn) RecvContext(ctx context.Context, v any) error {
	if err := decodeTarget("recv", v); err != nil {
		return err
	}
	if c == nil {
		return errInvalidConn
	}
	bp := getBuf()
	b, err := c.recv(ctx, (*bp)[:0], c.limit)
	if err == nil {
		if err = c.codec.Unmarshal(b, v); err != nil {
			err = fmt.Errorf("procpipe: recv: decoding a %d-byte message into %T: %w", len(b), v, err)
		}
	}
	putBuf(bp, b)
	return err
}

// decodeTarget returns an error unless v, into which a receive is to decode
// a message, is a non-nil pointer. Receives check it first: gob would decode
// into nil by discarding the message, and the others fail only after it is
// taken.
func decodeTarget(op string, v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("procpipe: %s: want a non-nil pointer to decode into, got %T; nothing received", op, v)
	}
	return nil
}

// RecvBytes receives one message and returns its bytes, like Python's
// recv_bytes(). It returns io.EOF when the peer has closed its end (or died)
// and no message is left.
func (c *Conn) RecvBytes() ([]byte, error) {
	if c == nil {
		return nil, errInvalidConn
	}
	return c.recv(context.Background(), nil, c.limit)
}

// RecvBytesMax is like [Conn.RecvBytes], but a message longer than maxLength
// bytes is discarded and reported as a [*TooLargeError], like Python's
// recv_bytes(maxlength). Unlike Python's, the Conn stays usable.
func (c *Conn) RecvBytesMax(maxLength int) ([]byte, error) {
	limit := int64(maxLength)
	if maxLength < 0 {
		return nil, fmt.Errorf("procpipe: recv: negative maximum length %d", maxLength)
	}
	if c == nil {
		return nil, errInvalidConn
	}
	if c.limit >= 0 && c.limit < limit {
		limit = c.limit
	}
	return c.recv(context.Background(), nil, limit)
}

// RecvBytesContext is like [Conn.RecvBytes], giving up when ctx is done; with
// ctx already done it takes nothing (a waiting message stays for the next
// receive).
// Giving up in the middle of a message larger than the receive buffer
// ([Config.ReadBufferSize]) leaves the receiving side unusable (errors match
// [ErrBroken]).
func (c *Conn) RecvBytesContext(ctx context.Context) ([]byte, error) {
	if c == nil {
		return nil, errInvalidConn
	}
	return c.recv(ctx, nil, c.limit)
}

func (c *Conn) recv(ctx context.Context, dst []byte, limit int64) ([]byte, error) {
	if c == nil || !c.canRead {
		return dst, c.cannot(ErrSendOnly)
	}
	if err := c.lock(ctx, &c.rlock); err != nil {
		return dst, fmt.Errorf("procpipe: recv: %w", err)
	}
	defer c.unlockRead()
	if c.closed.Load() {
		return dst, closedError("recv")
	}
	stop, err := c.interrupt(ctx, true)
	if err != nil {
		return dst, fmt.Errorf("procpipe: recv: %w", err)
	}
	err = c.filesAhead()
	if err == nil {
		dst, err = c.rd.ReadFrame(dst, limit)
	}
	stop()
	if err == ErrFilesNext {
		return dst, err
	}
	return dst, c.opError("recv", ctx, err)
}

// Poll reports whether a message (or the end of the stream) is waiting to be
// received, like Python's poll(timeout). It waits up to timeout for one: 0
// means do not wait, a negative timeout means wait as long as it takes. A
// read deadline set on the Conn also ends the wait, with an error. While
// another goroutine is receiving, Poll keeps to its timeout and answers from
// what was buffered when that goroutine took over (which it may be
// consuming) and what waits in the kernel; an acknowledgement of passed
// files counts as a message there.
func (c *Conn) Poll(timeout time.Duration) (bool, error) {
	if c == nil || !c.canRead {
		return false, c.cannot(ErrSendOnly)
	}
	var end time.Time // Poll's own time limit, if any
	switch {
	case timeout == 0:
		if !c.rlock.tryLock() {
			return c.pollBusy()
		}
	case timeout > 0:
		end = time.Now().Add(timeout)
		ctx, cancel := context.WithDeadline(context.Background(), end)
		err := c.lock(ctx, &c.rlock)
		cancel()
		if err != nil {
			// Another goroutine kept receiving throughout; a deadline
			// of the user's that passed meanwhile still counts.
			c.dmu.Lock()
			user := c.rdl.user
			c.dmu.Unlock()
			if !user.IsZero() && user.Before(end) {
				return false, c.opError("poll", context.Background(), os.ErrDeadlineExceeded)
			}
			return c.pollBusy()
		}
	default:
		c.rlock.lockUntil(nil)
	}
	defer c.unlockRead()
	if c.closed.Load() {
		return false, closedError("poll")
	}
	for armed := false; ; {
		ok, err := c.messageReady()
		if ok || (err == nil && timeout == 0) {
			return ok, nil
		}
		if err == nil {
			if timeout > 0 && !armed {
				c.setDeadline(true, func(d *deadline) { d.poll = end })
				defer c.setDeadline(true, func(d *deadline) { d.poll = time.Time{} })
				armed = true
			}
			if err = c.t.WaitReady(); err == nil {
				continue // ready: a message, or only acknowledgements
			}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && timeout > 0 && !time.Now().Before(end) {
			c.dmu.Lock()
			user := c.rdl.user
			c.dmu.Unlock()
			if user.IsZero() || end.Before(user) {
				return false, nil // the poll's own time limit
			}
		}
		return false, c.opError("poll", context.Background(), err)
	}
}

// messageReady reports whether a message (or the end of the stream, or an
// error the next receive reports) can be received without waiting. Data in
// the kernel's buffer may be only acknowledgements of files this end sent,
// which are no message: while one is expected, it reads that data in and
// consumes them, so that Poll and Wait do not promise a receive that would
// then block. A read deadline that has passed stops that read: then it
// reports not ready, with the deadline's error. The caller holds the
// receive lock.
func (c *Conn) messageReady() (bool, error) {
	for {
		if c.fp != nil && c.skipAcks(false) != nil {
			return true, nil // the next receive reports the error
		}
		if c.rd.Buffered() > 0 {
			return true, nil
		}
		ok, err := c.t.Ready()
		if err != nil || !ok || c.fp == nil || !c.acks.pending() {
			return ok, err
		}
		if err := c.rd.Fill(); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return false, err
			}
			return true, nil // the next receive reports it
		}
	}
}

// pollBusy is Poll's answer when another goroutine holds the receive lock:
// what is left in the receive buffer as that goroutine took it (rbuf) and
// what waits in the kernel's. An acknowledgement of passed files waiting in
// the kernel counts as a message here.
func (c *Conn) pollBusy() (bool, error) {
	if c.closed.Load() {
		return false, closedError("poll")
	}
	if c.rbuf.Load() {
		return true, nil
	}
	ok, err := c.t.Ready()
	return ok, c.opError("poll", context.Background(), err)
}

// SetDeadline sets the read and write deadlines, as [net.Conn] does: a Send
// or Recv still blocked at t fails with an error matching
// [os.ErrDeadlineExceeded] (on Linux, a deadline moved while a Recv is in
// its first millisecond of waiting takes effect within that millisecond).
// A zero t means no deadline. An expired deadline
// that interrupts a message larger than the kernel's buffer (when sending) or
// the receive buffer (when receiving) leaves that direction unusable.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for receiving and polling; see
// [Conn.SetDeadline].
func (c *Conn) SetReadDeadline(t time.Time) error {
	err := c.setDeadline(true, func(d *deadline) { d.user = t })
	return c.opError("set deadline", context.Background(), err)
}

// SetWriteDeadline sets the deadline for sending; see [Conn.SetDeadline].
func (c *Conn) SetWriteDeadline(t time.Time) error {
	err := c.setDeadline(false, func(d *deadline) { d.user = t })
	return c.opError("set deadline", context.Background(), err)
}

// Close closes the Conn, like Python's close(). Calls blocked in Send, Recv,
// Poll or [Wait] return an error matching [net.ErrClosed], as do later
// calls (on Linux, a Recv or Poll that began waiting less than a
// millisecond earlier may take up to that millisecond to see Close, or 10
// if the process has no descriptor left; see
// [github.com/procpipe/procpipe/unix.Conn]). Passed files received but not
// yet taken with [Conn.RecvFiles] are closed.
//
// On Windows, the private duplicates a [Conn.SendFiles] keeps for a peer
// that has not yet acknowledged them are closed only if this Conn has
// already met the end of the stream ([io.EOF] or [io.ErrUnexpectedEOF] from
// a receiving call, or from SendFiles waiting for the acknowledgement):
// the peer's end is then closed and takes nothing more. Otherwise they stay
// open until the process exits, because the peer may still duplicate their
// values, and a value closed here could meanwhile name an unrelated handle.
// A RecvFiles duplicating handles out of the peer finishes before Close
// closes the pipe, and none starts after.
//
// Close may be called more than once; calls after the first return nil.
func (c *Conn) Close() error {
	if c == nil || c.t == nil {
		return errInvalidConn
	}
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		// Before the transport closes, so that once the peer sees this
		// end gone nothing here duplicates out of it any more.
		c.pulls.close()
		// Before too: a Wait holds the descriptor, and closing it waits
		// until the Wait lets go.
		c.waits.close()
		err = c.t.Close()
		c.acks.close()
	})
	return err
}

// lock takes a receive or send lock, giving up when ctx (if not nil) is
// done.
func (c *Conn) lock(ctx context.Context, l *ctxMutex) error { return l.lock(ctx) }

func (c *Conn) unlock(l *ctxMutex) { l.unlock() }

// errInvalidConn is the error of a method called on a nil *Conn or a zero
// Conn, which only Pipe, NewConn, Parent, Dial and Accept make usable (as
// with a nil *os.File or *net.UnixConn).
var errInvalidConn = fmt.Errorf("procpipe: nil or zero Conn: %w", os.ErrInvalid)

// cannot returns the error of a call c cannot make: errInvalidConn for a
// nil or zero Conn, else dir (a one-way end used in its other direction).
func (c *Conn) cannot(dir error) error {
	if c == nil || c.t == nil {
		return errInvalidConn
	}
	return dir
}

// aLongTimeAgo is a deadline in the past, which interrupts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// interrupt makes ctx's end interrupt the I/O in progress on one side by
// moving that side's deadline into the past, whatever else sets it, until
// the returned function is called. If ctx is
// already done it returns ctx's error instead, and the call must not start.
// The caller holds the side's lock.
func (c *Conn) interrupt(ctx context.Context, read bool) (func(), error) {
	if ctx == nil || ctx.Done() == nil {
		return func() {}, nil
	}
	if err := ctx.Err(); err != nil {
		// Already done: the call must not start (the function below
		// would run only after the call could have completed).
		return nil, err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.setDeadline(read, func(d *deadline) { d.interrupted = true })
		close(fired)
	})
	return func() {
		if !stop() {
			<-fired
			c.setDeadline(read, func(d *deadline) { d.interrupted = false })
		}
	}, nil
}

func closedError(op string) error {
	return fmt.Errorf("procpipe: %s: %w", op, net.ErrClosed)
}

// opError turns a transport's error into the one the API promises.
func (c *Conn) opError(op string, ctx context.Context, err error) error {
	if err == nil {
		return nil // first and alone: inlined, it costs one comparison
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return err
	}
	return c.translate(op, ctx, err)
}

// translate is opError's work for a real error, apart so that the variables
// errors.As needs (which escape) are not allocated on every call.
func (c *Conn) translate(op string, ctx context.Context, err error) error {
	if c == nil || c.t == nil {
		return err // errInvalidConn
	}
	var (
		tooLarge *TooLargeError
		tooShort *BufferTooShortError
		protocol *ProtocolError
	)
	switch {
	case c.closed.Load():
		return closedError(op)
	case ctx != nil && ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("procpipe: %s: %w", op, ctx.Err())
	case errors.As(err, &tooLarge) || errors.As(err, &tooShort) || errors.As(err, &protocol) || errors.Is(err, ErrBroken):
		return err
	case isPeerGone(err):
		return fmt.Errorf("procpipe: %s: %w (%w)", op, ErrPeerGone, err)
	}
	return fmt.Errorf("procpipe: %s: %w", op, err)
}

// The rest of this file is a small message's path through a Conn, and the
// locks it takes, kept together: the linker lays out a package's functions
// in file and source order, and where every system call empties the TLB (see
// unix/iov_linux.go) each page of code a message's path touches between
// two calls costs a refill. With frame and unix laid out alike, the hot code
// of the three packages went from 12 pages to 5 in the test binary, and
// one-CPU round trips got about 1% faster (docs/rtt-pinned-profile.md).

// SendBytes sends p as one message, like Python's send_bytes(buf); slice p
// for Python's offset and size. p may be modified once SendBytes returns.
func (c *Conn) SendBytes(p []byte) error { return c.sendBytes(context.Background(), nil, p) }

// SendBytesContext is like [Conn.SendBytes], giving up when ctx is done; with
// ctx already done it sends nothing.
// Giving up after part of a message larger than the kernel's buffer was
// written leaves the sending side unusable (errors match [ErrBroken]).
func (c *Conn) SendBytesContext(ctx context.Context, p []byte) error {
	if ctx == nil {
		ctx = context.Background()
	}
	return c.sendBytes(ctx, ctx.Done(), p)
}

// sendBytes is SendBytesContext given ctx's Done channel, nil for a ctx that
// can never be done: then the context's bookkeeping is skipped, and
// SendBytes, which knows its ctx cannot be done, does not even ask (the
// call through the interface touched two more pages of memory, a cost on
// small messages, see unix/iov_linux.go). The lock is released without a
// defer: nothing under it panics.
func (c *Conn) sendBytes(ctx context.Context, done <-chan struct{}, p []byte) error {
	if c == nil || !c.canWrite {
		return c.cannot(ErrReceiveOnly)
	}
	if c.limit >= 0 && int64(len(p)) > c.limit {
		return &TooLargeError{Size: uint64(len(p)), Limit: c.limit}
	}
	if !c.wlock.lockUntil(done) {
		return fmt.Errorf("procpipe: send: %w", ctx.Err())
	}
	if c.closed.Load() {
		c.wlock.unlock()
		return closedError("send")
	}
	var err error
	if done == nil {
		var ok bool
		if ok, err = c.wr.TryWriteFrame(p); !ok {
			err = c.wr.WriteFrame(p)
		}
	} else {
		var stop func()
		if stop, err = c.interrupt(ctx, false); err == nil {
			err = c.wr.WriteFrame(p)
			stop()
		}
		if err != nil && stop == nil {
			c.wlock.unlock()
			return fmt.Errorf("procpipe: send: %w", err)
		}
	}
	c.wlock.unlock()
	return c.opError("send", ctx, err)
}

// RecvBytesInto receives one message into p and returns its length, like
// Python's recv_bytes_into(buf); slice p for Python's offset. A message
// longer than p is returned whole in a [*BufferTooShortError].
func (c *Conn) RecvBytesInto(p []byte) (int, error) {
	if c == nil || !c.canRead {
		return 0, c.cannot(ErrSendOnly)
	}
	c.rlock.lockUntil(nil)
	if c.closed.Load() {
		c.unlockRead()
		return 0, closedError("recv")
	}
	if c.fp != nil {
		if err := c.filesAhead(); err != nil {
			c.unlockRead()
			if err == ErrFilesNext {
				return 0, err
			}
			return 0, c.opError("recv", nil, err)
		}
	}
	// Unlocked without a defer, as in sendBytes.
	if n, ok := c.rd.TryReadFrameInto(p, c.limit); ok {
		c.unlockRead()
		return n, nil
	}
	n, err := c.rd.ReadFrameInto(p, c.limit)
	c.unlockRead()
	return n, c.opError("recv", nil, err)
}

// unlockRead releases the receive lock, first noting in rbuf whether the
// receive buffer holds bytes (stored only when that changed: on a small
// message's path every instruction counts).
func (c *Conn) unlockRead() {
	if b := c.rd.Buffered() > 0; b != c.rbuf.Load() {
		c.rbuf.Store(b)
	}
	c.rlock.unlock()
}

// A ctxMutex serialises a Conn's sends, or its receives. It is a sync.Mutex,
// whose uncontended Lock and Unlock cost a few nanoseconds (a channel used
// as a lock cost about 40 ns a message, a good part of a small message's
// cost), with a way for a waiter holding a context to give up.
type ctxMutex struct {
	mu      sync.Mutex
	waiters atomic.Int32  // goroutines waiting in lock with a context
	wake    chan struct{} // capacity 1: a token that wakes one of them
}

// init readies a zero ctxMutex for use.
func (m *ctxMutex) init() { m.wake = make(chan struct{}, 1) }

// lock takes m, giving up when ctx (if not nil) is done. Uncontended, it
// does not look at ctx (on a small message's path every call counts).
func (m *ctxMutex) lock(ctx context.Context) error {
	if m.mu.TryLock() {
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if !m.lockUntil(ctx.Done()) {
		return ctx.Err()
	}
	return nil
}

// tryLock takes m if it is free.
func (m *ctxMutex) tryLock() bool { return m.mu.TryLock() }

// lockUntil takes m and returns true, or returns false once done (if not
// nil) is closed.
func (m *ctxMutex) lockUntil(done <-chan struct{}) bool {
	if m.mu.TryLock() {
		return true
	}
	if done == nil {
		m.mu.Lock()
		return true
	}
	// Counted before trying: an unlock that follows a failed TryLock then
	// sees the count and leaves a token, so no wake-up is lost. A stale
	// token only costs a waiter one more TryLock.
	m.waiters.Add(1)
	defer m.waiters.Add(-1)
	for {
		if m.mu.TryLock() {
			return true
		}
		select {
		case <-m.wake:
		case <-done:
			return false
		}
	}
}

func (m *ctxMutex) unlock() {
	m.mu.Unlock()
	if m.waiters.Load() > 0 {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}
