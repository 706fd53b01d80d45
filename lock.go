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

func newCtxMutex() *ctxMutex { return &ctxMutex{wake: make(chan struct{}, 1)} }

// lock takes m, giving up when ctx (if not nil) is done.
func (m *ctxMutex) lock(ctx context.Context) error {
	if m.mu.TryLock() {
		return nil
	}
	if ctx == nil || ctx.Done() == nil {
		m.mu.Lock()
		return nil
	}
	// Counted before trying: an unlock that follows a failed TryLock then
	// sees the count and leaves a token, so no wake-up is lost. A stale
	// token only costs a waiter one more TryLock.
	m.waiters.Add(1)
	defer m.waiters.Add(-1)
	for {
		if m.mu.TryLock() {
			return nil
		}
		select {
		case <-m.wake:
		case <-ctx.Done():
			return ctx.Err()
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
