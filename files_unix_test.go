//go:build unix

package procpipe_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/procpipe/procpipe"
	"golang.org/x/sys/unix"
)

// fdDir lists this process's open descriptors.
func fdDir() string {
	if runtime.GOOS == "linux" {
		return "/proc/self/fd"
	}
	return "/dev/fd"
}

// openFDs returns the number of descriptors this process has open.
func fdCount(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir(fdDir())
	if err != nil {
		t.Fatalf("counting descriptors: %v", err)
	}
	return len(entries)
}

// contentFile returns the read end of a pipe that holds content and whose
// write end is closed, so that reading it to the end gives content.
func contentFile(t testing.TB, content string) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, content); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return r
}

// contentFiles returns n content files named prefix/i.
func contentFiles(t testing.TB, prefix string, n int) ([]*os.File, []string) {
	files := make([]*os.File, n)
	want := make([]string, n)
	for i := range files {
		want[i] = fmt.Sprintf("%s/%d", prefix, i)
		files[i] = contentFile(t, want[i])
	}
	return files, want
}

// readFiles reads each file to the end and closes it.
func readFiles(files []*os.File) ([]string, error) {
	var got []string
	var firstErr error
	for _, f := range files {
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		got = append(got, string(b))
	}
	return got, firstErr
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

// sendAsync runs send in a goroutine (a sender with acknowledgements on
// waits for the receiver) and returns a function that waits for its error.
func sendAsync(send func() error) func() error {
	done := make(chan error, 1)
	go func() { done <- send() }()
	return func() error { return <-done }
}

func TestSendRecvFiles(t *testing.T) {
	for _, cfg := range []*procpipe.Config{nil, {NoFileAck: true}} {
		for _, n := range []int{1, 2, 200, procpipe.MaxFiles} {
			t.Run(fmt.Sprintf("ack=%v/%d", cfg == nil, n), func(t *testing.T) {
				a, b := pipe(t, cfg)
				files, want := contentFiles(t, "f", n)
				wait := sendAsync(func() error { return a.SendFiles(files...) })
				got, err := b.RecvFiles()
				if err != nil {
					t.Fatal(err)
				}
				if err := wait(); err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					// The sender's files stay open and its own.
					if _, err := f.Stat(); err != nil {
						t.Errorf("sender's file after SendFiles: %v", err)
					}
					f.Close()
				}
				contents, err := readFiles(got)
				if err != nil || !equalStrings(contents, want) {
					t.Fatalf("received %d files reading %q, %v; want %q", len(got), contents, err, want)
				}
			})
		}
	}
}

func TestReceivedFilesAreCloseOnExec(t *testing.T) {
	a, b := pipe(t, nil)
	f := contentFile(t, "x")
	defer f.Close()
	wait := sendAsync(func() error { return a.SendFiles(f) })
	got, err := b.RecvFiles()
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	defer closeAll(got)
	rc, err := got[0].SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFD, 0) })
	if ferr != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("received descriptor flags = %#x, %v; want FD_CLOEXEC", flags, ferr)
	}
}

// TestFilesBetweenManyFrames sends files between many small (and some large)
// messages, so that the receiver reads ahead across them: each set of files
// must come out of the stream exactly where it was sent.
func TestFilesBetweenManyFrames(t *testing.T) {
	configs := map[string]*procpipe.Config{
		"ack":             nil,
		"noack":           {NoFileAck: true},
		"noack,tinybuf":   {NoFileAck: true, ReadBufferSize: 7},
		"ack,smallbuffer": {ReadBufferSize: 100},
	}
	sizes := []int{0, 1, 5, 100, 3, 70000, 2, 40}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			a, b := pipe(t, cfg)
			const items = 300
			isFiles := func(i int) bool { return i%7 == 3 || i%11 == 4 }
			wait := sendAsync(func() error {
				for i := range items {
					if isFiles(i) {
						files, _ := contentFiles(t, fmt.Sprint(i), 1+i%3)
						err := a.SendFiles(files...)
						closeAll(files)
						if err != nil {
							return fmt.Errorf("item %d: %v", i, err)
						}
						continue
					}
					if err := a.SendBytes(pattern(sizes[i%len(sizes)])); err != nil {
						return fmt.Errorf("item %d: %v", i, err)
					}
				}
				return nil
			})
			for i := range items {
				if isFiles(i) {
					files, err := b.RecvFiles()
					if err != nil {
						t.Fatalf("item %d: RecvFiles: %v", i, err)
					}
					_, want := contentFiles(t, fmt.Sprint(i), 0)
					for j := range 1 + i%3 {
						want = append(want, fmt.Sprintf("%d/%d", i, j))
					}
					got, err := readFiles(files)
					if err != nil || !equalStrings(got, want) {
						t.Fatalf("item %d: files read %q, %v; want %q", i, got, err, want)
					}
					continue
				}
				got, err := b.RecvBytes()
				if want := pattern(sizes[i%len(sizes)]); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("item %d: message of %d bytes, %v; want %d bytes", i, len(got), err, len(want))
				}
			}
			if err := wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRecvFilesWhenMessageIsNext(t *testing.T) {
	for _, cfg := range []*procpipe.Config{nil, {NoFileAck: true}} {
		a, b := pipe(t, cfg)
		if err := a.Send("first"); err != nil {
			t.Fatal(err)
		}
		if files, err := b.RecvFiles(); !errors.Is(err, procpipe.ErrMessageNext) || files != nil {
			t.Fatalf("RecvFiles before a message = %v, %v; want ErrMessageNext", files, err)
		}
		var s string
		if err := b.Recv(&s); err != nil || s != "first" {
			t.Fatalf("Recv after ErrMessageNext = %q, %v; want the message", s, err)
		}
	}
}

func TestRecvWhenFilesAreNext(t *testing.T) {
	for _, cfg := range []*procpipe.Config{nil, {NoFileAck: true}} {
		a, b := pipe(t, cfg)
		f := contentFile(t, "kept")
		before := fdCount(t)
		wait := sendAsync(func() error {
			if err := a.SendFiles(f); err != nil {
				return err
			}
			return a.Send("after")
		})
		var s string
		if err := b.Recv(&s); !errors.Is(err, procpipe.ErrFilesNext) {
			t.Fatalf("Recv before files = %q, %v; want ErrFilesNext", s, err)
		}
		if _, err := b.RecvBytes(); !errors.Is(err, procpipe.ErrFilesNext) {
			t.Fatalf("RecvBytes before files: %v; want ErrFilesNext", err)
		}
		if _, err := b.RecvBytesInto(make([]byte, 10)); !errors.Is(err, procpipe.ErrFilesNext) {
			t.Fatalf("RecvBytesInto before files: %v; want ErrFilesNext", err)
		}
		if ok, err := b.Poll(0); !ok || err != nil {
			t.Fatalf("Poll with files waiting = %v, %v; want true", ok, err)
		}
		if n := fdCount(t); n != before+1 {
			t.Fatalf("%d descriptors open while the files wait; want %d (one received)", n, before+1)
		}
		files, err := b.RecvFiles()
		if err != nil {
			t.Fatal(err)
		}
		got, err := readFiles(files)
		if err != nil || !equalStrings(got, []string{"kept"}) {
			t.Fatalf("files kept for RecvFiles read %q, %v", got, err)
		}
		if err := b.Recv(&s); err != nil || s != "after" {
			t.Fatalf("Recv after the files = %q, %v", s, err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

func TestSendWithFiles(t *testing.T) {
	a, b := pipe(t, nil)
	type job struct {
		Name  string
		Files int
	}
	files, want := contentFiles(t, "job", 3)
	defer closeAll(files)
	wait := sendAsync(func() error { return a.SendWithFiles(job{"three", 3}, files...) })
	var got job
	recvd, err := b.RecvWithFiles(&got)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	contents, err := readFiles(recvd)
	if got != (job{"three", 3}) || err != nil || !equalStrings(contents, want) {
		t.Fatalf("RecvWithFiles = %+v with files %q, %v", got, contents, err)
	}

	// A message without files: v holds it, and the error says why.
	wait = sendAsync(func() error {
		if err := a.Send(job{"none", 0}); err != nil {
			return err
		}
		return a.Send("next")
	})
	got = job{}
	if recvd, err := b.RecvWithFiles(&got); !errors.Is(err, procpipe.ErrMessageNext) || recvd != nil || got.Name != "none" {
		t.Fatalf("RecvWithFiles of a message without files = %+v, %v, %v; want the message and ErrMessageNext", got, recvd, err)
	}
	var s string
	if err := b.Recv(&s); err != nil || s != "next" {
		t.Fatalf("Recv after = %q, %v", s, err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

// TestTruncatedFilesLeakNothing makes the receiver's control buffer too small
// for the files sent: the error must say so, every descriptor that arrived
// must be closed, and the stream must go on.
func TestTruncatedFilesLeakNothing(t *testing.T) {
	if !reportsCtrunc(t) {
		t.Skip("this kernel or emulator does not report MSG_CTRUNC for a control buffer too small for the descriptors sent (qemu-user does not), so truncation cannot be told from a lying peer here")
	}
	for _, size := range []int{1, unix.CmsgSpace(2 * 4)} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			restore := procpipe.SetControlBufferSizeForTest(size)
			a, b := pipe(t, nil)
			restore()
			files, _ := contentFiles(t, "t", 5)
			before := fdCount(t)
			wait := sendAsync(func() error {
				if err := a.SendFiles(files...); err != nil {
					return err
				}
				return a.Send("after")
			})
			got, err := b.RecvFiles()
			if !errors.Is(err, procpipe.ErrFilesTruncated) || got != nil {
				t.Fatalf("RecvFiles into a %d-byte control buffer = %v, %v; want ErrFilesTruncated", size, got, err)
			}
			if err := wait(); err != nil {
				t.Fatal(err)
			}
			if n := fdCount(t); n != before {
				t.Fatalf("%d descriptors open after the truncated receive; want %d", n, before)
			}
			var s string
			if err := b.Recv(&s); err != nil || s != "after" {
				t.Fatalf("Recv after the truncated files = %q, %v", s, err)
			}
			closeAll(files)
		})
	}
}

func TestCloseClosesQueuedFiles(t *testing.T) {
	a, b, err := (&procpipe.Config{NoFileAck: true}).Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	files, _ := contentFiles(t, "q", 3)
	defer closeAll(files)
	before := fdCount(t)
	for _, f := range files {
		if err := a.SendFiles(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Send("x"); err != nil {
		t.Fatal(err)
	}
	// Reading ahead queues every file sent.
	if _, err := b.RecvBytes(); !errors.Is(err, procpipe.ErrFilesNext) {
		t.Fatalf("RecvBytes = %v; want ErrFilesNext", err)
	}
	if n := fdCount(t); n <= before {
		t.Fatalf("%d descriptors open with files queued; want more than %d", n, before)
	}
	b.Close()
	if n := fdCount(t); n != before-1 {
		t.Fatalf("%d descriptors open after Close; want %d (the queued files and the Conn's own closed)", n, before-1)
	}
}

func TestFilesNeedASocket(t *testing.T) {
	r, w, err := procpipe.Pipe(false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f := contentFile(t, "x")
	defer f.Close()
	if err := w.SendFiles(f); !errors.Is(err, procpipe.ErrNotSocket) {
		t.Errorf("SendFiles on a pipe = %v; want ErrNotSocket", err)
	}
	if _, err := r.RecvFiles(); !errors.Is(err, procpipe.ErrNotSocket) {
		t.Errorf("RecvFiles on a pipe = %v; want ErrNotSocket", err)
	}
}

func TestWrongNumberOfFiles(t *testing.T) {
	a, b := pipe(t, &procpipe.Config{NoFileAck: true})
	files, _ := contentFiles(t, "n", procpipe.MaxFiles+1)
	defer closeAll(files)
	if err := a.SendFiles(files...); !errors.Is(err, procpipe.ErrTooManyFiles) {
		t.Errorf("SendFiles of %d files = %v; want ErrTooManyFiles", len(files), err)
	}
	if err := a.SendFiles(); !errors.Is(err, procpipe.ErrTooManyFiles) {
		t.Errorf("SendFiles of no files = %v; want ErrTooManyFiles", err)
	}
	if err := a.SendFiles(files[0], nil); !errors.Is(err, os.ErrInvalid) {
		t.Errorf("SendFiles with a nil file = %v; want os.ErrInvalid", err)
	}
	closed := contentFile(t, "c")
	closed.Close()
	if err := a.SendFiles(files[0], closed); err == nil {
		t.Errorf("SendFiles with a closed file succeeded")
	}
	if ok, err := b.Poll(0); ok || err != nil {
		t.Fatalf("after refused sends, Poll = %v, %v; want nothing sent", ok, err)
	}
}

// mixedPair returns a connected pair of Conns made with different settings.
func mixedPair(t testing.TB, cfgA, cfgB *procpipe.Config) (*procpipe.Conn, *procpipe.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.CloseOnExec(fds[0])
	unix.CloseOnExec(fds[1])
	a, err := cfgA.NewConn(os.NewFile(uintptr(fds[0]), "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := cfgB.NewConn(os.NewFile(uintptr(fds[1]), "b"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestPeerWithoutAck has a sender wait for an acknowledgement that a peer
// without acknowledgements never sends: the sender must stop waiting when
// the peer's next message arrives instead, and leave that message intact.
func TestPeerWithoutAck(t *testing.T) {
	a, b := mixedPair(t, nil, &procpipe.Config{NoFileAck: true})
	f := contentFile(t, "x")
	defer f.Close()
	wait := sendAsync(func() error { return a.SendFiles(f) })
	files, err := b.RecvFiles()
	if err != nil {
		t.Fatal(err)
	}
	closeAll(files)
	if err := b.Send("not an ack"); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatalf("SendFiles to a peer that does not acknowledge, then sends: %v", err)
	}
	var s string
	if err := a.Recv(&s); err != nil || s != "not an ack" {
		t.Fatalf("Recv after = %q, %v; want the peer's message", s, err)
	}
}

// TestAckWhileAnotherGoroutineReceives sends files while another goroutine
// receives messages on the same Conn, which meets the acknowledgements
// first: it must consume them, not read them as messages.
func TestAckWhileAnotherGoroutineReceives(t *testing.T) {
	a, b := pipe(t, nil)
	const n = 100
	received := make(chan error, 1)
	go func() {
		for i := range n {
			var got int
			if err := a.Recv(&got); err != nil || got != i {
				received <- fmt.Errorf("message %d: got %d, %v", i, got, err)
				return
			}
		}
		received <- nil
	}()
	peer := sendAsync(func() error {
		for i := range n {
			files, err := b.RecvFiles()
			if err != nil {
				return fmt.Errorf("files %d: %v", i, err)
			}
			closeAll(files)
			if err := b.Send(i); err != nil {
				return err
			}
		}
		return nil
	})
	for i := range n {
		f := contentFile(t, "x")
		err := a.SendFiles(f)
		f.Close()
		if err != nil {
			t.Fatalf("SendFiles %d: %v", i, err)
		}
	}
	if err := peer(); err != nil {
		t.Fatal(err)
	}
	if err := <-received; err != nil {
		t.Fatal(err)
	}
}

// TestSendWithClosedFileSendsNothing checks that a message whose files
// cannot be sent is not sent either.
func TestSendWithClosedFileSendsNothing(t *testing.T) {
	a, b := pipe(t, &procpipe.Config{NoFileAck: true})
	closed := contentFile(t, "c")
	closed.Close()
	if err := a.SendWithFiles("lonely", closed); err == nil {
		t.Fatal("SendWithFiles with a closed file succeeded")
	}
	if ok, err := b.Poll(0); ok || err != nil {
		t.Fatalf("after a failed SendWithFiles, Poll = %v, %v; want nothing sent", ok, err)
	}
}

// reportsCtrunc probes whether the system sets MSG_CTRUNC when a control
// buffer is too small for the descriptors that arrive, with a raw
// socketpair and no procpipe code.
func reportsCtrunc(t *testing.T) bool {
	syscall.ForkLock.Lock() // no child may inherit these
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
	}
	syscall.ForkLock.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	send := []int{0, 1, 2, 0, 1}
	if err := unix.Sendmsg(fds[0], []byte{5}, unix.UnixRights(send...), nil, 0); err != nil {
		t.Fatal(err)
	}
	oob := make([]byte, unix.CmsgSpace(2*4))
	_, oobn, flags, _, err := unix.Recvmsg(fds[1], make([]byte, 1), oob, 0)
	if err != nil {
		t.Fatal(err)
	}
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				for _, fd := range got {
					unix.Close(fd)
				}
			}
		}
	}
	return flags&unix.MSG_CTRUNC != 0
}
