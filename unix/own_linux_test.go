package unix_test

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"

	ppunix "github.com/procpipe/procpipe/unix"
	"golang.org/x/sys/unix"
)

// TestPipeOwnsItsOpenFile checks that a pipe Conn reads and writes an open
// file of its own, which File does not hand out: File's is another open
// file of the same end, blocking, whose mode leaves the Conn's as it is,
// and which Close closes too, so that the reader still sees the end of the
// stream.
func TestPipeOwnsItsOpenFile(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skipf("no /proc/self/fd here (%v): pipe Conns keep the open file they were given", err)
	}
	for _, how := range []string{"Pipe", "NewConn"} {
		t.Run(how, func(t *testing.T) {
			var r, w *ppunix.Conn
			if how == "Pipe" {
				r, w = newPair(t, "pipe")
			} else {
				pr, pw, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				if r, err = ppunix.NewConn(pr); err != nil {
					pw.Close()
					t.Fatal(err)
				}
				defer r.Close()
				if w, err = ppunix.NewConn(pw); err != nil {
					t.Fatal(err)
				}
				defer w.Close()
			}
			for _, c := range []*ppunix.Conn{r, w} {
				if !c.OwnsFileForTest() {
					t.Fatalf("%s: a pipe Conn does not own its open file", c.File().Name())
				}
				f := c.File()
				if f == c.OwnFileForTest() || f.Fd() == uintptr(c.FdForTest()) {
					t.Fatalf("%s: File hands out the Conn's own descriptor", f.Name())
				}
				if c.File() != f {
					t.Fatalf("%s: File made a second file", f.Name())
				}
				if ce, nb := flags(t, f); !ce || nb {
					t.Errorf("%s: File's descriptor: cloexec %v, nonblocking %v; want close-on-exec and blocking", f.Name(), ce, nb)
				}
				setBlocking(t, c) // File's, again: the Conn's own must stay non-blocking
				if ce, nb := flags(t, c.OwnFileForTest()); !ce || !nb {
					t.Errorf("%s: the Conn's own descriptor: cloexec %v, nonblocking %v; want both", f.Name(), ce, nb)
				}
			}
			// File's is the same pipe: what goes in there comes out of r.
			if _, err := w.File().Write([]byte("hi")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 2)
			if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "hi" {
				t.Fatalf("read %q, %v; want hi", buf, err)
			}
			// Close closes File's too, or r would never see the end.
			w.Close()
			r.SetReadDeadline(time.Now().Add(10 * time.Second)) // a failure, not a wait
			if n, err := r.Read(buf); !errors.Is(err, io.EOF) {
				t.Fatalf("Read after the writer's Close = %d, %v; want io.EOF", n, err)
			}
		})
	}
}

// TestFallbackOwnsNoFile checks that the tests' fallback switch makes pipe
// Conns that neither own their open file nor take RWF_NOWAIT, as on a
// machine without /proc and before Linux 6.4.
func TestFallbackOwnsNoFile(t *testing.T) {
	defer ppunix.SetPipeNoWaitForTest(ppunix.SetPipeNoWaitForTest(false))
	r, w := newPair(t, "pipe")
	if r.OwnsFileForTest() || w.OwnsFileForTest() || r.PlainPipeIOForTest() == nil {
		t.Fatalf("fallback pipe: owns its open file %v/%v, plain calls %v", r.OwnsFileForTest(), w.OwnsFileForTest(), r.PlainPipeIOForTest())
	}
}

// TestNewConnLeavesPipeMode checks that NewConn on a pipe end leaves the
// mode of the open file it was given, which other processes may share (a
// parent's copy, say), as it was: the Conn opens one of its own instead.
func TestNewConnLeavesPipeMode(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skipf("no /proc/self/fd here (%v): NewConn makes the given open file non-blocking", err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	other, err := unix.FcntlInt(uintptr(p[0]), unix.F_DUPFD_CLOEXEC, 0) // shares p[0]'s open file
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	r, err := ppunix.NewConn(os.NewFile(uintptr(p[0]), "r"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fl, err := unix.FcntlInt(uintptr(other), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_NONBLOCK != 0 {
		t.Errorf("NewConn made the open file it was given non-blocking")
	}
	if _, nb := flags(t, r.OwnFileForTest()); !nb {
		t.Errorf("the Conn's own open file is blocking")
	}
}

// TestFileFailsSafe checks that a pipe Conn whose File could not open a file
// to hand out, and so handed out its own, stops trusting that open file:
// it makes no more first attempts outside the poller (whose raw calls a
// receiver that cleared O_NONBLOCK could block), yet still carries data.
func TestFileFailsSafe(t *testing.T) {
	restore := ppunix.FailFileForTest()
	defer restore()
	r, w := newPair(t, "pipe")
	if !r.OwnsFileForTest() {
		t.Skip("pipe Conns do not own their open files here (see TestPipeOwnsItsOpenFile)")
	}
	if r.File() != r.OwnFileForTest() || r.OwnsFileForTest() {
		t.Fatalf("File that cannot make a file: handed out the Conn's own %v, still owns it %v; want true, false", r.File() == r.OwnFileForTest(), r.OwnsFileForTest())
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if r.FirstReadForTest(make([]byte, 1)) {
		t.Fatal("a Conn whose own open file was handed out read outside the poller")
	}
	if w.File() != w.OwnFileForTest() || w.FirstWriteForTest([]byte("y")) {
		t.Fatal("a Conn whose own open file was handed out wrote outside the poller")
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(r, buf); err != nil || buf[0] != 'x' {
		t.Fatalf("read %q, %v; want x", buf, err)
	}
	roundTrip(t, r, w)
}

// TestPacketPipeKeepsItsOpenFile checks that the write end of a pipe in
// packet mode (O_DIRECT, which belongs to the write end's open file and
// which opening it again would drop) keeps the open file it was given, and
// with it its packets.
func TestPacketPipeKeepsItsOpenFile(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_DIRECT|unix.O_CLOEXEC); err != nil {
		t.Skipf("no packet-mode pipes here: %v", err)
	}
	defer unix.Close(p[0])
	w, err := ppunix.NewConn(os.NewFile(uintptr(p[1]), "w"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.OwnsFileForTest() {
		t.Fatal("a packet-mode pipe's Conn owns an open file of its own")
	}
	for _, m := range []string{"abc", "def"} {
		if _, err := w.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 10)
	for _, want := range []string{"abc", "def"} {
		n, err := unix.Read(p[0], buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q, %v; want the packet %q", buf[:max(n, 0)], err, want)
		}
	}
}
