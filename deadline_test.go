package procpipe

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// deadlineRecorder remembers the read deadline last set on a transport.
type deadlineRecorder struct {
	transport
	mu sync.Mutex
	rd time.Time
}

func (r *deadlineRecorder) SetReadDeadline(t time.Time) error {
	r.mu.Lock()
	r.rd = t
	r.mu.Unlock()
	return r.transport.SetReadDeadline(t)
}

func (r *deadlineRecorder) read() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rd
}

// TestDeadlineSettersCompose sets the user's read deadline while a context
// interrupts a call: the interruption must stay in force (otherwise a call
// not yet woken by it parks again with no deadline), and its end must leave
// the user's deadline.
func TestDeadlineSettersCompose(t *testing.T) {
	a, b, err := Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	rec := &deadlineRecorder{transport: b.t}
	b.t = rec
	ctx, cancel := context.WithCancel(context.Background())
	end, err := b.interrupt(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	for stop := time.Now().Add(10 * time.Second); !rec.read().Equal(aLongTimeAgo); runtime.Gosched() {
		if time.Now().After(stop) {
			t.Fatal("the cancelled context did not move the read deadline into the past")
		}
	}
	user := time.Now().Add(time.Hour)
	b.SetReadDeadline(user)
	if got := rec.read(); !got.Equal(aLongTimeAgo) {
		t.Errorf("SetReadDeadline during an interruption set %v; want the interruption's %v kept", got, aLongTimeAgo)
	}
	end()
	if got := rec.read(); !got.Equal(user) {
		t.Errorf("after the interruption the read deadline is %v; want the user's %v", got, user)
	}
}
