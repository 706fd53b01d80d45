package procpipe_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/procpipe/procpipe"
)

func TestWaitTimeout(t *testing.T) {
	_, b := pipe(t, nil)
	_, d := pipe(t, nil)
	ready, err := procpipe.Wait([]*procpipe.Conn{b, d}, 10*time.Millisecond)
	if err != nil || len(ready) != 0 {
		t.Fatalf("Wait on idle conns = %v, %v; want none, nil", ready, err)
	}
	ready, err = procpipe.Wait([]*procpipe.Conn{b, d}, 0)
	if err != nil || len(ready) != 0 {
		t.Fatalf("Wait(0) on idle conns = %v, %v; want none, nil", ready, err)
	}
}

func TestWaitReadyKinds(t *testing.T) {
	a1, b1 := pipe(t, nil) // will have a message
	_, b2 := pipe(t, nil)  // idle
	a3, b3 := pipe(t, nil) // peer closed
	r4, w4, err := procpipe.Pipe(false)
	if err != nil {
		t.Fatal(err)
	}
	defer r4.Close()
	defer w4.Close()
	a5, b5 := pipe(t, nil) // a message waiting in the receive buffer only

	a1.SendBytes([]byte("m"))
	a3.Close()
	w4.SendBytes([]byte("one-way"))
	a5.SendBytes([]byte("first"))
	a5.SendBytes([]byte("second"))
	if _, err := b5.RecvBytes(); err != nil { // reads both into the buffer
		t.Fatal(err)
	}
	all := []*procpipe.Conn{b1, b2, b3, r4, b5}
	ready, err := procpipe.Wait(all, -1)
	if err != nil {
		t.Fatal(err)
	}
	names := map[*procpipe.Conn]string{b1: "message", b2: "idle", b3: "peer closed", r4: "one-way", b5: "buffered"}
	var got []string
	for _, c := range ready {
		got = append(got, names[c])
	}
	if diff := cmp.Diff([]string{"message", "peer closed", "one-way", "buffered"}, got); diff != "" {
		t.Errorf("Wait returned the wrong conns (-want +got):\n%s", diff)
	}
	ready, err = procpipe.Wait(all, 0)
	if err != nil || len(ready) != 4 {
		t.Errorf("Wait(0) = %d conns, %v; want the same 4", len(ready), err)
	}
	if _, err := procpipe.Wait([]*procpipe.Conn{w4}, 0); !errors.Is(err, procpipe.ErrSendOnly) {
		t.Errorf("Wait on a send-only end = %v; want ErrSendOnly", err)
	}
	if _, err := procpipe.Wait([]*procpipe.Conn{b1, nil}, 0); err == nil {
		t.Error("Wait with a nil Conn succeeded")
	}
}

func TestWaitWakesOnMessage(t *testing.T) {
	a, b := pipe(t, nil)
	_, d := pipe(t, nil)
	go a.SendBytes([]byte("wake"))
	ready, err := procpipe.Wait([]*procpipe.Conn{d, b}, time.Hour)
	if err != nil || len(ready) != 1 || ready[0] != b {
		t.Fatalf("Wait = %v, %v; want [b]", ready, err)
	}
}

func TestWaitContextCancel(t *testing.T) {
	_, b := pipe(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := procpipe.WaitContext(ctx, []*procpipe.Conn{b})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitContext after cancel = %v; want context.Canceled", err)
	}
}

// TestWaitStoppedByClose closes one of the conns that a Wait with no time
// limit watches, from another goroutine, once the Wait is under way: Close
// must return, and so must the Wait, with net.ErrClosed.
func TestWaitStoppedByClose(t *testing.T) {
	for _, timeout := range []time.Duration{-1, time.Hour} {
		_, b := pipe(t, nil)
		_, d := pipe(t, nil)
		done := make(chan error, 1)
		go func() {
			_, err := procpipe.Wait([]*procpipe.Conn{b, d}, timeout)
			done <- err
		}()
		inStack(t, "procpipe.waitReady(")
		closed := make(chan error, 1)
		go func() { closed <- d.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("Close = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Wait(%v): Close of a watched conn did not return in 10s", timeout)
		}
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Wait(%v) stopped by Close = %v; want net.ErrClosed", timeout, err)
		}
		if _, err := procpipe.Wait([]*procpipe.Conn{b, d}, timeout); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Wait(%v) with a closed conn = %v; want net.ErrClosed", timeout, err)
		}
	}
}

// inStack waits, without sleeping, until some goroutine's stack has all of
// frames in it, yielding the processor between looks; it fails the test
// after 10s.
func inStack(t *testing.T, frames ...string) {
	t.Helper()
	if !stackReached(nil, frames...) {
		t.Fatalf("no goroutine reached %s", strings.Join(frames, " and "))
	}
}

// stackReached is inStack's look: it reports whether some goroutine's stack
// had all of frames in it before 10s passed or done (if not nil) was ready
// to receive from. It receives nothing from done.
func stackReached(done chan error, frames ...string) bool {
	buf := make([]byte, 1<<20)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		for g := range strings.SplitSeq(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			found := true
			for _, f := range frames {
				found = found && strings.Contains(g, f)
			}
			if found {
				return true
			}
		}
		if len(done) > 0 {
			return false
		}
		runtime.Gosched()
	}
	return false
}

// TestWaitThousand waits on 1,000 conns of which a random 10 have messages.
func TestWaitThousand(t *testing.T) {
	const n = 1000
	senders := make([]*procpipe.Conn, n)
	receivers := make([]*procpipe.Conn, n)
	for i := range n {
		senders[i], receivers[i] = pipe(t, nil)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[*procpipe.Conn]bool{}
	for len(want) < 10 {
		i := rng.IntN(n)
		if !want[receivers[i]] {
			want[receivers[i]] = true
			senders[i].SendBytes([]byte{byte(i)})
		}
	}
	ready, err := procpipe.Wait(receivers, -1)
	if err != nil {
		t.Fatal(err)
	}
	got := map[*procpipe.Conn]bool{}
	for _, c := range ready {
		got[c] = true
	}
	if !cmp.Equal(want, got) {
		t.Fatalf("Wait over 1,000 conns returned %d conns; want the 10 with messages", len(ready))
	}
}

// BenchmarkWaitReady measures a blocking Wait that finds a Conn ready at
// once, as in a busy server's loop: the cost of the call itself.
func BenchmarkWaitReady(b *testing.B) {
	conns := make([]*procpipe.Conn, 8)
	for i := range conns {
		a, c := pipe(b, nil)
		conns[i] = c
		if i == len(conns)-1 {
			if err := a.SendBytes([]byte("x")); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		ready, err := procpipe.Wait(conns, -1)
		if err != nil || len(ready) != 1 {
			b.Fatalf("Wait = %v, %v; want the last Conn", ready, err)
		}
	}
}
