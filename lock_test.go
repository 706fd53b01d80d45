package procpipe

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestCtxMutex checks mutual exclusion among waiters with and without
// contexts, and that a waiter whose context ends gives up.
func TestCtxMutex(t *testing.T) {
	m := new(ctxMutex)
	m.init()
	var (
		wg      sync.WaitGroup
		inside  int
		counter int
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				var ctx context.Context
				if g%2 == 0 {
					ctx = context.Background()
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
				}
				if err := m.lock(ctx); err != nil {
					t.Error(err)
					return
				}
				inside++
				if inside != 1 {
					t.Errorf("%d goroutines hold the lock", inside)
				}
				counter++
				inside--
				m.unlock()
			}
		}()
	}
	wg.Wait()
	if counter != 8*2000 {
		t.Fatalf("counter = %d", counter)
	}

	m.lock(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := m.lock(ctx); err != context.DeadlineExceeded {
		t.Fatalf("lock of a held mutex with an ending context = %v", err)
	}
	done := make(chan error)
	go func() { done <- m.lock(context.Background()) }()
	m.unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m.unlock()
}
