package unix_test

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	ppunix "github.com/procpipe/procpipe/unix"
	"golang.org/x/sys/unix"
)

// waitFor polls cond until it holds, failing the test after a minute: what
// it waits for (a call parking) has no event to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("still waiting, after a minute, for %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// within returns what ch delivers, failing the test if that takes more than
// a minute (a call that stays blocked).
func within[T any](t *testing.T, what string, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("%s: still blocked after a minute", what)
		panic("unreachable")
	}
}

// warmPoller makes the runtime open its poller's own descriptors, which it
// keeps, before a test counts descriptors: on Linux a Conn's first wait to
// park is the first use of the poller in a process that had none.
func warmPoller(t *testing.T) {
	t.Helper()
	r, w, err := os.Pipe() // registered with the poller
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
}

// parkKinds are the Conns the parking tests run on (see parkPair).
var parkKinds = []string{"socket", "pipe", "pipe-fallback"}

// parkPair is newPair, and for "pipe-fallback" a pipe whose calls fall back
// to readv and writev, as without /proc on a kernel before 6.4; it warms the
// poller (see warmPoller) for the descriptor counts to come.
func parkPair(t *testing.T, kind string) (r, w *ppunix.Conn) {
	t.Helper()
	warmPoller(t)
	if kind != "pipe-fallback" {
		return newPair(t, kind)
	}
	defer ppunix.SetPipeNoWaitForTest(ppunix.SetPipeNoWaitForTest(false))
	r, w = newPair(t, "pipe")
	if r.PlainPipeIOForTest() == nil || w.PlainPipeIOForTest() == nil {
		t.Fatal("the pipe Conns did not fall back to readv and writev")
	}
	return r, w
}

// TestWaitParks checks that a Read that waits longer than parkAfter moves
// to the runtime poller through a descriptor of its own, which the peer's
// data still wakes, and which is kept for the Reads that follow until
// unparkAfter in a row have not waited; and that a Write waiting for room
// parks too. On both kinds of Conn, and on a pipe that falls back to
// readv and writev (no first attempts: every call goes the waiting path).
func TestWaitParks(t *testing.T) {
	for _, kind := range parkKinds {
		t.Run(kind, func(t *testing.T) {
			r, w := parkPair(t, kind)
			base := openFDs(t)
			got := make(chan error, 1)
			buf := make([]byte, 3)
			go func() {
				_, err := r.Read(buf)
				got <- err
			}()
			waitFor(t, "the Read to park", func() bool { return r.InParkForTest(false) })
			if n := openFDs(t) - base; n != 1 {
				t.Errorf("%d more descriptors while the Read is parked; want 1, its own", n)
			}
			if _, err := w.Write([]byte("abc")); err != nil {
				t.Fatal(err)
			}
			if err := within(t, "parked Read", got); err != nil || string(buf) != "abc" {
				t.Fatalf("parked Read = %q, %v; want abc", buf, err)
			}
			for i := range ppunix.UnparkAfterForTest {
				if !r.ParkedForTest(false) {
					t.Fatalf("the descriptor to park on was dropped after %d Reads that did not wait; want %d", i, ppunix.UnparkAfterForTest)
				}
				w.Write([]byte("abc"))
				if _, err := r.Read(buf); err != nil {
					t.Fatal(err)
				}
			}
			if r.ParkedForTest(false) {
				t.Errorf("%d Reads in a row did not wait, and the Conn still holds a descriptor to park on", ppunix.UnparkAfterForTest)
			}
			if n := openFDs(t) - base; n != 0 {
				t.Errorf("%d more descriptors once the Reads stopped waiting; want 0", n)
			}

			// A Write waiting for room: fill the buffer, then write more.
			fill := make([]byte, 1<<16)
			w.Control(func(fd uintptr) {
				for {
					if _, err := unix.Write(int(fd), fill); err != nil {
						return // EAGAIN: full
					}
				}
			})
			wrote := make(chan error, 1)
			go func() {
				_, err := w.Write(fill)
				wrote <- err
			}()
			waitFor(t, "the Write to park", func() bool { return w.InParkForTest(true) })
			drained := make(chan error, 1)
			go func() {
				p := make([]byte, 1<<16)
				for {
					if _, err := r.Read(p); err != nil {
						drained <- err
						return
					}
				}
			}()
			if err := within(t, "parked Write", wrote); err != nil {
				t.Fatalf("parked Write: %v", err)
			}
			w.Close()
			<-drained
		})
	}
}

// TestCloseAndDeadlineWakeParked checks that Close, and a deadline set while
// a Read waits parked, end that Read with their errors, that a deadline
// centuries away does not, and that the Conn reads on after the deadline is
// lifted.
func TestCloseAndDeadlineWakeParked(t *testing.T) {
	for _, kind := range parkKinds {
		t.Run(kind, func(t *testing.T) {
			r, w := parkPair(t, kind)
			base := openFDs(t)
			read := func() chan error {
				got := make(chan error, 1)
				go func() {
					_, err := r.Read(make([]byte, 1))
					got <- err
				}()
				waitFor(t, "the Read to park", func() bool { return r.InParkForTest(false) })
				return got
			}
			got := read()
			if err := r.SetReadDeadline(time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := within(t, "parked Read after a deadline in the past", got); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("parked Read after a deadline in the past: %v; want the deadline's error", err)
			}
			// A deadline far in the future (past what Unix nanoseconds
			// hold) is no deadline yet: the Read parks, and reads.
			if err := r.SetReadDeadline(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
				t.Fatal(err)
			}
			got = read()
			w.Write([]byte{1})
			if err := within(t, "Read with a deadline in the year 3000", got); err != nil {
				t.Fatalf("Read with a deadline in the year 3000: %v", err)
			}
			r.SetReadDeadline(time.Time{})
			got = read()
			w.Write([]byte{1})
			if err := within(t, "Read after the deadline was lifted", got); err != nil {
				t.Fatalf("Read after the deadline was lifted: %v", err)
			}
			got = read()
			r.Close()
			if err := within(t, "parked Read after Close", got); !errors.Is(err, os.ErrClosed) {
				t.Fatalf("parked Read after Close: %v; want os.ErrClosed", err)
			}
			if n := openFDs(t) - base; n != -1 { // r's own is gone too
				t.Errorf("%d descriptors left of the Conn and what its Reads parked on after Close; want none", n+1)
			}
		})
	}
}

// TestIdleConnsHoldFewThreads checks that Reads waiting on many idle Conns
// at once end up parked on the runtime poller, holding few OS threads:
// were they to wait on in ppoll, a blocking system call, each would hold a
// thread, which the runtime keeps. (How many wait in ppoll at once is
// bounded too, by maxPPollers; the runtime's monitor hands processors on
// too slowly for this test to see that bound at work.)
func TestIdleConnsHoldFewThreads(t *testing.T) {
	const n = 200
	// Growing the descriptor table of a process with threads waits for an
	// RCU grace period, in the system call (dup, pipe) that grows it:
	// calls piling up behind that, not waits, made up to 100 threads here.
	// Grow it first, past what the test uses (about 620): it never
	// shrinks.
	fd, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 1024)
	if err != nil {
		t.Fatalf("growing the descriptor table: %v", err)
	}
	unix.Close(fd)
	warmPoller(t)
	base := threads(t)
	var rs, ws []*ppunix.Conn
	for range n {
		r, w := newPair(t, "pipe")
		rs, ws = append(rs, r), append(ws, w)
	}
	got := make(chan error, n)
	for _, r := range rs {
		go func() {
			_, err := r.Read(make([]byte, 1))
			got <- err
		}()
	}
	waitFor(t, "every Read to park", func() bool {
		for _, r := range rs {
			if !r.InParkForTest(false) {
				return false
			}
		}
		return true
	})
	// Were the Reads to wait on in ppoll, each would hold a thread: n
	// more. Parked, they hold none; maxPPollers may have waited in ppoll
	// at once, and a busy CPU makes the runtime start more threads while
	// short system calls are slow, so the bound is loose.
	if more, most := threads(t)-base, n/3; more > most {
		t.Errorf("%d idle Conns' Reads made %d more threads; want at most %d", n, more, most)
	}
	for _, w := range ws {
		w.Write([]byte{1})
	}
	for range n {
		if err := within(t, "parked Read", got); err != nil {
			t.Fatal(err)
		}
	}
}

// threads counts the process's threads.
func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range bytes.Lines(b) {
		if v, ok := strings.CutPrefix(string(line), "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// TestParkOnBlockingSharedFile checks that a Read parks, and is woken by
// data, on a socket whose open file another holder made blocking (as a
// child given File's may), and that parking leaves the file's mode as that
// holder set it.
func TestParkOnBlockingSharedFile(t *testing.T) {
	r, w := parkPair(t, "socket")
	setBlocking(t, r) // r's File is r's own open file: a socket's is shared
	got := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 1))
		got <- err
	}()
	waitFor(t, "the Read to park", func() bool { return r.InParkForTest(false) })
	if _, nb := flags(t, r.File()); nb {
		t.Error("parking left the shared open file non-blocking; its holder made it blocking")
	}
	w.Write([]byte{1})
	if err := within(t, "Read parked on a blocking open file", got); err != nil {
		t.Fatalf("Read parked on a blocking open file: %v", err)
	}
}
