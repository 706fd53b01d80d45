package procpipe

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Wait waits until at least one of conns has a message (or the end of its
// stream) ready to receive, and returns those that have, in the order given,
// like Python's multiprocessing.connection.wait. A negative timeout waits as
// long as it takes; after timeout it returns an empty list and no error.
// conns may mix duplex and receive-only ends; a send-only end is an error.
//
// While another goroutine receives from a Conn (a SendFiles waiting for its
// acknowledgement included), Wait may report it for data that goroutine then
// takes, as Poll may.
//
// Wait watches all the Conns from one system call, not a goroutine each, so
// it serves thousands of Conns. Closing one of them, from any goroutine,
// stops the wait, which then returns the Conns already ready, or if none an
// error matching [net.ErrClosed].
func Wait(conns []*Conn, timeout time.Duration) ([]*Conn, error) {
	if timeout == 0 {
		return wait(context.Background(), conns, true)
	}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	ready, err := wait(ctx, conns, false)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, nil
	}
	return ready, err
}

// WaitContext is like [Wait], waiting until ctx is done, and then returning
// ctx's error.
func WaitContext(ctx context.Context, conns []*Conn) ([]*Conn, error) {
	return wait(ctx, conns, false)
}

// wait returns the ready conns, waiting for one until ctx is done unless now
// is true.
func wait(ctx context.Context, conns []*Conn, now bool) ([]*Conn, error) {
	var ready []*Conn
	for _, c := range conns {
		if c == nil || !c.canRead {
			return nil, c.cannot(ErrSendOnly)
		}
		if c.closed.Load() {
			return nil, closedError("wait")
		}
		if c.buffered() {
			ready = append(ready, c)
		}
	}
	// A look at the kernel's buffers first: a Conn that is ready now needs
	// none of what waiting takes (a wake-up pipe or event, and a
	// registration on every Conn).
	others, err := waitReady(context.Background(), conns, true)
	if err != nil {
		return nil, err
	}
	others = messagesOnly(others)
	if len(ready) > 0 || len(others) > 0 || now {
		return merge(conns, ready, others), nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	call := &waitCall{cancel}
	defer func() {
		for _, c := range conns {
			c.waits.remove(call)
		}
	}()
	for _, c := range conns {
		if !c.waits.add(call) {
			return nil, closedError("wait")
		}
	}
	for {
		ready, err = waitReady(ctx, conns, false)
		if len(ready) == 0 && context.Cause(ctx) == errWaitClosed {
			return nil, closedError("wait")
		}
		if err != nil {
			return ready, err
		}
		if ready = messagesOnly(ready); len(ready) > 0 {
			return ready, nil
		}
		// Only acknowledgements had arrived, now taken in: wait again.
	}
}

// messagesOnly drops from ready, a list of Conns the kernel reported ready
// that its caller owns, those whose data turns out to be only
// acknowledgements of files they sent (see messageReady), taking those in.
// It looks again at every Conn that has ever sent files, as an
// acknowledgement may also have been taken since the kernel's answer (by a
// SendFiles waiting for it). A Conn another goroutine is receiving from
// stays: that goroutine takes them. So does one whose passed read deadline
// stopped the look (its receive fails at once; dropping it would make the
// wait spin). It filters ready in place.
func messagesOnly(ready []*Conn) []*Conn {
	out := ready[:0]
	for _, c := range ready {
		if c.fp != nil && c.acks.expected.Load() > 0 && c.rlock.tryLock() {
			ok, err := c.messageReady()
			c.unlockRead()
			if !ok && err == nil {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// errWaitClosed is the cause with which Close stops a Wait.
var errWaitClosed = errors.New("a conn was closed")

// A waitCall is one call to Wait, which cancel stops.
type waitCall struct{ cancel context.CancelCauseFunc }

// waiters are the calls to Wait watching a Conn.
type waiters struct {
	mu     sync.Mutex
	closed bool
	calls  map[*waitCall]struct{}
}

// add registers w, unless the Conn is closed, and reports whether it did.
func (ws *waiters) add(w *waitCall) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return false
	}
	if ws.calls == nil {
		ws.calls = make(map[*waitCall]struct{})
	}
	ws.calls[w] = struct{}{}
	return true
}

func (ws *waiters) remove(w *waitCall) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	delete(ws.calls, w)
}

// close stops every call registered and any registered later.
func (ws *waiters) close() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.closed = true
	for w := range ws.calls {
		w.cancel(errWaitClosed)
	}
	ws.calls = nil
}

// buffered reports whether c has received bytes it has not handed out yet.
// For a Conn whose receive lock another goroutine holds, it reports what
// was buffered when the lock was last released; the system call looks at
// the kernel's buffer.
func (c *Conn) buffered() bool {
	if !c.rlock.tryLock() {
		return c.rbuf.Load()
	}
	defer c.unlockRead()
	if c.fp != nil && c.skipAcks(false) != nil {
		return true // the next receive reports the error
	}
	return c.rd.Buffered() > 0
}

// merge returns the members of all that are in a or b, in all's order.
func merge(all, a, b []*Conn) []*Conn {
	if len(a) == 0 {
		return b // waitReady's answer is in all's order already
	}
	in := make(map[*Conn]bool, len(a)+len(b))
	for _, c := range a {
		in[c] = true
	}
	for _, c := range b {
		in[c] = true
	}
	var out []*Conn
	for _, c := range all {
		if in[c] {
			out = append(out, c)
			delete(in, c)
		}
	}
	return out
}
