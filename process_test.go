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
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/procpipe/procpipe"
)

func TestChildEcho(t *testing.T) {
	skipWithoutChildren(t)
	conn, p := startChild(t, "echo")
	for _, n := range []int{0, 1, 16384, 16385, 1 << 20} {
		go conn.SendBytes(pattern(n))
		got, err := conn.RecvBytes()
		if err != nil || !bytes.Equal(got, pattern(n)) {
			t.Fatalf("echo of %d bytes: %v", n, err)
		}
	}
	conn.Close()
	if err := p.Wait(); err != nil || p.ExitCode() != 0 {
		t.Fatalf("Wait = %v, exit code %d; want success", err, p.ExitCode())
	}
}

// TestChildConcurrent runs the 16x16 exchange through a real child that
// echoes every message.
func TestChildConcurrent(t *testing.T) {
	skipWithoutChildren(t)
	conn, _ := startChild(t, "echo")
	concurrentExchange(t, conn, conn, 16, 100)
}

func TestChildKilledGivesEOF(t *testing.T) {
	skipWithoutChildren(t)
	conn, p := startChild(t, "ready")
	var s string
	if err := conn.Recv(&s); err != nil || s != "ready" {
		t.Fatalf("Recv = %q, %v", s, err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.RecvBytes(); err != io.EOF {
		t.Fatalf("RecvBytes after child was killed = %v; want io.EOF", err)
	}
	if err := p.Wait(); err == nil {
		t.Fatal("Wait after Kill succeeded")
	}
}

// TestCloseUnblocksSendToChild fills the pipe to a child that never reads,
// then closes: the blocked Send must return net.ErrClosed.
func TestCloseUnblocksSendToChild(t *testing.T) {
	skipWithoutChildren(t)
	parent := startSink(t)
	done := make(chan error)
	go func() { done <- parent.SendBytes(make([]byte, 64<<20)) }()
	parent.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SendBytes blocked on a full pipe, then Close = %v; want net.ErrClosed", err)
	}
}

func TestExitStatus(t *testing.T) {
	skipWithoutChildren(t)
	tests := []struct {
		name   string
		code   int
		stderr string
	}{
		{"fail", 1, "failing on purpose"},
		{"exit3", 3, ""},
		{"not-registered", 2, "not-registered"},
	}
	for _, tt := range tests {
		p := procpipe.NewProcess(tt.name, nil)
		if tt.name == "not-registered" {
			// Start refuses the name (see TestStartUnknownTarget); a
			// child asked for it by its environment must exit 2.
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), procpipe.EnvFunc+"="+tt.name)
			p = procpipe.Attach(cmd, nil)
		}
		var stderr bytes.Buffer
		p.Cmd.Stderr = &stderr
		err := p.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || p.ExitCode() != tt.code {
			t.Errorf("%s: Run = %v, exit code %d; want exit code %d", tt.name, err, p.ExitCode(), tt.code)
		}
		if !strings.Contains(stderr.String(), tt.stderr) {
			t.Errorf("%s: stderr %q does not mention %q", tt.name, stderr.String(), tt.stderr)
		}
	}
}

func TestChildArgs(t *testing.T) {
	skipWithoutChildren(t)
	parent, child, err := procpipe.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	p := procpipe.NewProcess("args", child, "one", "two words")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := parent.Recv(&got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"one", "two words"}, got); diff != "" {
		t.Errorf("child args (-want +got):\n%s", diff)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestAttachCmd starts the child through the exec.Cmd path, as for a
// program in another language, and checks the environment contract.
func TestAttachCmd(t *testing.T) {
	skipWithoutChildren(t)
	parent, child, err := procpipe.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), procpipe.EnvFunc+"=echo", procpipe.EnvConn+"=99")
	p := procpipe.Attach(cmd, child)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	parent.SendBytes([]byte("via exec.Cmd"))
	if got, err := parent.RecvBytes(); err != nil || string(got) != "via exec.Cmd" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	parent.Close()
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestStartClosesChildEnd(t *testing.T) {
	_, child, err := procpipe.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/nonexistent/program")
	if err := procpipe.Attach(cmd, child).Start(); err == nil {
		t.Fatal("Start of a missing program succeeded")
	}
	if err := child.SendBytes(nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("child end after a failed Start: SendBytes = %v; want net.ErrClosed", err)
	}
}

// TestUndispatchedChildRefuses checks the guard against a child that never
// called Dispatch running the parent's code and starting children of its own.
func TestUndispatchedChildRefuses(t *testing.T) {
	t.Setenv(procpipe.EnvFunc, "echo")
	err := procpipe.NewProcess("echo", nil).Start()
	if err == nil || !strings.Contains(err.Error(), "Dispatch") {
		t.Fatalf("Start in an undispatched child = %v; want a refusal naming Dispatch", err)
	}
}

// TestStartAfterEnvReplaced replaces the Cmd's environment after
// NewProcess, as its doc allows: the child must still run its registered
// function, not this program's main again. (Should it run main, the
// argument keeps it from running any test.)
func TestStartAfterEnvReplaced(t *testing.T) {
	skipWithoutChildren(t)
	parent, child, err := procpipe.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	p := procpipe.NewProcess("echo", child, "-test.run=^$")
	p.Cmd.Env = append(os.Environ(), "PROCPIPE_TEST_EXTRA=1")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := parent.SendBytes([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got, err := parent.RecvBytes(); err != nil || string(got) != "ping" {
		t.Errorf("echo child with a replaced environment answered %q, %v; want \"ping\"", got, err)
	}
	parent.Close()
	if err := p.Wait(); err != nil {
		t.Errorf("child: %v", err)
	}
}

var registerLate sync.Once

// TestStartUnknownTarget starts targets a child could not run: one never
// registered, and one registered after Dispatch (TestMain ran it before
// any test). Start must refuse both, start nothing, and still close the
// child's end.
func TestStartUnknownTarget(t *testing.T) {
	registerLate.Do(func() {
		procpipe.Register("registered-late", func(*procpipe.Conn) error { return nil })
	})
	for _, name := range []string{"never-registered", "registered-late", ""} {
		parent, child, err := procpipe.Pipe(true)
		if err != nil {
			t.Fatal(err)
		}
		p := procpipe.NewProcess(name, child, "-test.run=^$")
		err = p.Start()
		if err == nil {
			p.Wait()
			t.Errorf("Start of %q: nil error; want one", name)
		} else if !strings.Contains(err.Error(), strconv.Quote(name)) {
			t.Errorf("Start of %q: %v; want an error naming it", name, err)
		}
		if p.Pid() != -1 {
			t.Errorf("Start of %q started process %d", name, p.Pid())
		}
		if _, err := parent.RecvBytes(); err != io.EOF {
			t.Errorf("Recv after Start of %q: %v; want io.EOF (the child's end closed)", name, err)
		}
		parent.Close()
	}
}

// TestStartRegisteredInChild has a child register a function while it
// runs and start it: a grandchild's Dispatch could not find it either.
func TestStartRegisteredInChild(t *testing.T) {
	skipWithoutChildren(t)
	parent, child, err := procpipe.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	p := procpipe.NewProcess("starts-late", child, "-test.run=^$")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := parent.Recv(&got); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, `"inside-child" was registered after Dispatch`) {
		t.Errorf("child's Start said %q; want a refusal naming \"inside-child\"", got)
	}
	if err := p.Wait(); err != nil {
		t.Errorf("child: %v", err)
	}
}

func TestParentWithoutEnv(t *testing.T) {
	if _, err := procpipe.Parent(); !errors.Is(err, procpipe.ErrNoParent) {
		t.Fatalf("Parent() = %v; want ErrNoParent", err)
	}
	t.Setenv(procpipe.EnvConn, "not-a-number")
	if _, err := procpipe.Parent(); err == nil || errors.Is(err, procpipe.ErrNoParent) {
		t.Fatalf("Parent() with a bad value = %v; want a clear error", err)
	}
}

func TestRegisterMisusePanics(t *testing.T) {
	for name, f := range map[string]func(){
		"empty name": func() { procpipe.Register("", func(*procpipe.Conn) error { return nil }) },
		"nil func":   func() { procpipe.Register("x-nil", nil) },
		"duplicate":  func() { procpipe.Register("echo", func(*procpipe.Conn) error { return nil }) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register with %s did not panic", name)
				}
			}()
			f()
		}()
	}
}
