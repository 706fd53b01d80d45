package unix_test

import (
	"testing"
	"time"

	ppunix "github.com/procpipe/procpipe/unix"
)

// TestYieldFirst checks the bookkeeping behind yielding before a read (see
// yieldFirst): a read that returns less than it asked for marks the
// Conn drained and one that fills its buffer does not, and a read that
// yields first still returns what was written, whether before it or while
// it waits.
func TestYieldFirst(t *testing.T) {
	for _, kind := range []string{"pipe", "socket"} {
		t.Run(kind, func(t *testing.T) {
			r, w := newPair(t, kind)
			buf := make([]byte, 64)
			read := func(n int, want string, drained bool) {
				t.Helper()
				got, err := r.Read(buf[:n])
				if err != nil || string(buf[:got]) != want {
					t.Fatalf("Read(%d bytes) = %q, %v; want %q", n, buf[:got], err, want)
				}
				if r.DrainedForTest() != drained {
					t.Fatalf("after reading %q into %d bytes: drained = %v, want %v", want, n, !drained, drained)
				}
			}
			write := func(s string) {
				t.Helper()
				if _, err := w.Write([]byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			write("hello")
			read(64, "hello", true)
			write("hello world")
			read(5, "hello", false)
			read(64, " world", true)

			// The yielding read may find the data at once or park
			// until it comes; either way it gets it.
			werr := make(chan error, 1)
			go func() {
				_, err := w.Write([]byte("late"))
				werr <- err
			}()
			read(64, "late", true)
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSlowYieldCalms checks the bookkeeping that makes reads stop yielding
// while the CPU is busy with other threads (see slowYield): a slow yield
// starts a calm period, reads made during it do not yield, and once it
// ends the next yields are timed.
func TestSlowYieldCalms(t *testing.T) {
	defer ppunix.SetContentionForTest(0, 0)
	if calm := ppunix.NoteYieldForTest(100 * time.Microsecond); calm != 0 {
		t.Fatalf("a 100 µs yield started a calm period of %v", calm)
	}
	if calm := ppunix.NoteYieldForTest(2 * time.Millisecond); calm != ppunix.CalmForTest {
		t.Fatalf("a 2 ms yield started a calm period of %v, want %v", calm, ppunix.CalmForTest)
	}

	r, w := newPair(t, "pipe")
	buf := make([]byte, 64)
	exchange := func(s string) {
		t.Helper()
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		if n, err := r.Read(buf); err != nil || string(buf[:n]) != s {
			t.Fatalf("Read = %q, %v; want %q", buf[:n], err, s)
		}
	}
	exchange("drain") // the next read would yield first

	// Calm: the read does not yield, so it times no yield.
	ppunix.SetContentionForTest(time.Hour, 5)
	exchange("calm")
	if calm, left := ppunix.ContentionForTest(); !calm || left != 5 {
		t.Fatalf("after a read in a calm period: calm %v, %d yields to time; want true, 5", calm, left)
	}

	// The period over, the read yields first and times it: a quick yield
	// counts down, a slow one starts the next calm period.
	ppunix.SetContentionForTest(-1, 0)
	exchange("probe")
	if calm, left := ppunix.ContentionForTest(); !calm && left != 15 {
		t.Fatalf("after the first read past a calm period: calm %v, %d yields to time; want 15 (or a new calm period)", calm, left)
	}
}
