package procpipe_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procpipe/procpipe"
	"github.com/procpipe/procpipe/windows"
	xwindows "golang.org/x/sys/windows"
)

// patience bounds waits that end at once when the code is right, so that a
// wrong result fails the test instead of hanging it. It is never asserted.
const patience = 30 * time.Second

func winPipe(t *testing.T, duplex bool) (*procpipe.Conn, *procpipe.Conn) {
	t.Helper()
	a, b, err := procpipe.Pipe(duplex)
	if err != nil {
		t.Fatalf("Pipe(%v): %v", duplex, err)
	}
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

func TestWindowsSendRecv(t *testing.T) {
	a, b := winPipe(t, true)
	for _, ends := range [][2]*procpipe.Conn{{a, b}, {b, a}} {
		want := map[string]int{"answer": 42}
		if err := ends[0].Send(want); err != nil {
			t.Fatal(err)
		}
		var got map[string]int
		if err := ends[1].Recv(&got); err != nil {
			t.Fatal(err)
		}
		if got["answer"] != 42 || len(got) != 1 {
			t.Fatalf("Recv = %v, want %v", got, want)
		}
	}
	// An empty message and a large one, in order.
	big := bytes.Repeat([]byte("0123456789"), 100_000)
	done := make(chan error, 1)
	go func() {
		err := a.SendBytes(nil)
		if err == nil {
			err = a.SendBytes(big)
		}
		done <- err
	}()
	if got, err := b.RecvBytes(); err != nil || len(got) != 0 {
		t.Fatalf("RecvBytes of an empty message = %q, %v", got, err)
	}
	if got, err := b.RecvBytes(); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("RecvBytes of a 1 MB message: %d bytes, %v", len(got), err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWindowsOneWay(t *testing.T) {
	r, w := winPipe(t, false)
	if err := r.Send("x"); !errors.Is(err, procpipe.ErrReceiveOnly) {
		t.Errorf("Send on the receiving end: %v, want ErrReceiveOnly", err)
	}
	if _, err := w.RecvBytes(); !errors.Is(err, procpipe.ErrSendOnly) {
		t.Errorf("Recv on the sending end: %v, want ErrSendOnly", err)
	}
	if err := w.Send("one way"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := r.Recv(&got); err != nil || got != "one way" {
		t.Fatalf("Recv = %q, %v", got, err)
	}
}

func TestWindowsDeadlines(t *testing.T) {
	a, _ := winPipe(t, true)
	a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := a.RecvBytes(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("RecvBytes past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	a.SetReadDeadline(time.Time{})
	// b never reads: Send fills the pipe and blocks until its deadline.
	a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	var err error
	msg := make([]byte, 1<<20)
	for i := 0; i < 256 && err == nil; i++ {
		err = a.SendBytes(msg)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("SendBytes to a peer that does not read: %v, want os.ErrDeadlineExceeded", err)
	}
}

func TestWindowsCloseUnblocksRecv(t *testing.T) {
	a, _ := winPipe(t, true)
	done := make(chan error, 1)
	go func() {
		_, err := a.RecvBytes()
		done <- err
	}()
	a.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("RecvBytes interrupted by Close: %v, want net.ErrClosed", err)
	}
}

func TestWindowsCloseUnblocksSend(t *testing.T) {
	a, _ := winPipe(t, true)
	done := make(chan error, 1)
	go func() {
		msg := make([]byte, 1<<20)
		for i := 0; i < 256; i++ {
			if err := a.SendBytes(msg); err != nil {
				done <- err
				return
			}
		}
		done <- errors.New("256 MB sent to a peer that does not read")
	}()
	a.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SendBytes interrupted by Close: %v, want net.ErrClosed", err)
	}
}

func TestWindowsPeerClosed(t *testing.T) {
	a, b := winPipe(t, true)
	if err := b.Send("last"); err != nil {
		t.Fatal(err)
	}
	b.Close()
	var got string
	if err := a.Recv(&got); err != nil || got != "last" {
		t.Fatalf("Recv = %q, %v", got, err)
	}
	if err := a.Recv(&got); err != io.EOF {
		t.Fatalf("Recv after the peer closed: %v, want io.EOF", err)
	}
	if err := a.Send("anyone?"); !errors.Is(err, procpipe.ErrPeerGone) {
		t.Fatalf("Send to a closed peer: %v, want ErrPeerGone", err)
	}
}

func TestWindowsPoll(t *testing.T) {
	a, b := winPipe(t, true)
	if ok, err := a.Poll(0); ok || err != nil {
		t.Fatalf("Poll(0) on an empty pipe = %v, %v", ok, err)
	}
	if ok, err := a.Poll(10 * time.Millisecond); ok || err != nil {
		t.Fatalf("Poll(10ms) on an empty pipe = %v, %v", ok, err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Send("here") }()
	if ok, err := a.Poll(-1); !ok || err != nil {
		t.Fatalf("Poll(-1) with a message coming = %v, %v", ok, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var got string
	if err := a.Recv(&got); err != nil || got != "here" {
		t.Fatalf("Recv after Poll = %q, %v", got, err)
	}
	b.Close()
	if ok, err := a.Poll(-1); !ok || err != nil {
		t.Fatalf("Poll(-1) at EOF = %v, %v", ok, err)
	}
}

func start(t *testing.T, target string, end *procpipe.Conn) *procpipe.Process {
	t.Helper()
	p := procpipe.NewProcess(target, end)
	p.Cmd.Stderr = io.Discard // children that fail on purpose say so
	if err := p.Start(); err != nil {
		t.Fatalf("starting %s: %v", target, err)
	}
	t.Cleanup(func() {
		if p.Cmd.ProcessState == nil {
			p.Kill()
			p.Wait()
		}
	})
	return p
}

// recvEOF checks that c reaches EOF, failing (instead of hanging) if it
// does not come within patience.
func recvEOF(t *testing.T, c *procpipe.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(patience))
	if msg, err := c.RecvBytes(); err != io.EOF {
		t.Fatalf("Recv = %q, %v; want io.EOF", msg, err)
	}
}

func TestWindowsChild(t *testing.T) {
	parent, child := winPipe(t, true)
	p := start(t, "windows-echo", child)
	for _, msg := range []string{"hi", "bye"} {
		if err := parent.Send(msg); err != nil {
			t.Fatal(err)
		}
		parent.SetReadDeadline(time.Now().Add(patience))
		var got string
		if err := parent.Recv(&got); err != nil || got != "echo: "+msg {
			t.Fatalf("Recv from the child = %q, %v", got, err)
		}
	}
	// Our Close ends the child's loop with EOF.
	parent.Close()
	if err := p.Wait(); err != nil || p.ExitCode() != 0 {
		t.Fatalf("Wait = %v, exit code %d; want nil, 0", err, p.ExitCode())
	}
}

func TestWindowsChildExitStatus(t *testing.T) {
	for target, code := range map[string]int{"windows-exit7": 7, "windows-fail": 1} {
		parent, child := winPipe(t, true)
		p := start(t, target, child)
		// The child's exit closes the last handle of its end: the
		// parent's copy was closed by Start, and so was the inheritable
		// duplicate.
		recvEOF(t, parent)
		var ee *exec.ExitError
		if err := p.Wait(); !errors.As(err, &ee) || p.ExitCode() != code {
			t.Errorf("%s: Wait = %v, exit code %d; want an *exec.ExitError, %d", target, err, p.ExitCode(), code)
		}
	}
}

func TestWindowsChildKilled(t *testing.T) {
	parent, child := winPipe(t, true)
	p := start(t, "windows-block", child)
	parent.SetReadDeadline(time.Now().Add(patience))
	var got string
	if err := parent.Recv(&got); err != nil || got != "ready" {
		t.Fatalf("Recv from the child = %q, %v", got, err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	recvEOF(t, parent)
	if err := p.Wait(); err == nil || p.ExitCode() == 0 {
		t.Errorf("Wait for a killed child = %v, exit code %d; want an error and a non-zero code", err, p.ExitCode())
	}
}

// An unrelated child inherits no end: closing ours gives the peer EOF while
// that child lives.
func TestWindowsNoEndLeaksIntoOtherChildren(t *testing.T) {
	a, b := winPipe(t, true)
	p := procpipe.NewProcess("windows-stdin", nil)
	stdin, err := p.Cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	recvEOF(t, a)
	stdin.Close()
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestWindowsPassHandleToChild(t *testing.T) {
	parent, child := winPipe(t, true)
	p := start(t, "windows-take", child)
	r, w, err := windows.Pair(false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h, err := windows.DuplicateFileTo(uint32(p.Pid()), w.File())
	if err != nil {
		t.Fatal(err)
	}
	w.Close() // the child's duplicate is now the only sending end
	if err := parent.Send(strconv.Itoa(os.Getpid()) + " " + strconv.FormatUint(uint64(h), 10)); err != nil {
		windows.CloseIn(uint32(p.Pid()), h)
		t.Fatal(err)
	}
	r.SetReadDeadline(time.Now().Add(patience))
	got, err := io.ReadAll(r) // EOF: the child exited, closing the duplicate
	if err != nil || string(got) != "hello through a passed handle" {
		t.Fatalf("read %q, %v from the passed handle", got, err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

func TestWindowsCloseIn(t *testing.T) {
	parent, child := winPipe(t, true)
	p := start(t, "windows-block", child)
	parent.SetReadDeadline(time.Now().Add(patience))
	var got string
	if err := parent.Recv(&got); err != nil || got != "ready" {
		t.Fatalf("Recv from the child = %q, %v", got, err)
	}
	r, w, err := windows.Pair(false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h, err := windows.DuplicateFileTo(uint32(p.Pid()), w.File())
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	// Say sending h failed: closing it in the child leaves no sending end.
	if err := windows.CloseIn(uint32(p.Pid()), h); err != nil {
		t.Fatal(err)
	}
	r.SetReadDeadline(time.Now().Add(patience))
	if n, err := r.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("Read with the duplicate closed in the child = %d, %v; want io.EOF", n, err)
	}
}

func TestWindowsPipeNameNotOpenableByOthers(t *testing.T) {
	for _, duplex := range []bool{true, false} {
		parent, child := winPipe(t, true)
		p := start(t, "windows-open", child)
		a, b, err := windows.Pair(duplex)
		if err != nil {
			t.Fatal(err)
		}
		if err := parent.Send(a.Name()); err != nil {
			t.Fatal(err)
		}
		parent.SetReadDeadline(time.Now().Add(patience))
		var got string
		if err := parent.Recv(&got); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got, "error ") {
			t.Errorf("another process opening %s: %s", a.Name(), got)
		}
		a.Close()
		b.Close()
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

// The environment contract: a child started with Attach on any command
// finds its end in PROCPIPE_CONN, a handle value. The child here is this test
// binary running TestWindowsAttachChild only.
func TestWindowsAttach(t *testing.T) {
	parent, child := winPipe(t, true)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestWindowsAttachChild$")
	cmd.Env = append(os.Environ(), attachChildEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr // the child test's verdict
	p := procpipe.Attach(cmd, child)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.Cmd.ProcessState == nil {
			p.Kill()
			p.Wait()
		}
	})
	parent.SetReadDeadline(time.Now().Add(patience))
	var got string
	if err := parent.Recv(&got); err != nil || got != "ready" {
		t.Fatalf("Recv from the child = %q, %v", got, err)
	}
	if err := parent.Send("attached"); err != nil {
		t.Fatal(err)
	}
	if err := parent.Recv(&got); err != nil || got != "echo: attached" {
		t.Fatalf("Recv from the child = %q, %v", got, err)
	}
	recvEOF(t, parent)
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

const attachChildEnv = "PROCPIPE_TEST_ATTACH_CHILD"

// TestWindowsAttachChild is the child of TestWindowsAttach; in any other
// process it is skipped.
func TestWindowsAttachChild(t *testing.T) {
	if os.Getenv(attachChildEnv) == "" {
		t.Skip("the child of TestWindowsAttach")
	}
	c, err := procpipe.Parent()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := os.LookupEnv(procpipe.EnvConn); ok {
		t.Error("Parent left " + procpipe.EnvConn + " in the environment")
	}
	// The inherited handle is still overlapped and on this process's
	// completion port, which the parent gave up: deadlines work (the
	// parent sends nothing before "ready"). Wine 8 cannot move a file to
	// another completion port (FileReplaceCompletionInformation is not
	// implemented), so there the child's end has no deadlines.
	// Poll's own timeout works either way.
	if ok, err := c.Poll(10 * time.Millisecond); ok || err != nil {
		t.Fatalf("Poll(10ms) before the parent sends = %v, %v; want false, nil", ok, err)
	}
	if underWine() {
		t.Log("under Wine: not checking deadlines on an inherited end")
	} else {
		if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if msg, err := c.RecvBytes(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("RecvBytes past the deadline = %q, %v; want os.ErrDeadlineExceeded", msg, err)
		}
		c.SetReadDeadline(time.Time{})
	}
	if err := c.Send("ready"); err != nil {
		t.Fatal(err)
	}
	var msg string
	if err := c.Recv(&msg); err != nil {
		t.Fatal(err)
	}
	if err := c.Send("echo: " + msg); err != nil {
		t.Fatal(err)
	}
}

// underWine reports whether this process runs under Wine, whose ntdll
// exports wine_get_version.
func underWine() bool {
	return xwindows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// TestParentWrongHandle points EnvConn at a handle that is not a pipe:
// Parent must fail and leave the handle open, as it belongs to someone else.
func TestParentWrongHandle(t *testing.T) {
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Setenv(procpipe.EnvConn, strconv.FormatUint(uint64(f.Fd()), 10))
	if c, err := procpipe.Parent(); err == nil {
		c.Close()
		t.Fatalf("Parent() with %s naming a file succeeded", procpipe.EnvConn)
	}
	if _, err := f.Stat(); err != nil {
		t.Errorf("the file Parent() refused: %v", err)
	}
	if _, err := f.Read(make([]byte, 1)); err != nil {
		t.Errorf("reading the file Parent() refused: %v", err)
	}
}
