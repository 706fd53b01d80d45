package procpipe_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"testing"

	"github.com/procpipe/procpipe"
)

// Child functions the tests start with procpipe.NewProcess. TestMain registers
// them and dispatches before running any test, so a child never runs the
// test suite.
var children = map[string]func(*procpipe.Conn) error{
	// starts-late registers a function while it runs, after its Dispatch,
	// tries to start a child for it, and sends back what Start said.
	"starts-late": func(conn *procpipe.Conn) error {
		procpipe.Register("inside-child", func(*procpipe.Conn) error { return nil })
		p := procpipe.NewProcess("inside-child", nil, "-test.run=^$")
		if err := p.Start(); err != nil {
			return conn.Send(err.Error())
		}
		return errors.Join(p.Wait(), conn.Send("started"))
	},
	// unused is started by tests whose child lists its descriptors (see
	// envListFDs) and exits before Dispatch; Start wants it registered.
	"unused": func(*procpipe.Conn) error {
		return errors.New("unused ran: the child was to exit before Dispatch")
	},
	// echo sends back every message until the parent closes its end.
	"echo": func(conn *procpipe.Conn) error {
		for {
			b, err := conn.RecvBytes()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := conn.SendBytes(b); err != nil {
				return err
			}
		}
	},
	// ready says "ready" and then waits for a message that never comes.
	"ready": func(conn *procpipe.Conn) error {
		if err := conn.Send("ready"); err != nil {
			return err
		}
		_, err := conn.RecvBytes()
		return err
	},
	// sink says "ready" and then never reads, until its stdin closes.
	"sink": func(conn *procpipe.Conn) error {
		if err := conn.Send("ready"); err != nil {
			return err
		}
		_, err := io.Copy(io.Discard, os.Stdin)
		return err
	},
	// fail returns an error: the child must exit with status 1.
	"fail": func(*procpipe.Conn) error { return errors.New("failing on purpose") },
	// exit3 exits with status 3.
	"exit3": func(*procpipe.Conn) error { os.Exit(3); return nil },
	// greeter is ExampleNewProcess's child.
	"greeter": func(conn *procpipe.Conn) error {
		var msg string
		if err := conn.Recv(&msg); err != nil {
			return err
		}
		fmt.Println("Child received:", msg)
		return nil
	},
	// args sends its os.Args[1:] back.
	"args": func(conn *procpipe.Conn) error { return conn.Send(os.Args[1:]) },
	// midframe writes part of a frame, says so on stdout, waits to be killed.
	"midframe": childMidFrame,
	// garbage writes random bytes to its end and exits.
	"garbage": childGarbage,
	// bench-echo, bench-sink and bench-big serve the benchmarks (bench_test.go).
	"bench-echo": benchProfiled("bench-echo", benchEcho),
	"bench-sink": benchProfiled("bench-sink", benchSink),
	"bench-big":  benchProfiled("bench-big", benchBig),
}

// envListFDs makes the test binary print its open descriptors and exit,
// before it does anything that could open one.
const envListFDs = "PROCPIPE_TEST_LISTFDS"

func TestMain(m *testing.M) {
	if os.Getenv(envListFDs) != "" {
		listFDs()
		os.Exit(0)
	}
	recordInherited()
	for name, f := range children {
		procpipe.Register(name, f)
	}
	procpipe.Dispatch()
	os.Exit(m.Run())
}

// listFDs prints this process's open descriptors, one per line, as
// "fd target"; the directory it reads them from is left out.
func listFDs() {
	dir := "/proc/self/fd"
	if _, err := os.Stat(dir); err != nil {
		dir = "/dev/fd"
	}
	d, err := os.Open(dir)
	if err != nil {
		fmt.Println("error", err)
		return
	}
	self := strconv.Itoa(int(d.Fd()))
	names, err := d.Readdirnames(-1)
	if err != nil {
		fmt.Println("error", err)
		return
	}
	sort.Strings(names)
	for _, n := range names {
		if n == self {
			continue
		}
		target, _ := os.Readlink(filepath.Join(dir, n))
		fmt.Println(n, target)
	}
}

// message is a checksummed payload for tests that must notice loss,
// duplication and corruption.
func message(sender, seq, size int) []byte {
	b := make([]byte, 16+size+sha256.Size)
	binary.BigEndian.PutUint64(b[0:], uint64(sender))
	binary.BigEndian.PutUint64(b[8:], uint64(seq))
	for i := range size {
		b[16+i] = byte(sender*31 + seq*7 + i)
	}
	sum := sha256.Sum256(b[:16+size])
	copy(b[16+size:], sum[:])
	return b
}

// parseMessage checks b's checksum and returns its sender and sequence.
func parseMessage(b []byte) (sender, seq int, err error) {
	if len(b) < 16+sha256.Size {
		return 0, 0, fmt.Errorf("message of %d bytes is too short", len(b))
	}
	body := b[:len(b)-sha256.Size]
	sum := sha256.Sum256(body)
	if !bytes.Equal(sum[:], b[len(body):]) {
		return 0, 0, errors.New("checksum mismatch")
	}
	return int(binary.BigEndian.Uint64(b)), int(binary.BigEndian.Uint64(b[8:])), nil
}

func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>8)
	}
	return p
}

// pipe returns a duplex pair closed at the end of the test.
func pipe(t testing.TB, cfg *procpipe.Config) (*procpipe.Conn, *procpipe.Conn) {
	t.Helper()
	a, b, err := cfg.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// startChild starts the registered child name with the other end of a new
// duplex pipe, and returns this end and the process; the test waits for the
// child at its end.
func startChild(t testing.TB, name string) (*procpipe.Conn, *procpipe.Process) {
	t.Helper()
	parent, p := startChildNoCleanup(t, name)
	t.Cleanup(func() {
		parent.Close()
		p.Kill()
		p.Wait()
	})
	return parent, p
}

// startChildNoCleanup is startChild for tests that close and wait
// themselves, before their own checks.
func startChildNoCleanup(t testing.TB, name string) (*procpipe.Conn, *procpipe.Process) {
	t.Helper()
	parent, child, err := procpipe.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	p := procpipe.NewProcess(name, child)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	return parent, p
}

func skipWithoutChildren(t testing.TB) {
	if runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("no child processes on " + runtime.GOOS)
	}
}

// rawWriter returns a function that writes bytes straight to c's file,
// bypassing the framing, to play a misbehaving peer.
func rawWriter(t *testing.T, c *procpipe.Conn) func([]byte) {
	f := procpipe.FileForTest(c)
	return func(p []byte) {
		if _, err := f.Write(p); err != nil {
			t.Errorf("raw write: %v", err)
		}
	}
}
