package unix_test

import (
	"errors"
	"os"
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
// starts a calm period (on one CPU, only slow yields in a row after which a
// spinning read found nothing), reads made during it do not yield, and once
// it ends the next yields are timed.
func TestSlowYieldCalms(t *testing.T) {
	defer ppunix.SetContentionForTest(0, 0)
	if calm := ppunix.NoteYieldForTest(100*time.Microsecond, false); calm != 0 {
		t.Fatalf("a 100 µs yield started a calm period of %v", calm)
	}
	if calm := ppunix.NoteYieldForTest(2*time.Millisecond, false); calm != ppunix.CalmForTest {
		t.Fatalf("a 2 ms yield started a calm period of %v, want %v", calm, ppunix.CalmForTest)
	}
	// On one CPU a long yield is the peer's turn.
	if calm := ppunix.NoteYieldForTest(2*time.Millisecond, true); calm != 0 {
		t.Fatalf("a 2 ms yield on one CPU started a calm period of %v", calm)
	}

	// On one CPU a slow yield alone starts no calm period, but one after
	// which a spinning read still finds nothing does (the CPU went to
	// another thread, not to the peer), and a one-CPU read that yields
	// first looks for it: here it sees an ended one.
	// A few in a row are what a peer still starting makes: only the
	// FruitlessCalmsForTest-th in a row starts one, and a quick yield
	// between them starts the count again.
	defer ppunix.SetOneCPUForTest(ppunix.SetOneCPUForTest(true))
	fruitless := func(n int) {
		t.Helper()
		for range n {
			if ppunix.SpinAfterSlowYieldForTest() {
				t.Fatal("a read on one CPU spun on after a slow yield that brought nothing")
			}
		}
	}
	ppunix.SetContentionForTest(0, 0)
	fruitless(ppunix.FruitlessCalmsForTest - 1)
	for i := 0; ppunix.SpinOnceForTest(); i++ { // a busy CPU may make it slow
		if i == 100 {
			t.Fatal("100 yields in a row took over a millisecond each")
		}
	}
	fruitless(ppunix.FruitlessCalmsForTest - 1)
	if set, _, _ := ppunix.ContentionForTest(); set {
		t.Fatal("slow yields that brought nothing, a quick one between them, started a calm period on one CPU")
	}
	// So does a slow yield after which the read found data (the peer's
	// turn).
	r, w := newPair(t, "pipe") // a one-CPU Conn
	buf := make([]byte, 64)
	if _, err := w.Write([]byte("turn")); err != nil {
		t.Fatal(err)
	}
	r.SlowSpinForTest()
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "turn" {
		t.Fatalf("Read = %q, %v; want %q", buf[:n], err, "turn")
	}
	fruitless(ppunix.FruitlessCalmsForTest - 1)
	if set, _, _ := ppunix.ContentionForTest(); set {
		t.Fatal("slow yields that brought nothing, a fruitful one between them, started a calm period on one CPU")
	}
	fruitless(1)
	if set, _, _ := ppunix.ContentionForTest(); !set {
		t.Fatalf("%d slow yields in a row that brought nothing started no calm period on one CPU", ppunix.FruitlessCalmsForTest)
	}
	// The rest of the test is a process on more CPUs, whatever this one
	// is: on one CPU (ci/matrix.sh runs the tests so) a slow yield would
	// neither start a calm period nor count as a probe.
	ppunix.SetOneCPUForTest(false)
	r2, w2 := newPair(t, "pipe")
	ppunix.SetContentionForTest(-1, 0)
	for _, s := range []string{"drain", "alone"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		if n, err := r.Read(buf); err != nil || string(buf[:n]) != s {
			t.Fatalf("Read = %q, %v; want %q", buf[:n], err, s)
		}
	}
	if _, ended, _ := ppunix.ContentionForTest(); ended {
		t.Fatal("a read on one CPU did not look for a calm period")
	}
	r, w = r2, w2

	// Calm: a read that finds nothing parks at once, timing no yield (a
	// spin would time each).
	ppunix.SetContentionForTest(time.Hour, 5)
	if err := r.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read of an empty pipe = %v, want a deadline error", err)
	}
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if set, _, left := ppunix.ContentionForTest(); !set || left != 5 {
		t.Fatalf("after a wait in a calm period: calm set %v, %d yields to time; want true, 5", set, left)
	}

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

	// Calm: the read does not yield first, so it times no yield.
	exchange("calm")
	if set, _, left := ppunix.ContentionForTest(); !set || left != 5 {
		t.Fatalf("after a read in a calm period: calm set %v, %d yields to time; want true, 5", set, left)
	}

	// The period over, the read sees it end, yields first and times the
	// yield: a quick one counts down from 16, a slow one (a busy machine)
	// starts the next period.
	ppunix.SetContentionForTest(-1, 0)
	exchange("probe")
	switch set, ended, left := ppunix.ContentionForTest(); {
	case ended:
		t.Fatal("the read did not see the calm period end")
	case !set && left != 15:
		t.Fatalf("after the first read past a calm period: %d yields to time, want 15", left)
	}
}

// TestSlowYieldFirstJudged checks that on one CPU the read after a slow
// yield made first judges it by what it finds (see judgeYield): a few
// messages or nothing starts a calm period (another thread had the CPU, or
// the peer was busy without writing); a page and more, or a full buffer,
// does not (a peer streaming used its turn). Read and TryRead both judge.
func TestSlowYieldFirstJudged(t *testing.T) {
	defer ppunix.SetContentionForTest(0, 0)
	defer ppunix.SetOneCPUForTest(ppunix.SetOneCPUForTest(true))
	for _, tc := range []struct {
		name      string
		size, buf int
		calm      bool
	}{
		{"small", 64, 1 << 16, true},
		{"under_a_page", 4095, 1 << 16, true},
		{"page", 4096, 1 << 16, false},
		{"full_buffer", 64, 64, false},
		{"nothing", 0, 1 << 16, true},
	} {
		for _, try := range []bool{false, true} {
			name := "Read/" + tc.name
			if try {
				name = "TryRead/" + tc.name
			}
			t.Run(name, func(t *testing.T) {
				r, w := newPair(t, "pipe")
				roundTrip(t, r, w) // a first read learns whether the kernel takes RWF_NOWAIT
				if try && r.PlainPipeIOForTest() != nil {
					t.Skip("the kernel refuses RWF_NOWAIT on pipes here: TryRead is never made")
				}
				if r.DrainedForTest() {
					// Its next read would yield first, and might time that.
					if _, err := w.Write([]byte("x")); err != nil {
						t.Fatal(err)
					}
					if n, err := r.Read(make([]byte, 1)); n != 1 || err != nil || r.DrainedForTest() {
						t.Fatalf("Read of 1 byte into 1 = %d, %v, drained %v; want 1, nil, false", n, err, r.DrainedForTest())
					}
				}
				if _, err := w.Write(make([]byte, tc.size)); err != nil {
					t.Fatal(err)
				}
				ppunix.SetContentionForTest(0, 0)
				r.SlowFirstForTest()
				buf := make([]byte, tc.buf)
				var n int
				switch {
				case try:
					n, _ = r.TryRead(buf)
				case tc.size == 0:
					if err := r.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
						t.Fatal(err)
					}
					if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("Read of an empty pipe = %v, want a deadline error", err)
					}
				default:
					var err error
					if n, err = r.Read(buf); err != nil {
						t.Fatal(err)
					}
				}
				if n != tc.size {
					t.Fatalf("read %d bytes, want %d", n, tc.size)
				}
				if set, _, _ := ppunix.ContentionForTest(); set != tc.calm {
					t.Errorf("after a slow yield and a read of %d bytes into %d: calm period %v, want %v", tc.size, tc.buf, set, tc.calm)
				}
			})
		}
	}
}
