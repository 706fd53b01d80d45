package windows_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	pw "github.com/procpipe/procpipe/windows"
	"golang.org/x/sys/windows"
)

func pair(t *testing.T, duplex bool) (*pw.Conn, *pw.Conn) {
	t.Helper()
	a, b, err := pw.Pair(duplex)
	if err != nil {
		t.Fatalf("Pair(%v): %v", duplex, err)
	}
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

// exchange writes msg on w and checks that r reads it back whole.
func exchange(t *testing.T, w, r *pw.Conn, msg string) {
	t.Helper()
	if n, err := w.Write([]byte(msg)); err != nil || n != len(msg) {
		t.Fatalf("Write(%q) = %d, %v", msg, n, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("reading %q: %v", msg, err)
	}
	if string(got) != msg {
		t.Fatalf("read %q, want %q", got, msg)
	}
}

func TestPairDuplex(t *testing.T) {
	a, b := pair(t, true)
	if a.Kind() != pw.Duplex || b.Kind() != pw.Duplex {
		t.Errorf("kinds %v, %v; want Duplex, Duplex", a.Kind(), b.Kind())
	}
	exchange(t, a, b, "from the first end")
	exchange(t, b, a, "from the second end")
}

func TestPairCloseTwice(t *testing.T) {
	a, b, err := pw.Pair(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*pw.Conn{a, b, a, b} {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v, want os.ErrClosed", err)
	}
}

func TestPairOneWay(t *testing.T) {
	r, w := pair(t, false)
	if r.Kind() != pw.ReadOnly || w.Kind() != pw.WriteOnly {
		t.Fatalf("kinds %v, %v; want ReadOnly, WriteOnly", r.Kind(), w.Kind())
	}
	exchange(t, w, r, "one way")
	if _, err := r.Write([]byte("x")); err == nil {
		t.Error("Write on the receiving end succeeded")
	}
	if _, err := w.Read(make([]byte, 1)); err == nil {
		t.Error("Read on the sending end succeeded")
	}
	// The refusals cost the stream nothing.
	exchange(t, w, r, "still one way")
}

func TestWritevZeroLengthAndJoin(t *testing.T) {
	a, b := pair(t, true)
	big := bytes.Repeat([]byte("x"), 100<<10)
	done := make(chan error, 1)
	go func() {
		_, err := a.Writev([][]byte{{0, 0, 0, 0}, {}})
		if err == nil {
			_, err = a.Writev([][]byte{{1, 2}, {3}, big})
		}
		done <- err
	}()
	got := make([]byte, 4+3+len(big))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Writev: %v", err)
	}
	want := append([]byte{0, 0, 0, 0, 1, 2, 3}, big...)
	if !bytes.Equal(got, want) {
		t.Fatal("Writev wrote the buffers out of order or incompletely")
	}
}

func TestReadDeadline(t *testing.T) {
	a, b := pair(t, true)
	if err := a.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	if err := a.WaitReady(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WaitReady past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	// Clearing the deadline makes the end usable again.
	a.SetReadDeadline(time.Time{})
	exchange(t, b, a, "after the deadline")
}

// fill writes to c, whose peer does not read, until a write blocks and its
// deadline (already set) expires; it returns that write's error.
func fill(c *pw.Conn) error {
	chunk := make([]byte, 256<<10)
	for i := 0; i < 1024; i++ { // 256 MiB: far more than any pipe buffer
		if _, err := c.Write(chunk); err != nil {
			return err
		}
	}
	return errors.New("256 MiB written to a peer that does not read")
}

func TestWriteDeadline(t *testing.T) {
	a, _ := pair(t, true)
	if err := a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := fill(a); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	a, _ := pair(t, true)
	done := make(chan error, 1)
	go func() {
		_, err := a.Read(make([]byte, 1))
		done <- err
	}()
	a.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read interrupted by Close: %v, want os.ErrClosed", err)
	}
}

func TestCloseUnblocksWaitReady(t *testing.T) {
	a, _ := pair(t, true)
	done := make(chan error, 1)
	go func() { done <- a.WaitReady() }()
	a.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("WaitReady interrupted by Close: %v, want os.ErrClosed", err)
	}
}

func TestCloseUnblocksWrite(t *testing.T) {
	a, _ := pair(t, true)
	done := make(chan error, 1)
	go func() { done <- fill(a) }()
	a.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write interrupted by Close: %v, want os.ErrClosed", err)
	}
}

func isGone(err error) bool {
	var se *os.SyscallError
	if !errors.As(err, &se) {
		return false
	}
	return errors.Is(err, windows.ERROR_NO_DATA) || errors.Is(err, windows.ERROR_BROKEN_PIPE) || errors.Is(err, windows.ERROR_PIPE_NOT_CONNECTED)
}

func TestPeerClosed(t *testing.T) {
	for _, closeFirst := range []bool{false, true} {
		a, b, err := pw.Pair(true)
		if err != nil {
			t.Fatal(err)
		}
		c, peer := a, b
		if closeFirst {
			c, peer = b, a
		}
		if _, err := peer.Write([]byte("last")); err != nil {
			t.Fatal(err)
		}
		peer.Close()
		if ok, err := c.Ready(); !ok || err != nil {
			t.Errorf("Ready with data then EOF waiting = %v, %v; want true, nil", ok, err)
		}
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "last" {
			t.Errorf("reading up to EOF = %q, %v; want %q, nil", got, err, "last")
		}
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
		}
		if ok, err := c.Ready(); !ok || err != nil {
			t.Errorf("Ready at EOF = %v, %v; want true, nil", ok, err)
		}
		if err := c.WaitReady(); err != nil {
			t.Errorf("WaitReady at EOF: %v", err)
		}
		if _, err := c.Write([]byte("x")); !isGone(err) {
			t.Errorf("Write to a closed peer: %v; want an *os.SyscallError saying the pipe is gone", err)
		}
		c.Close()
	}
}

func TestReady(t *testing.T) {
	a, b := pair(t, true)
	if ok, err := a.Ready(); ok || err != nil {
		t.Fatalf("Ready on an empty pipe = %v, %v; want false, nil", ok, err)
	}
	done := make(chan error, 1)
	go func() { done <- a.WaitReady() }()
	if _, err := b.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if ok, err := a.Ready(); !ok || err != nil {
		t.Fatalf("Ready with data waiting = %v, %v; want true, nil", ok, err)
	}
	// WaitReady consumed nothing.
	got := make([]byte, 2)
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "ab" {
		t.Fatalf("read %q, %v after WaitReady; want %q", got, err, "ab")
	}
}

func TestNewConn(t *testing.T) {
	for _, duplex := range []bool{true, false} {
		a, b, err := pw.Pair(duplex)
		if err != nil {
			t.Fatal(err)
		}
		var ends [2]*pw.Conn
		for i, c := range []*pw.Conn{a, b} {
			h, err := pw.DuplicateFileTo(windows.GetCurrentProcessId(), c.File())
			if err != nil {
				t.Fatal(err)
			}
			if ends[i], err = pw.NewConn(os.NewFile(uintptr(h), "dup")); err != nil {
				t.Fatal(err)
			}
			if ends[i].Kind() != c.Kind() {
				t.Errorf("duplex %v, end %d: NewConn found kind %v, want %v", duplex, i, ends[i].Kind(), c.Kind())
			}
		}
		a.Close()
		b.Close()
		exchange(t, ends[1], ends[0], "through duplicates")
		ends[0].Close()
		ends[1].Close()
	}
}

func TestNewConnNotAPipe(t *testing.T) {
	// Not a temporary file: Wine 8 cannot remove one with Go 1.26's
	// os.RemoveAll ("Invalid function").
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := pw.NewConn(f); err == nil {
		c.Close()
		t.Fatal("NewConn accepted a regular file")
	}
	// NewConn closed f.
	if _, err := f.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("writing f after a failed NewConn: %v, want os.ErrClosed", err)
	}
}

func TestPeerPIDInProcess(t *testing.T) {
	a, b := pair(t, true)
	for _, c := range []*pw.Conn{a, b} {
		pid, err := c.PeerPID()
		if err != nil {
			t.Fatal(err)
		}
		if pid != uint32(os.Getpid()) {
			t.Errorf("PeerPID = %d, want this process, %d", pid, os.Getpid())
		}
	}
}

func openName(name string) error {
	name16, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return err
	}
	h, err := windows.CreateFile(name16, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.OPEN_EXISTING, windows.FILE_FLAG_OVERLAPPED, 0)
	if err == nil {
		windows.CloseHandle(h)
	}
	return err
}

func TestNameCannotBeOpenedAgain(t *testing.T) {
	for _, duplex := range []bool{true, false} {
		a, _ := pair(t, duplex)
		if err := openName(a.Name()); err == nil {
			t.Fatalf("opened %s a second time", a.Name())
		} else if !errors.Is(err, windows.ERROR_PIPE_BUSY) {
			t.Logf("second open of %s: %v", a.Name(), err)
		}
	}
}

// squat creates an instance of a pipe called name, as another program
// could, without FILE_FLAG_FIRST_PIPE_INSTANCE and open to more instances.
func squat(t *testing.T, name string) windows.Handle {
	t.Helper()
	name16, err := windows.UTF16PtrFromString(name)
	if err != nil {
		t.Fatal(err)
	}
	h, err := windows.CreateNamedPipe(name16, windows.PIPE_ACCESS_DUPLEX|windows.FILE_FLAG_OVERLAPPED,
		windows.PIPE_TYPE_BYTE, windows.PIPE_UNLIMITED_INSTANCES, 4096, 4096, 0, nil)
	if err != nil {
		t.Fatalf("squatting on %s: %v", name, err)
	}
	t.Cleanup(func() { windows.CloseHandle(h) })
	return h
}

// connected reports whether a client has opened the squatter's instance h.
func connected(t *testing.T, h windows.Handle) bool {
	t.Helper()
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(ev)
	o := windows.Overlapped{HEvent: ev}
	err = windows.ConnectNamedPipe(h, &o)
	switch err {
	case windows.ERROR_PIPE_CONNECTED:
		return true
	case windows.ERROR_IO_PENDING:
		windows.CancelIoEx(h, &o)
		var n uint32
		windows.GetOverlappedResult(h, &o, &n, true)
		return false
	}
	t.Fatalf("ConnectNamedPipe on the squatter: %v", err)
	return false
}

func TestSquattedNameIsSkipped(t *testing.T) {
	taken := pw.RandomName()
	h := squat(t, taken)
	var names []string
	next := func() string {
		n := taken
		if len(names) > 0 {
			n = pw.RandomName()
		}
		names = append(names, n)
		return n
	}
	for _, duplex := range []bool{true, false} {
		names = nil
		a, b, err := pw.NewPairNamed(duplex, next)
		if err != nil {
			t.Fatalf("Pair with the first name taken: %v", err)
		}
		if len(names) != 2 || a.Name() != names[1] {
			t.Errorf("names tried %q, pair made on %q; want the second name", names, a.Name())
		}
		if connected(t, h) {
			t.Fatal("the squatter's pipe got a client")
		}
		exchange(t, b, a, "not through the squatter")
		a.Close()
		b.Close()
	}
}

func TestPersistentClashGivesUp(t *testing.T) {
	taken := pw.RandomName()
	h := squat(t, taken)
	tries := 0
	_, _, err := pw.NewPairNamed(true, func() string { tries++; return taken })
	if err == nil {
		t.Fatal("Pair succeeded on a taken name")
	}
	if !errors.Is(err, windows.ERROR_ACCESS_DENIED) && !errors.Is(err, windows.ERROR_PIPE_BUSY) && !errors.Is(err, pw.ErrTaken) {
		t.Errorf("error %v; want ERROR_ACCESS_DENIED, ERROR_PIPE_BUSY or one saying the name is taken", err)
	}
	if tries < 2 {
		t.Errorf("Pair tried %d names; want it to retry", tries)
	}
	if connected(t, h) {
		t.Fatal("the squatter's pipe got a client")
	}
}

// TestZeroByteReadWaits checks what [pw.Conn.WaitReady] relies on: a
// zero-byte read of an empty pipe waits for data (here: until the deadline)
// rather than returning at once.
func TestZeroByteReadWaits(t *testing.T) {
	a, b := pair(t, true)
	f := a.File()
	f.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := f.Read(nil); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("zero-byte read of an empty pipe: %v, want os.ErrDeadlineExceeded", err)
	}
	f.SetReadDeadline(time.Time{})
	exchange(t, b, a, "nothing consumed")
}

// An anonymous pipe from os.Pipe is synchronous: it works, and WaitReady
// honours a read deadline although the runtime gives the file none.
func TestNewConnSynchronousPipe(t *testing.T) {
	rf, wf, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	r, err := pw.NewConn(rf)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Kind() != pw.ReadOnly {
		t.Errorf("kind of a pipe's read end: %v, want ReadOnly", r.Kind())
	}
	if err := r.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); !errors.Is(err, os.ErrNoDeadline) {
		t.Fatalf("SetReadDeadline on a synchronous pipe: %v, want os.ErrNoDeadline", err)
	}
	if err := r.WaitReady(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WaitReady past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	if _, err := wf.Write([]byte("sync")); err != nil {
		t.Fatal(err)
	}
	r.SetReadDeadline(time.Now().Add(time.Hour))
	if err := r.WaitReady(); err != nil {
		t.Fatalf("WaitReady with data waiting: %v", err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "sync" {
		t.Fatalf("read %q, %v", got, err)
	}
	wf.Close()
	if n, err := r.Read(got); err != io.EOF {
		t.Fatalf("Read after the writer closed = %d, %v; want io.EOF", n, err)
	}
}
