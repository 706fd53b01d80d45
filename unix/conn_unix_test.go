//go:build unix

package unix_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ppunix "github.com/procpipe/procpipe/unix"
	"golang.org/x/sys/unix"
)

// flags returns the descriptor flags (FD_CLOEXEC) and status flags
// (O_NONBLOCK) of f.
func flags(t *testing.T, f *os.File) (cloexec, nonblock bool) {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		fdfl, err1 := unix.FcntlInt(fd, unix.F_GETFD, 0)
		fl, err2 := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		cloexec, nonblock = fdfl&unix.FD_CLOEXEC != 0, fl&unix.O_NONBLOCK != 0
	})
	return
}

func TestBornCloexecNonblocking(t *testing.T) {
	a, b, err := ppunix.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := ppunix.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*ppunix.Conn{a, b, r, w} {
		defer c.Close()
		if ce, nb := flags(t, c.OwnFileForTest()); !ce || !nb {
			t.Errorf("%s: cloexec %v, nonblocking %v; want both", c.File().Name(), ce, nb)
		}
	}
	if a.Kind() != ppunix.Socket || r.Kind() != ppunix.PipeRead || w.Kind() != ppunix.PipeWrite {
		t.Errorf("kinds = %v %v %v", a.Kind(), r.Kind(), w.Kind())
	}
}

func TestNewConnKinds(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r, err := ppunix.NewConn(pr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := ppunix.NewConn(pw)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if r.Kind() != ppunix.PipeRead || w.Kind() != ppunix.PipeWrite {
		t.Fatalf("kinds = %v, %v", r.Kind(), w.Kind())
	}
	if ce, nb := flags(t, r.OwnFileForTest()); !ce || !nb {
		t.Errorf("NewConn's descriptor: cloexec %v, nonblocking %v; want both", ce, nb)
	}
	go w.Writev([][]byte{[]byte("a"), nil, []byte("bc")})
	buf := make([]byte, 3)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "abc" {
		t.Fatalf("read %q, %v", buf, err)
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ppunix.NewConn(f); err == nil {
		t.Error("NewConn of a regular file succeeded")
	}
	u, err := net.ListenPacket("unixgram", t.TempDir()+"/g")
	if err != nil {
		t.Fatal(err)
	}
	uf, _ := u.(*net.UnixConn).File()
	u.Close()
	if _, err := ppunix.NewConn(uf); err == nil {
		t.Error("NewConn of a datagram socket succeeded")
	}
}

// TestWritevLarge writes more than the kernel's buffer in one Writev, which
// must finish through short writes and waits and leave the caller's slice
// as it was, so that it can be written again.
func TestWritevLarge(t *testing.T) {
	for _, kind := range []string{"socket", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			b, a := newPair(t, kind)
			p1 := bytes.Repeat([]byte{1}, 3<<20)
			p2 := bytes.Repeat([]byte{2}, 1<<20+3)
			bufs := [][]byte{p1, p2}
			want := append(append([]byte{}, p1...), p2...)
			for round := range 2 {
				done := make(chan error)
				go func() {
					n, err := a.Writev(bufs)
					if err == nil && n != int64(len(want)) {
						err = io.ErrShortWrite
					}
					done <- err
				}()
				got := make([]byte, len(want))
				if _, err := io.ReadFull(b, got); err != nil {
					t.Fatal(err)
				}
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("round %d: data differs", round)
				}
				if len(bufs) != 2 || &bufs[0][0] != &p1[0] || len(bufs[0]) != len(p1) || &bufs[1][0] != &p2[0] || len(bufs[1]) != len(p2) {
					t.Fatalf("round %d: Writev changed the caller's slice", round)
				}
				if n := a.WriteKeepsForTest(); n != 0 {
					t.Fatalf("round %d: the Conn still holds %d of the buffers written", round, n)
				}
			}
			a.Close()
			got := make([]byte, 1)
			if _, err := b.Read(got); err != io.EOF {
				t.Fatalf("Read after peer closed = %v; want io.EOF", err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatalf("second Close = %v", err)
			}
		})
	}
}

// TestReadScatter checks that ReadScatter fills p before q and, on Linux,
// takes what follows p in the same call, on a socket and on a pipe.
func TestReadScatter(t *testing.T) {
	for _, kind := range []string{"socket", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			r, w := newPair(t, kind)
			data := make([]byte, 1000)
			for i := range data {
				data[i] = byte(i * 7)
			}
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			p, q := make([]byte, 600), make([]byte, 600)
			n, err := r.ReadScatter(p, q)
			if err != nil {
				t.Fatal(err)
			}
			want := len(data)
			if runtime.GOOS != "linux" {
				want = len(p) // elsewhere a ReadScatter reads into p only
			}
			if n != want {
				t.Fatalf("ReadScatter = %d bytes; want %d", n, want)
			}
			got := append(p[:min(n, len(p))], q[:n-min(n, len(p))]...)
			if !bytes.Equal(got, data[:n]) {
				t.Fatal("data differs, or q was filled before p")
			}
		})
	}
}

// newPair returns a connected "socket" pair or "pipe" (read end, write end),
// closed when the test ends.
func newPair(t *testing.T, kind string) (r, w *ppunix.Conn) {
	t.Helper()
	var err error
	if kind == "socket" {
		r, w, err = ppunix.Socketpair()
	} else {
		r, w, err = ppunix.Pipe()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// Every call that Close unblocks, and every call after it, fails with an
// error matching os.ErrClosed (the runtime poller's own error for a closed
// file matches neither os.ErrClosed nor net.ErrClosed).
func TestClosedErrors(t *testing.T) {
	for _, kind := range []string{"socket", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			r, w := newPair(t, kind)
			r2, _ := newPair(t, kind) // nothing to read: a Read waits
			buf := make([]byte, 1)
			blocked := make(chan error, 2)
			go func() {
				// Nobody reads r: the Writes fill the kernel's buffer,
				// and then one waits.
				chunk := make([]byte, 64<<10)
				for {
					if _, err := w.Write(chunk); err != nil {
						blocked <- err
						return
					}
				}
			}()
			go func() {
				_, err := r2.Read(buf)
				blocked <- err
			}()
			for end := time.Now().Add(10 * time.Second); pollWaiters("TestClosedErrors") < 2; runtime.Gosched() {
				if time.Now().After(end) {
					t.Fatal("the Write and the Read never waited on the runtime poller")
				}
			}
			w.Close()
			r2.Close()
			for range 2 {
				if err := <-blocked; !errors.Is(err, os.ErrClosed) {
					t.Errorf("call unblocked by Close: %v; want os.ErrClosed", err)
				}
			}
			r.Close()
			for _, c := range []*ppunix.Conn{r, w} {
				_, rerr := c.Read(buf)
				_, werr := c.Write(buf)
				_, verr := c.Writev([][]byte{buf, buf})
				_, perr := c.Ready()
				calls := map[string]error{
					"Read": rerr, "Write": werr, "Writev": verr, "Ready": perr, "WaitReady": c.WaitReady(),
					"SetReadDeadline":  c.SetReadDeadline(time.Now()),
					"SetWriteDeadline": c.SetWriteDeadline(time.Time{}),
				}
				if kind == "socket" {
					calls["WriteFiles"] = c.WriteFiles(0, nil, nil)
				}
				for name, err := range calls {
					if !errors.Is(err, os.ErrClosed) {
						t.Errorf("%s after Close: %v; want os.ErrClosed", name, err)
					}
				}
			}
		})
	}
}

// pollWaiters counts the goroutines started by test (a function name) that
// wait on the runtime poller; goroutines other tests left are not counted.
func pollWaiters(test string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("internal/poll.runtime_pollWait(")) && bytes.Contains(g, []byte("."+test+".")) {
			n++
		}
	}
	return n
}

// A deadline in the past fails a Read or Write even when it could complete
// at once: the first attempt, made without the poller, must defer to it.
func TestPastDeadlineBeatsReadyIO(t *testing.T) {
	for _, kind := range []string{"socket", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			r, w := newPair(t, kind)
			if _, err := w.Write([]byte("waiting")); err != nil {
				t.Fatal(err)
			}
			past := time.Unix(1, 0)
			r.SetReadDeadline(past)
			if n, err := r.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Read with a past deadline and data waiting = %d, %v; want %v", n, err, os.ErrDeadlineExceeded)
			}
			w.SetWriteDeadline(past)
			if n, err := w.Write([]byte("room")); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Write with a past deadline and room = %d, %v; want %v", n, err, os.ErrDeadlineExceeded)
			}
			// Clearing the deadlines makes both work again.
			r.SetReadDeadline(time.Time{})
			w.SetWriteDeadline(time.Time{})
			if _, err := w.Write([]byte("!")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			if n, err := r.Read(buf); err != nil || string(buf[:n]) != "waiting!" {
				t.Errorf("Read after clearing = %q, %v; want %q", buf[:n], err, "waiting!")
			}
		})
	}
}

// Closing a Conn while another goroutine reads or writes it as fast as it
// can (the peer keeps data or room coming, so every call is a first attempt
// that succeeds) ends that goroutine's calls with the error of a call on a
// closed Conn, never with a call on the closed descriptor (EBADF) or on one
// that reused its number.
func TestCloseDuringFirstAttempts(t *testing.T) {
	for _, kind := range []string{"socket", "pipe"} {
		for _, side := range []string{"read", "write"} {
			t.Run(kind+"/"+side, func(t *testing.T) {
				for range 30 {
					closeDuring(t, kind, side)
				}
			})
		}
	}
}

func closeDuring(t *testing.T, kind, side string) {
	r, w := newPair(t, kind)
	target, peer := r, w
	if side == "write" {
		target, peer = w, r
	}
	buf := make([]byte, 512)
	call := func(c *ppunix.Conn) error {
		var err error
		if c == r {
			_, err = c.Read(buf)
		} else {
			_, err = c.Write(buf)
		}
		return err
	}
	// The peer keeps the target busy until the target is closed (and the
	// peer with it, by the test's cleanup, or here below).
	peerDone := make(chan struct{})
	go func() {
		defer close(peerDone)
		pbuf := make([]byte, 512)
		for {
			var err error
			if peer == w {
				_, err = peer.Write(pbuf)
			} else {
				_, err = peer.Read(pbuf)
			}
			if err != nil {
				return
			}
		}
	}()
	started := make(chan struct{})
	ended := make(chan error)
	go func() {
		for i := 0; ; i++ {
			if i == 10 {
				close(started)
			}
			if err := call(target); err != nil {
				ended <- err
				return
			}
		}
	}()
	<-started
	target.Close()
	// Reuse the number at once, as another goroutine of the program might.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pw.Write(bytes.Repeat([]byte("X"), 512))
	err = <-ended
	pr.Close()
	pw.Close()
	peer.Close()
	<-peerDone
	if !errors.Is(err, os.ErrClosed) {
		t.Fatalf("%s on a Conn closed meanwhile: %v; want os.ErrClosed", side, err)
	}
	if side == "read" && bytes.Contains(buf, []byte("X")) {
		t.Fatalf("Read returned bytes from a descriptor that reused the closed one's number")
	}
}

// Deadlines set from two goroutines at once leave the first attempt and the
// poller agreeing on whichever was set last: a Read that could complete at
// once fails exactly when WaitReady (which always asks the poller) does.
func TestConcurrentDeadlinesAgree(t *testing.T) {
	r, w := newPair(t, "pipe")
	buf := make([]byte, 8)
	past := time.Unix(1, 0)
	for i := range 5000 {
		if _, err := w.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		// Both setters wait for a common start, to race as closely as
		// the scheduler lets them.
		var wg sync.WaitGroup
		var ready atomic.Int32
		set := func(d time.Time) {
			defer wg.Done()
			ready.Add(1)
			for ready.Load() < 2 {
				runtime.Gosched() // on one CPU, let the other start
			}
			r.SetReadDeadline(d)
		}
		wg.Add(2)
		go set(past)
		go set(time.Time{})
		wg.Wait()
		werr := r.WaitReady()
		_, rerr := r.Read(buf)
		if errors.Is(werr, os.ErrDeadlineExceeded) != errors.Is(rerr, os.ErrDeadlineExceeded) {
			t.Fatalf("round %d: WaitReady: %v, but Read: %v", i, werr, rerr)
		}
		if rerr != nil { // the byte is still there: take it
			r.SetReadDeadline(time.Time{})
			if _, err := r.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
}
