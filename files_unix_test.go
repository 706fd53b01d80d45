//go:build unix

package procpipe_test

import (
	"errors"
	"fmt"
	"os"
	"runtime"
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
	n, err := countFDs()
	if err != nil {
		t.Fatalf("counting descriptors: %v", err)
	}
	return n
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
