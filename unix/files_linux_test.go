package unix_test

import (
	"io"
	"os"
	"testing"

	"github.com/procpipe/procpipe/internal/testhook"
	ppunix "github.com/procpipe/procpipe/unix"
	"golang.org/x/sys/unix"
)

// TestFilesFloodBounded has a peer attach MaxFiles descriptors to each of
// a run of bytes, which no correct peer does: however many arrive, the Conn
// must hold no more than its bound, and close the rest.
func TestFilesFloodBounded(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	c, err := ppunix.NewConn(os.NewFile(uintptr(fds[0]), "flooded"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	rights := make([]int, ppunix.MaxFiles)
	for i := range rights {
		rights[i] = int(devnull.Fd())
	}
	const n = 3*ppunix.MaxWaitingForTest/ppunix.MaxFiles + 1 // bytes, each with MaxFiles descriptors
	base := heldFDs(t)
	sent := make(chan error, 1)
	go func() {
		for i := range n {
			if err := unix.Sendmsg(fds[1], []byte{byte(i)}, unix.UnixRights(rights...), nil, 0); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	buf := make([]byte, 1)
	for i := range n {
		if _, err := io.ReadFull(c, buf); err != nil || buf[0] != byte(i) {
			t.Fatalf("byte %d: %v, %v", i, buf[0], err)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if held := heldFDs(t) - base; held > ppunix.MaxWaitingForTest {
		t.Errorf("the Conn holds %d descriptors after %d arrived; want at most %d", held, n*ppunix.MaxFiles, ppunix.MaxWaitingForTest)
	}
	// The last byte's descriptors were closed on arrival: taking them
	// says so (and drops those of every byte before it).
	if files, err := c.TakeFiles(n - 1); err == nil || files != nil {
		t.Errorf("TakeFiles of descriptors closed on arrival = %d files, %v; want an error", len(files), err)
	}
	if held := heldFDs(t) - base; held != 0 {
		t.Errorf("%d descriptors still held once all were taken or dropped", held)
	}
	c.Close()
	if held := heldFDs(t) - base; held != -1 { // the Conn's own descriptor is gone too
		t.Errorf("%d descriptors left open after Close", held+1)
	}
}

// heldFDs counts this process's open descriptors, leaving out those Conns
// hold to park calls with (see park_linux.go), which come and go with how
// long calls wait.
func heldFDs(t *testing.T) int {
	return openFDs(t) - int(testhook.ParkedFiles.Load())
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
