package procpipe

import (
	"context"
	"sync"
	"sync/atomic"
)

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
