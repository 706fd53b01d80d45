package procpipe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/procpipe/procpipe"
)

func TestDuplexBothWays(t *testing.T) {
	a, b := pipe(t, nil)
	for _, n := range []int{0, 1, 100, 64 << 10, 1 << 20} {
		go a.SendBytes(pattern(n))
		got, err := b.RecvBytes()
		if err != nil || !bytes.Equal(got, pattern(n)) {
			t.Fatalf("a->b %d bytes: %v", n, err)
		}
		go b.SendBytes(pattern(n))
		got, err = a.RecvBytes()
		if err != nil || !bytes.Equal(got, pattern(n)) {
			t.Fatalf("b->a %d bytes: %v", n, err)
		}
	}
}

func TestOneWay(t *testing.T) {
	r, w, err := procpipe.Pipe(false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := r.Send("x"); !errors.Is(err, procpipe.ErrReceiveOnly) {
		t.Errorf("Send on receiving end = %v; want ErrReceiveOnly", err)
	}
	if err := r.SendBytes(nil); !errors.Is(err, procpipe.ErrReceiveOnly) {
		t.Errorf("SendBytes on receiving end = %v; want ErrReceiveOnly", err)
	}
	if _, err := w.RecvBytes(); !errors.Is(err, procpipe.ErrSendOnly) {
		t.Errorf("RecvBytes on sending end = %v; want ErrSendOnly", err)
	}
	if _, err := w.Poll(0); !errors.Is(err, procpipe.ErrSendOnly) {
		t.Errorf("Poll on sending end = %v; want ErrSendOnly", err)
	}
	if err := w.Send(map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := r.Recv(&got); err != nil || got["a"] != 1 {
		t.Fatalf("Recv = %v, %v", got, err)
	}
	big := pattern(3 << 20) // more than a pipe holds
	go w.SendBytes(big)
	if b, err := r.RecvBytes(); err != nil || !bytes.Equal(b, big) {
		t.Fatalf("RecvBytes of %d bytes: %v", len(big), err)
	}
	w.Close()
	if _, err := r.RecvBytes(); err != io.EOF {
		t.Fatalf("RecvBytes after writer closed = %v; want io.EOF", err)
	}
}

type record struct {
	Name  string
	Count int64
	Tags  []string
	Data  []byte
	Inner map[string]float64
}

func TestCodecs(t *testing.T) {
	want := record{Name: "x", Count: 1 << 40, Tags: []string{"a", "b"}, Data: []byte{0, 1, 255}, Inner: map[string]float64{"pi": 3.14}}
	for name, codec := range map[string]procpipe.Codec{"gob": procpipe.Gob, "json": procpipe.JSON} {
		a, b := pipe(t, &procpipe.Config{Codec: codec})
		if err := a.Send(want); err != nil {
			t.Fatal(err)
		}
		var got record
		if err := b.Recv(&got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", name, diff)
		}
		// A value that does not decode into the target is an error, and
		// the next message still arrives.
		a.Send("text")
		a.Send(7)
		var n int
		if err := b.Recv(&n); err == nil {
			t.Errorf("%s: decoding a string into an int succeeded", name)
		}
		if err := b.Recv(&n); err != nil || n != 7 {
			t.Errorf("%s: next Recv = %d, %v", name, n, err)
		}
	}
	a, _ := pipe(t, nil)
	if err := a.Send(make(chan int)); err == nil {
		t.Error("sending a channel succeeded")
	}
}

func TestJSONIsPlainJSON(t *testing.T) {
	a, b := pipe(t, &procpipe.Config{Codec: procpipe.JSON})
	a.Send(map[string]any{"k": []int{1, 2}, "h": "<&>"})
	got, err := b.RecvBytes()
	if err != nil || string(got) != `{"h":"<&>","k":[1,2]}` {
		t.Fatalf("JSON payload = %q, %v", got, err)
	}
}

func TestRecvBytesInto(t *testing.T) {
	a, b := pipe(t, nil)
	a.SendBytes([]byte("hello"))
	a.SendBytes(pattern(100))
	a.SendBytes([]byte("next"))
	buf := make([]byte, 10)
	if n, err := b.RecvBytesInto(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("RecvBytesInto = %q, %v", buf[:n], err)
	}
	_, err := b.RecvBytesInto(buf)
	var short *procpipe.BufferTooShortError
	if !errors.As(err, &short) || !bytes.Equal(short.Msg, pattern(100)) {
		t.Fatalf("RecvBytesInto of 100 bytes into 10 = %v; want BufferTooShortError with the message", err)
	}
	if n, err := b.RecvBytesInto(buf); err != nil || string(buf[:n]) != "next" {
		t.Fatalf("RecvBytesInto after short buffer = %q, %v", buf[:n], err)
	}
}

func TestRecvBytesMax(t *testing.T) {
	a, b := pipe(t, nil)
	a.SendBytes(pattern(2000))
	a.SendBytes([]byte("next"))
	_, err := b.RecvBytesMax(1000)
	var tl *procpipe.TooLargeError
	if !errors.As(err, &tl) || tl.Size != 2000 || tl.Limit != 1000 {
		t.Fatalf("RecvBytesMax(1000) of 2000 bytes = %v; want TooLargeError{2000, 1000}", err)
	}
	if got, err := b.RecvBytesMax(1000); err != nil || string(got) != "next" {
		t.Fatalf("next RecvBytesMax = %q, %v", got, err)
	}
}

func TestSendLimit(t *testing.T) {
	a, _ := pipe(t, &procpipe.Config{MaxMessageSize: 10})
	var tl *procpipe.TooLargeError
	if err := a.SendBytes(make([]byte, 11)); !errors.As(err, &tl) || tl.Size != 11 || tl.Limit != 10 {
		t.Fatalf("SendBytes of 11 bytes with limit 10 = %v", err)
	}
}

func TestPoll(t *testing.T) {
	a, b := pipe(t, nil)
	if ok, err := b.Poll(0); ok || err != nil {
		t.Fatalf("Poll(0) on empty conn = %v, %v", ok, err)
	}
	if ok, err := b.Poll(time.Millisecond); ok || err != nil {
		t.Fatalf("Poll(1ms) on empty conn = %v, %v", ok, err)
	}
	a.SendBytes([]byte("x"))
	if ok, err := b.Poll(-1); !ok || err != nil {
		t.Fatalf("Poll(-1) with a message waiting = %v, %v", ok, err)
	}
	if ok, err := b.Poll(0); !ok || err != nil {
		t.Fatalf("Poll(0) with a message waiting = %v, %v", ok, err)
	}
	b.RecvBytes()
	// A message sent while Poll waits wakes it.
	go a.SendBytes([]byte("y"))
	if ok, err := b.Poll(time.Hour); !ok || err != nil {
		t.Fatalf("Poll(1h) = %v, %v", ok, err)
	}
	b.RecvBytes()
	// The end of the stream counts as ready, as in Python.
	a.Close()
	if ok, err := b.Poll(time.Hour); !ok || err != nil {
		t.Fatalf("Poll after peer closed = %v, %v", ok, err)
	}
	if _, err := b.RecvBytes(); err != io.EOF {
		t.Fatalf("RecvBytes after peer closed = %v; want io.EOF", err)
	}
}

func TestPollKeepsUserDeadline(t *testing.T) {
	a, b := pipe(t, nil)
	b.SetReadDeadline(time.Now().Add(-time.Second))
	if ok, err := b.Poll(time.Hour); ok || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Poll past the read deadline = %v, %v; want a deadline error", ok, err)
	}
	// Poll's own timeout must not replace the user's deadline.
	b.Poll(time.Millisecond)
	if _, err := b.RecvBytes(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("RecvBytes after Poll = %v; want the user's deadline", err)
	}
	b.SetReadDeadline(time.Time{})
	a.SendBytes([]byte("z"))
	if got, err := b.RecvBytes(); err != nil || string(got) != "z" {
		t.Fatalf("RecvBytes after clearing the deadline = %q, %v", got, err)
	}
}

// TestPollBesideRecv polls a Conn on which another goroutine waits in
// RecvBytes: Poll's time limit must hold, as the receive lock is busy.
func TestPollBesideRecv(t *testing.T) {
	for _, duplex := range []bool{true, false} {
		a, b, err := procpipe.Pipe(duplex)
		if err != nil {
			t.Fatal(err)
		}
		if !duplex {
			a, b = b, a // a sends, b receives
		}
		got := make(chan string, 1)
		go func() {
			m, _ := b.RecvBytes()
			got <- string(m)
		}()
		inStack(t, "(*Conn).RecvBytes(", "runtime_pollWait(")
		for _, timeout := range []time.Duration{0, 20 * time.Millisecond} {
			res := make(chan error, 1)
			go func() {
				ok, err := b.Poll(timeout)
				if ok {
					err = errors.New("ready")
				}
				res <- err
			}()
			select {
			case err := <-res:
				if err != nil {
					t.Errorf("duplex %v: Poll(%v) beside a waiting RecvBytes = %v; want false, nil", duplex, timeout, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("duplex %v: Poll(%v) beside a waiting RecvBytes still waiting after 10s", duplex, timeout)
			}
		}
		a.SendBytes([]byte("m"))
		if m := <-got; m != "m" {
			t.Errorf("duplex %v: RecvBytes = %q; want \"m\"", duplex, m)
		}
		a.Close()
		b.Close()
	}
}

// TestPollsTogether polls a Conn whose second message waits in its receive
// buffer (the kernel's is empty) from several goroutines at once: each must
// see it, though the others hold the receive lock at times.
func TestPollsTogether(t *testing.T) {
	a, b := pipe(t, nil)
	a.SendBytes([]byte("first"))
	a.SendBytes([]byte("second"))
	if _, err := b.RecvBytes(); err != nil { // reads both into the buffer
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var missed atomic.Int64
	for range 4 {
		wg.Go(func() {
			for range 5000 {
				if ok, err := b.Poll(0); !ok || err != nil {
					missed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := missed.Load(); n > 0 {
		t.Errorf("%d of 20000 concurrent Poll(0) calls missed the buffered message", n)
	}
	if got, err := b.RecvBytes(); err != nil || string(got) != "second" {
		t.Errorf("RecvBytes = %q, %v; want \"second\"", got, err)
	}
}

// TestPollBesideSetReadDeadline changes the read deadline while Poll waits:
// Poll's own time limit must still end the wait. The deadline must change
// while Poll is parked, so a machine too slow to see that within Poll's limit
// (an emulator, say) tries again with a longer one.
func TestPollBesideSetReadDeadline(t *testing.T) {
	for _, later := range []time.Time{{}, time.Now().Add(time.Hour)} {
		_, b := pipe(t, nil)
		for limit := 50 * time.Millisecond; ; limit *= 4 {
			if limit > 15*time.Second {
				t.Fatal("Poll never seen parked, though it waited its whole limit each time")
			}
			res := make(chan error, 1)
			start := time.Now()
			go func() {
				ok, err := b.Poll(limit)
				if ok {
					err = errors.New("ready")
				}
				res <- err
			}()
			if !stackReached(res, "(*Conn).Poll(", "runtime_pollWait(") {
				select {
				case err := <-res:
					if took := time.Since(start); took < limit {
						t.Fatalf("Poll(%v) returned after %v", limit, took)
					}
					if err != nil {
						t.Fatalf("Poll(%v) = %v; want false, nil", limit, err)
					}
					continue // too slow to see it parked: a longer limit
				default:
					t.Fatalf("Poll(%v) still waiting, but no goroutine reached (*Conn).Poll( and runtime_pollWait( in 10s", limit)
				}
			}
			b.SetReadDeadline(later)
			if time.Since(start) >= limit {
				// Poll's limit may have passed before the deadline
				// changed, which then tested nothing.
				if err := <-res; err != nil {
					t.Fatalf("Poll(%v) = %v; want false, nil", limit, err)
				}
				continue
			}
			select {
			case err := <-res:
				if err != nil {
					t.Errorf("Poll(%v) with the read deadline set to %v meanwhile = %v; want false, nil", limit, later, err)
				}
			case <-time.After(limit + 10*time.Second):
				t.Fatalf("Poll(%v) with the read deadline set to %v meanwhile still waiting after %v", limit, later, limit+10*time.Second)
			}
			break
		}
	}
}

func TestDeadlines(t *testing.T) {
	a, b := pipe(t, nil)
	b.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := b.RecvBytes(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("RecvBytes with nothing to read = %v; want os.ErrDeadlineExceeded", err)
	}
	b.SetReadDeadline(time.Time{})
	a.SendBytes([]byte("after"))
	if got, err := b.RecvBytes(); err != nil || string(got) != "after" {
		t.Fatalf("RecvBytes after deadline = %q, %v; the conn must stay usable", got, err)
	}
	// A sender whose peer does not read blocks, then honours its deadline.
	a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	var err error
	for err == nil {
		err = a.SendBytes(make([]byte, 64<<10))
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("SendBytes to a full pipe = %v; want os.ErrDeadlineExceeded", err)
	}
}

// TestContextWaitingForSendLock checks a SendBytesContext that waits for
// the send lock another send holds: it gives up when its context is done and
// sends nothing, and with a nil context it waits as SendBytes does.
func TestContextWaitingForSendLock(t *testing.T) {
	a, b := pipe(t, nil)
	unlock := procpipe.LockSendForTest(a)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := a.SendBytesContext(ctx, []byte("timed out")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendBytesContext waiting for the lock past its deadline = %v", err)
	}
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := a.SendBytesContext(cancelled, []byte("cancelled")); !errors.Is(err, context.Canceled) {
		t.Fatalf("SendBytesContext waiting for the lock, context already done = %v", err)
	}
	done := make(chan error, 1)
	go func() {
		//lint:ignore SA1012 a nil context is documented to mean Background
		done <- a.SendBytesContext(nil, []byte("after"))
	}()
	if ok, err := b.Poll(0); ok || err != nil {
		t.Fatalf("Poll with the send lock held = %v, %v; want nothing sent", ok, err)
	}
	unlock()
	if err := <-done; err != nil {
		t.Fatalf("SendBytesContext(nil) once the lock was free = %v", err)
	}
	if m, err := b.RecvBytes(); string(m) != "after" || err != nil {
		t.Fatalf("RecvBytes = %q, %v; want only the message sent after the lock was free", m, err)
	}
	if ok, err := b.Poll(0); ok || err != nil {
		t.Fatalf("Poll after the one message = %v, %v; want nothing more", ok, err)
	}
}

func TestContext(t *testing.T) {
	a, b := pipe(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.RecvBytesContext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("RecvBytesContext with a cancelled context = %v", err)
	}
	// A context done before the call: nothing is sent, and nothing taken.
	for range 100 { // the deadline set asynchronously once lost the race
		if err := a.SendBytesContext(ctx, []byte("not sent")); !errors.Is(err, context.Canceled) {
			t.Fatalf("SendBytesContext with a cancelled context = %v", err)
		}
	}
	if ok, err := b.Poll(0); ok || err != nil {
		t.Fatalf("after SendBytesContext with a cancelled context, Poll = %v, %v; want nothing sent", ok, err)
	}
	a.SendBytes([]byte("waiting"))
	for range 100 {
		if _, err := b.RecvBytesContext(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("RecvBytesContext with a cancelled context and a message waiting = %v", err)
		}
	}
	if m, err := b.RecvBytes(); string(m) != "waiting" || err != nil {
		t.Fatalf("RecvBytes after cancelled receives = %q, %v; want the waiting message", m, err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		var v string
		done <- b.RecvContext(ctx, &v)
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("RecvContext cancelled while blocked = %v", err)
	}
	// The conn is still usable, and the cancellation left no deadline.
	a.Send("still here")
	var v string
	if err := b.Recv(&v); err != nil || v != "still here" {
		t.Fatalf("Recv after cancel = %q, %v", v, err)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	var err error
	for err == nil {
		err = a.SendBytesContext(ctx, make([]byte, 64<<10))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendBytesContext to a full pipe = %v; want context.DeadlineExceeded", err)
	}
}

func TestCloseIdempotentAndClosedErrors(t *testing.T) {
	a, b := pipe(t, nil)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	checks := map[string]error{
		"Send":        a.Send(1),
		"SendBytes":   a.SendBytes(nil),
		"Recv":        a.Recv(new(int)),
		"SetDeadline": a.SetDeadline(time.Now()),
	}
	_, checks["RecvBytes"] = a.RecvBytes()
	_, checks["RecvBytesInto"] = a.RecvBytesInto(nil)
	_, checks["Poll"] = a.Poll(0)
	for name, err := range checks {
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s on a closed conn = %v; want net.ErrClosed", name, err)
		}
	}
	if _, err := b.RecvBytes(); err != io.EOF {
		t.Errorf("RecvBytes from a closed peer = %v; want io.EOF", err)
	}
	if err := b.SendBytes([]byte("x")); !errors.Is(err, procpipe.ErrPeerGone) {
		t.Errorf("SendBytes to a closed peer = %v; want ErrPeerGone", err)
	}
}

func TestCloseUnblocksRecvAndPoll(t *testing.T) {
	_, b := pipe(t, nil)
	errs := make(chan error, 3)
	go func() { _, err := b.RecvBytes(); errs <- err }()
	go func() { _, err := b.Poll(-1); errs <- err }()
	go func() { _, err := b.RecvBytesInto(make([]byte, 10)); errs <- err }()
	b.Close()
	for range 3 {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked call after Close = %v; want net.ErrClosed", err)
		}
	}
}

// TestConcurrentSendRecv has 16 goroutines sending and 16 receiving
// checksummed messages of random sizes: nothing may be lost, duplicated,
// corrupted or reordered per sender.
func TestConcurrentSendRecv(t *testing.T) {
	a, b := pipe(t, nil)
	concurrentExchange(t, a, b, 16, 200)
}

func concurrentExchange(t *testing.T, send, recv *procpipe.Conn, workers, perSender int) {
	t.Helper()
	var wg sync.WaitGroup
	for s := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(s), 1))
			for seq := range perSender {
				size := rng.IntN(4 << 10)
				if seq%50 == 0 {
					size = 200 << 10 // larger than the read buffer
				}
				if err := send.SendBytes(message(s, seq, size)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	type got struct{ sender, seq int }
	results := make(chan got, workers*perSender)
	var rwg sync.WaitGroup
	var mu sync.Mutex
	remaining := workers * perSender
	for range workers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for {
				mu.Lock()
				if remaining == 0 {
					mu.Unlock()
					return
				}
				remaining--
				mu.Unlock()
				b, err := recv.RecvBytes()
				if err != nil {
					t.Error(err)
					return
				}
				s, seq, err := parseMessage(b)
				if err != nil {
					t.Error(err)
					return
				}
				results <- got{s, seq}
			}
		}()
	}
	wg.Wait()
	rwg.Wait()
	close(results)
	seen := make(map[got]bool)
	for r := range results {
		if seen[r] {
			t.Errorf("message %v received twice", r)
		}
		seen[r] = true
	}
	if len(seen) != workers*perSender {
		t.Errorf("received %d distinct messages; want %d", len(seen), workers*perSender)
	}
}

// TestLyingHeaderConn sends a header claiming 2^62 bytes and closes: Recv
// must fail with io.ErrUnexpectedEOF having allocated next to nothing.
func TestLyingHeaderConn(t *testing.T) {
	a, b := pipe(t, &procpipe.Config{MaxMessageSize: -1})
	raw := rawWriter(t, a)
	raw([]byte{0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0})
	raw(pattern(1000))
	a.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := b.RecvBytes()
	runtime.ReadMemStats(&after)
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("RecvBytes = %v; want io.ErrUnexpectedEOF", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("RecvBytes allocated %d bytes for a 1000-byte body", n)
	}
}

// TestGarbageIsProtocolError feeds a header no peer sends.
func TestGarbageIsProtocolError(t *testing.T) {
	a, b := pipe(t, nil)
	rawWriter(t, a)([]byte{0x80, 0, 0, 0, 1, 2, 3})
	_, err := b.RecvBytes()
	var pe *procpipe.ProtocolError
	if !errors.As(err, &pe) || pe.Length != -1<<31 {
		t.Fatalf("RecvBytes = %v; want ProtocolError", err)
	}
	if _, err := b.RecvBytes(); !errors.Is(err, procpipe.ErrBroken) {
		t.Fatalf("RecvBytes after protocol error = %v; want ErrBroken", err)
	}
}

// TestOversizedThenNext: a receiver with a smaller limit than its sender
// rejects the big message and still gets the next one.
func TestOversizedThenNext(t *testing.T) {
	a, b := pipe(t, &procpipe.Config{MaxMessageSize: 100 << 10})
	raw := rawWriter(t, a)
	bigFrame := append([]byte{0, 0x10, 0, 0}, pattern(1<<20)...) // 1 MiB
	go func() {
		raw(bigFrame)
		a.SendBytes([]byte("next"))
	}()
	_, err := b.RecvBytes()
	var tl *procpipe.TooLargeError
	if !errors.As(err, &tl) || tl.Size != 1<<20 || tl.Limit != 100<<10 {
		t.Fatalf("RecvBytes = %v; want TooLargeError{1 MiB, 100 KiB}", err)
	}
	if got, err := b.RecvBytes(); err != nil || string(got) != "next" {
		t.Fatalf("next RecvBytes = %q, %v", got, err)
	}
}

// TestRecvNeedsPointer receives into what is not a non-nil pointer: an error,
// and the message stays for the next receive (gob would have decoded into
// nil by discarding it).
func TestRecvNeedsPointer(t *testing.T) {
	for _, codec := range []procpipe.Codec{procpipe.Gob, procpipe.JSON} {
		a, b := pipe(t, &procpipe.Config{Codec: codec})
		if err := a.Send("first"); err != nil {
			t.Fatal(err)
		}
		// A bound, so that a Recv that took the message fails the test
		// rather than waiting for another.
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		var s string
		for _, v := range []any{nil, s, (*string)(nil)} {
			if err := b.Recv(v); err == nil {
				t.Errorf("%T: Recv(%#v) = nil; want an error", codec, v)
			}
		}
		if err := b.Recv(&s); err != nil || s != "first" {
			t.Errorf("%T: Recv after the refused ones = %q, %v; want \"first\"", codec, s, err)
		}
	}
}

// TestHugeReadBufferSize asks for a receive buffer no machine has: the Conn
// gets the largest the frame reader makes, and works.
func TestHugeReadBufferSize(t *testing.T) {
	a, b := pipe(t, &procpipe.Config{ReadBufferSize: math.MaxInt})
	if err := a.SendBytes([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got, err := b.RecvBytes(); err != nil || string(got) != "hello" {
		t.Errorf("RecvBytes = %q, %v", got, err)
	}
}

// TestNilAndZeroConn calls every method on a nil *Conn and on a zero Conn,
// which nothing made usable: each must return an error matching
// os.ErrInvalid, as a nil *os.File's methods do, not panic.
func TestNilAndZeroConn(t *testing.T) {
	for _, c := range []*procpipe.Conn{nil, {}} {
		var s string
		calls := map[string]func() error{
			"Send":             func() error { return c.Send("x") },
			"SendBytes":        func() error { return c.SendBytes([]byte("x")) },
			"SendBytesContext": func() error { return c.SendBytesContext(context.Background(), nil) },
			"SendBytesBatch":   func() error { _, err := c.SendBytesBatch([][]byte{{1}}); return err },
			"Recv":             func() error { return c.Recv(&s) },
			"RecvBytes":        func() error { _, err := c.RecvBytes(); return err },
			"RecvBytesMax":     func() error { _, err := c.RecvBytesMax(10); return err },
			"RecvBytesContext": func() error { _, err := c.RecvBytesContext(context.Background()); return err },
			"RecvBytesInto":    func() error { _, err := c.RecvBytesInto(make([]byte, 8)); return err },
			"Poll":             func() error { _, err := c.Poll(0); return err },
			"SetDeadline":      func() error { return c.SetDeadline(time.Now()) },
			"SetReadDeadline":  func() error { return c.SetReadDeadline(time.Now()) },
			"SetWriteDeadline": func() error { return c.SetWriteDeadline(time.Now()) },
			"SendFiles":        func() error { return c.SendFiles(os.Stdin) },
			"SendWithFiles":    func() error { return c.SendWithFiles("x", os.Stdin) },
			"RecvFiles":        func() error { _, err := c.RecvFiles(); return err },
			"RecvWithFiles":    func() error { _, err := c.RecvWithFiles(&s); return err },
			"Wait":             func() error { _, err := procpipe.Wait([]*procpipe.Conn{c}, 0); return err },
			"Close":            func() error { return c.Close() },
		}
		for name, call := range calls {
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						err = fmt.Errorf("panic: %v", p)
					}
				}()
				err = call()
			}()
			if !errors.Is(err, os.ErrInvalid) {
				t.Errorf("%s on %#v = %v; want an error matching os.ErrInvalid", name, c, err)
			}
		}
	}
}
