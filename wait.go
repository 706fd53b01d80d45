package procpipe

import (
	"context"
	"errors"
	"time"
)

// Wait waits until at least one of conns has a message (or the end of its
// stream) ready to receive, and returns those that have, in the order given,
// like Python's multiprocessing.connection.wait. A negative timeout waits as
// long as it takes; after timeout it returns an empty list and no error.
// conns may mix duplex and receive-only ends; a send-only end is an error.
//
// Wait watches all the Conns from one system call, not a goroutine each, so
// it serves thousands of Conns. Closing a Conn does not wake it: use
// [WaitContext] to stop waiting.
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
		if !c.canRead {
			return nil, ErrSendOnly
		}
		if c.closed.Load() {
			return nil, closedError("wait")
		}
		if c.buffered() {
			ready = append(ready, c)
		}
	}
	if len(ready) > 0 || now {
		// Report the others that are ready now too, without waiting.
		others, err := waitReady(context.Background(), conns, true)
		if err != nil {
			return nil, err
		}
		return merge(conns, ready, others), nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return waitReady(ctx, conns, false)
}

// buffered reports whether c has received bytes it has not handed out yet.
// A Conn whose receive lock another goroutine holds reports false: the
// system call looks at it instead.
func (c *Conn) buffered() bool {
	if !c.rlock.tryLock() {
		return false
	}
	defer c.unlock(&c.rlock)
	return c.rd.Buffered() > 0
}

// merge returns the members of all that are in a or b, in all's order.
func merge(all, a, b []*Conn) []*Conn {
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
