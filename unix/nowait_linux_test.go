package unix_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	ppunix "github.com/procpipe/procpipe/unix"
	"golang.org/x/sys/unix"
)

// setBlocking clears O_NONBLOCK on c's open file, as another process sharing
// it could.
func setBlocking(t *testing.T, c *ppunix.Conn) {
	t.Helper()
	rc, err := c.File().SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), false) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
}

// TestNeverBlocksWhenONonblockCleared checks that Read and Write never make
// a blocking system call, even on a descriptor whose O_NONBLOCK was cleared:
// they wait on the poller, so deadlines still end them. (The calls are made
// raw, and a raw call that blocked would hang this test until the rescue
// write below, and the whole process at its next garbage collection.)
func TestNeverBlocksWhenONonblockCleared(t *testing.T) {
	pairs := map[string]func() (*ppunix.Conn, *ppunix.Conn, error){
		"socket": ppunix.Socketpair,
		"pipe":   ppunix.Pipe,
	}
	for name, pair := range pairs {
		for _, nowait := range []bool{true, false} {
			if name == "socket" && !nowait {
				continue // sockets do not use the pipe fallback
			}
			sub := name
			if !nowait {
				sub += "-fallback"
			}
			t.Run(sub, func(t *testing.T) {
				defer ppunix.SetPipeNoWaitForTest(ppunix.SetPipeNoWaitForTest(nowait))
				r, w, err := pair()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				defer w.Close()
				roundTrip(t, r, w)
				if !nowait {
					return // the fallback trusts O_NONBLOCK
				}
				if name == "pipe" && !ppunix.PipeNoWaitForTest() {
					t.Skip("this kernel (or emulator: qemu-user answers ENOSYS) has no RWF_NOWAIT for pipes, so pipes use readv and writev, which trust O_NONBLOCK")
				}
				setBlocking(t, r)
				setBlocking(t, w)
				// A rescue for a broken implementation, not a
				// synchronisation: it unblocks a Read that blocked.
				rescue := time.AfterFunc(10*time.Second, func() { w.Close() })
				defer rescue.Stop()

				r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				if _, err := r.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("Read on an empty %s = %v; want the deadline", name, err)
				}
				r.SetReadDeadline(time.Time{})
				w.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
				chunk := make([]byte, 1<<20)
				for {
					_, err := w.Write(chunk)
					if errors.Is(err, os.ErrDeadlineExceeded) {
						break
					}
					if err != nil {
						t.Fatalf("Write to a full %s = %v; want the deadline", name, err)
					}
				}
			})
		}
	}
}

// roundTrip writes a message larger than a page on w and reads it on r.
func roundTrip(t *testing.T, r, w *ppunix.Conn) {
	t.Helper()
	msg := bytes.Repeat([]byte("procpipe"), 1000)
	done := make(chan error, 1)
	go func() { _, err := w.Write(msg); done <- err }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("data differs")
	}
}
