package procpipe_test

import (
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/procpipe/procpipe"
)

// TestSendBytesBatchConcurrent has several goroutines send batches of
// checksummed messages of mixed sizes (some copied into the batch, some
// written on their own) at once: every message must arrive whole, once, and
// in its sender's order.
func TestSendBytesBatchConcurrent(t *testing.T) {
	a, b := pipe(t, nil)
	const senders, batches, perBatch = 4, 20, 50
	sizes := []int{0, 1, 16, 100, 5000, 70000}
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := 0
			for range batches {
				msgs := make([][]byte, perBatch)
				for i := range msgs {
					msgs[i] = message(s, seq, sizes[seq%len(sizes)])
					seq++
				}
				if n, err := a.SendBytesBatch(msgs); err != nil || n != len(msgs) {
					t.Errorf("SendBytesBatch = %d, %v", n, err)
					return
				}
			}
		}()
	}
	next := make([]int, senders)
	for range senders * batches * perBatch {
		m, err := b.RecvBytes()
		if err != nil {
			t.Fatal(err)
		}
		s, seq, err := parseMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		if seq != next[s] {
			t.Fatalf("sender %d: got message %d; want %d", s, seq, next[s])
		}
		next[s]++
	}
	wg.Wait()
}

func TestSendBytesBatchErrors(t *testing.T) {
	r, w, err := procpipe.Pipe(false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := r.SendBytesBatch([][]byte{{1}}); !errors.Is(err, procpipe.ErrReceiveOnly) {
		t.Errorf("on receiving end: %v; want ErrReceiveOnly", err)
	}
	c, d := pipe(t, &procpipe.Config{MaxMessageSize: 10})
	n, err := c.SendBytesBatch([][]byte{{1}, make([]byte, 11)})
	var tl *procpipe.TooLargeError
	if n != 0 || !errors.As(err, &tl) {
		t.Errorf("oversized batch = %d, %v; want 0, *TooLargeError", n, err)
	}
	if n, err := c.SendBytesBatch(nil); n != 0 || err != nil {
		t.Errorf("empty batch = %d, %v", n, err)
	}
	if _, err := c.SendBytesBatch([][]byte{{7}, {}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{1, 0} {
		if m, err := d.RecvBytes(); err != nil || len(m) != want {
			t.Fatalf("RecvBytes = %v, %v; want %d bytes", m, err, want)
		}
	}
	c.Close()
	if _, err := c.SendBytesBatch([][]byte{{1}}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("after Close: %v; want net.ErrClosed", err)
	}
}
