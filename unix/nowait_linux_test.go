package unix_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ppunix "github.com/procpipe/procpipe/unix"
	"golang.org/x/sys/unix"
)

// envNoWaitProbe makes the test binary run one never-blocks probe (see
// TestNeverBlocksWhenONonblockCleared) and exit.
const envNoWaitProbe = "PROCPIPE_TEST_NOWAIT_PROBE"

// TestNeverBlocksWhenONonblockCleared checks that Read and Write never make
// a blocking system call, even on a descriptor whose O_NONBLOCK was cleared
// (as another process sharing the open file could): they wait on the
// poller, so deadlines still end them. The calls are raw, and a raw call that
// blocked would freeze the whole process at its next garbage collection, so
// each probe runs in a child process that is killed if it does not finish.
func TestNeverBlocksWhenONonblockCleared(t *testing.T) {
	if probe := os.Getenv(envNoWaitProbe); probe != "" {
		noWaitProbe(t, probe)
		return
	}
	// pipe-nowait: a pipe that does not own its open file (as where /proc
	// is not mounted), whose calls carry RWF_NOWAIT.
	for _, probe := range []string{"socket", "pipe", "pipe-nowait"} {
		t.Run(probe, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestNeverBlocksWhenONonblockCleared$", "-test.v")
			cmd.Env = append(os.Environ(), envNoWaitProbe+"="+probe)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("the %s probe blocked in a system call for 30 s:\n%s", probe, out)
			}
			if err != nil {
				t.Fatalf("the %s probe failed: %v\n%s", probe, err, out)
			}
			if i := bytes.Index(out, []byte("SKIP:")); i >= 0 {
				t.Skip(string(out[i:]))
			}
		})
	}
}

// noWaitProbe runs in the child: it clears O_NONBLOCK on both ends of a new
// pair, through File as another process given the file could, then checks
// that a Read of an empty one and a Write to a full one end at their
// deadlines. (On Linux a pipe Conn's File is an open file other than its
// own, so there the mode it clears is not the Conn's: see ownFile.)
func noWaitProbe(t *testing.T, kind string) {
	own := kind == "pipe"
	if kind == "pipe-nowait" {
		ppunix.SetPipeOwnForTest(false)
		kind = "pipe"
	}
	r, w := newPair(t, kind)
	if !own && (r.OwnsFileForTest() || w.OwnsFileForTest()) {
		t.Fatalf("a %s pair made to use RWF_NOWAIT owns its open files", kind)
	}
	roundTrip(t, r, w)
	if kind == "pipe" {
		if err := r.PlainPipeIOForTest(); err != nil {
			noWaitUnsupported(t, err)
		}
	}
	setBlocking(t, r)
	setBlocking(t, w)
	if _, ok := r.TryRead(make([]byte, 10)); ok {
		t.Fatalf("TryRead on an empty %s = true", kind)
	}
	r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read on an empty %s = %v; want the deadline", kind, err)
	}
	w.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	chunk := make([]byte, 1<<20)
	for {
		_, err := w.Write(chunk)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("Write to a full %s = %v; want the deadline", kind, err)
		}
	}
	w.SetWriteDeadline(time.Time{})
	if _, ok := w.TryWrite(chunk); ok {
		t.Fatalf("TryWrite to a full %s = true", kind)
	}
}

// noWaitUnsupported reports, in the probe child, a kernel that refused
// RWF_NOWAIT on a pipe: a skip where that is expected (an emulator, or a
// kernel before 6.4), a failure on a kernel that should take it.
func noWaitUnsupported(t *testing.T, err error) {
	var uts unix.Utsname
	if uerr := unix.Uname(&uts); uerr != nil {
		t.Fatal(uerr)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	if err == unix.ENOSYS {
		t.Skipf("SKIP: no preadv2/pwritev2 here (%v: an emulator such as qemu-user, or Linux %s before 4.6), so pipes use readv and writev, which trust O_NONBLOCK", err, release)
	}
	major, minor := kernelVersion(release)
	if major < 6 || major == 6 && minor < 4 {
		t.Skipf("SKIP: Linux %s refuses RWF_NOWAIT on pipes (%v; 6.4 and later take it), so pipes use readv and writev, which trust O_NONBLOCK", release, err)
	}
	t.Fatalf("Linux %s should take RWF_NOWAIT on a pipe, but the call failed with %v", release, err)
}

// kernelVersion parses the major and minor numbers of a kernel release such
// as "6.18.44-fc".
func kernelVersion(release string) (major, minor int) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	major, _ = strconv.Atoi(parts[0])
	minor, _ = strconv.Atoi(strings.TrimLeftFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return major, minor
}

// TestPipeFallback checks that pipes still read and write through readv and
// writev when RWF_NOWAIT is not used.
func TestPipeFallback(t *testing.T) {
	defer ppunix.SetPipeNoWaitForTest(ppunix.SetPipeNoWaitForTest(false))
	r, w := newPair(t, "pipe")
	roundTrip(t, r, w)
}

// TestFIFOFallsBack checks that a FIFO, whose reads and writes the kernel
// refuses to make with RWF_NOWAIT (Linux 6.18 does), falls back to readv and
// writev, and only if the kernel refuses them; and that its Conn keeps the
// open file it was given (opening a FIFO again could wait for a partner),
// which File returns.
func TestFIFOFallsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	rf, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		rf.Close()
		t.Fatal(err)
	}
	wRefused, rRefused := fifoRefusesNoWait(t, rf, wf)
	r, err := ppunix.NewConn(rf)
	if err != nil {
		wf.Close()
		t.Fatal(err)
	}
	defer r.Close()
	w, err := ppunix.NewConn(wf)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	roundTrip(t, r, w)
	for c, refused := range map[*ppunix.Conn]bool{r: rRefused, w: wRefused} {
		if c.OwnsFileForTest() || c.File() != c.OwnFileForTest() {
			t.Errorf("FIFO end: owns its open file %v, File is its own %v; want false, true", c.OwnsFileForTest(), c.File() == c.OwnFileForTest())
		}
		if fell := c.PlainPipeIOForTest() != nil; fell != refused {
			t.Errorf("FIFO end fell back to readv/writev: %v; the kernel refuses RWF_NOWAIT for it: %v", fell, refused)
		}
	}
}

// fifoRefusesNoWait asks the kernel itself whether it refuses to write and
// to read the FIFO with RWF_NOWAIT, by writing a byte and reading it back
// (qemu-user refuses both calls outright).
func fifoRefusesNoWait(t *testing.T, rf, wf *os.File) (write, read bool) {
	t.Helper()
	var werr, rerr error
	ctl := func(f *os.File, fn func(fd int)) {
		rc, err := f.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		rc.Control(func(fd uintptr) { fn(int(fd)) })
	}
	ctl(wf, func(fd int) { _, werr = unix.Pwritev2(fd, [][]byte{[]byte("p")}, -1, unix.RWF_NOWAIT) })
	if refusal(werr) {
		if _, err := wf.Write([]byte("p")); err != nil {
			t.Fatal(err)
		}
	} else if werr != nil {
		t.Fatalf("pwritev2 on a FIFO: %v", werr)
	}
	ctl(rf, func(fd int) { _, rerr = unix.Preadv2(fd, [][]byte{make([]byte, 1)}, -1, unix.RWF_NOWAIT) })
	if refusal(rerr) {
		if _, err := rf.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	} else if rerr != nil {
		t.Fatalf("preadv2 on a FIFO: %v", rerr)
	}
	return werr != nil, rerr != nil
}

// refusal reports whether err is how the kernel (EOPNOTSUPP, EINVAL on old
// kernels) or qemu-user (ENOSYS) refuses preadv2 or pwritev2 with RWF_NOWAIT.
func refusal(err error) bool {
	return err == unix.EOPNOTSUPP || err == unix.EINVAL || err == unix.ENOSYS
}

// TestFallbackSkipsFirstAttempt checks that a pipe whose calls trust
// O_NONBLOCK (readv and writev) makes no attempt outside the poller: if
// another process cleared O_NONBLOCK, such an attempt would block while
// holding up Close.
func TestFallbackSkipsFirstAttempt(t *testing.T) {
	for _, nowait := range []bool{true, false} {
		old := ppunix.SetPipeNoWaitForTest(nowait)
		r, w := newPair(t, "pipe")
		if got := w.FirstWriteForTest([]byte("x")); got != nowait {
			t.Errorf("RWF_NOWAIT %v: first attempt completed a write with room: %v; want %v", nowait, got, nowait)
		}
		if !nowait {
			if _, err := w.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		if got := r.FirstReadForTest(make([]byte, 1)); got != nowait {
			t.Errorf("RWF_NOWAIT %v: first attempt completed a ready read: %v; want %v", nowait, got, nowait)
		}
		ppunix.SetPipeNoWaitForTest(old)
	}
}

// setBlocking clears O_NONBLOCK on c's open file.
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
