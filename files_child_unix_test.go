//go:build unix

package procpipe_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/procpipe/procpipe"
	"github.com/procpipe/procpipe/internal/testhook"
	"golang.org/x/sys/unix"
)

// Unix file-passing children, added to the children that TestMain
// registers.
var unixFileChildren = map[string]func(*procpipe.Conn) error{
	// report-inheritable takes no inherited file, and reports what its own
	// children would get: EnvFiles, and its descriptors above 2 that are
	// not close-on-exec.
	"report-inheritable": func(conn *procpipe.Conn) error {
		open, err := inheritableFDs()
		if err != nil {
			return err
		}
		return conn.SendBytes(fmt.Appendf(nil, "%s=%q inheritable=%v", procpipe.EnvFiles, os.Getenv(procpipe.EnvFiles), open))
	},
	// serve-passed receives a listener and answers one line on one
	// connection to it.
	"serve-passed": func(conn *procpipe.Conn) error {
		files, err := conn.RecvFiles()
		if err != nil {
			return err
		}
		return serveOne(files[0])
	},
	// serve-inherited does the same with the listener it inherited as
	// "listener", after checking that other names are refused.
	"serve-inherited": func(conn *procpipe.Conn) error {
		if _, err := procpipe.InheritedFile("other"); !errors.Is(err, procpipe.ErrNoInheritedFile) {
			return fmt.Errorf("InheritedFile(other) = %v; want ErrNoInheritedFile", err)
		}
		f, err := procpipe.InheritedFile("listener")
		if err != nil {
			return err
		}
		if _, err := procpipe.InheritedFile("listener"); !errors.Is(err, procpipe.ErrNoInheritedFile) {
			return fmt.Errorf("InheritedFile(listener) twice = %v; want ErrNoInheritedFile", err)
		}
		if v, ok := os.LookupEnv(procpipe.EnvFiles); ok {
			return fmt.Errorf("%s=%q is still set after InheritedFile", procpipe.EnvFiles, v)
		}
		if err := conn.Send("ready"); err != nil {
			return err
		}
		return serveOne(f)
	},
}

func init() { maps.Copy(children, unixFileChildren) }

// serveOne turns f into a listener, closes f, and answers the first line of
// the first connection with "got: " and the line.
func serveOne(f *os.File) error {
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return err
	}
	defer l.Close()
	c, err := l.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c, "got: %s", line)
	return err
}

// countFDs counts this process's descriptors, leaving out those Conns hold
// to park calls that wait with (see unix.Conn), which come and go with how
// long calls wait.
func countFDs() (int, error) {
	entries, err := os.ReadDir(fdDir())
	return len(entries) - int(testhook.ParkedFiles.Load()), err
}

// ask sends a line to addr and returns the answer line.
func ask(t *testing.T, addr, line string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatal(err)
	}
	answer, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return strings.TrimSuffix(answer, "\n")
}

func TestPassListenerToChild(t *testing.T) {
	skipWithoutChildren(t)
	conn, p := startChild(t, "serve-passed")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.SendConn(l.(*net.TCPListener)); err != nil {
		t.Fatal(err)
	}
	// The child serves on its copy; this one only lets the test dial.
	l.Close()
	if got := ask(t, l.Addr().String(), "hello"); got != "got: hello" {
		t.Fatalf("answer through the passed listener = %q", got)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

func TestChildInheritsNamedFile(t *testing.T) {
	skipWithoutChildren(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lf, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	parent, child, err := procpipe.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	p := procpipe.NewProcess("serve-inherited", child)
	p.AddFile("listener", lf)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	// On failure the child may still be waiting for a connection.
	defer func() {
		if t.Failed() {
			p.Kill()
		}
		p.Wait()
	}()
	// The file stays the parent's: still open after Start.
	if _, err := lf.Stat(); err != nil {
		t.Errorf("the added file after Start: %v", err)
	}
	lf.Close()
	var s string
	if err := parent.Recv(&s); err != nil || s != "ready" {
		t.Fatalf("child said %q, %v", s, err)
	}
	if got := ask(t, l.Addr().String(), "inherited"); got != "got: inherited" {
		t.Fatalf("answer through the inherited listener = %q", got)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// inheritableFDs lists this process's descriptors above 2 that are not
// close-on-exec, which its children inherit.
func inheritableFDs() ([]string, error) {
	ents, err := os.ReadDir("/dev/fd")
	if err != nil {
		return nil, err
	}
	var open []string
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
			open = append(open, e.Name())
		}
	}
	return open, nil
}

// TestUntakenInheritedFilesStayHere starts a child that takes none of the
// files it inherits: none may reach a child of its own, neither in the
// environment nor as an open descriptor. (Descriptors this process itself
// inherited without close-on-exec, from a shell say, pass through both.)
func TestUntakenInheritedFilesStayHere(t *testing.T) {
	skipWithoutChildren(t)
	ours, err := inheritableFDs()
	if err != nil {
		t.Fatal(err)
	}
	parent, child, err := procpipe.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	p := procpipe.NewProcess("report-inheritable", child)
	p.AddFile("log", contentFile(t, "log"))
	p.AddFile("data", contentFile(t, "data"))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	got, err := parent.RecvBytes()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s=%q inheritable=%v", procpipe.EnvFiles, "", ours); string(got) != want {
		t.Errorf("a child that took no inherited file would hand its own children %s; want %s", got, want)
	}
	if err := p.Wait(); err != nil {
		t.Errorf("child: %v", err)
	}
}

func TestAddFileRefusesBadNames(t *testing.T) {
	f := contentFile(t, "x")
	defer f.Close()
	for _, names := range [][]string{{""}, {"a=b"}, {"a,b"}, {"é"}, {"x", "x"}} {
		_, child, err := procpipe.Pipe(true)
		if err != nil {
			t.Fatal(err)
		}
		p := procpipe.NewProcess("echo", child)
		for _, n := range names {
			p.AddFile(n, f)
		}
		if err := p.Start(); err == nil {
			p.Kill()
			p.Wait()
			t.Errorf("Start with files named %q succeeded", names)
		}
	}
}

// TestPassListenerExample builds and runs examples/pass_listener.
func TestPassListenerExample(t *testing.T) {
	skipWithoutChildren(t)
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the example")
	}
	exe := filepath.Join(t.TempDir(), "pass_listener")
	if out, err := exec.Command(gotool, "build", "-o", exe, "./examples/pass_listener").CombinedOutput(); err != nil {
		t.Fatalf("building the example: %v\n%s", err, out)
	}
	cmd := exec.Command(exe)
	cmd.Env = dropVars(os.Environ(), procpipe.EnvConn, procpipe.EnvFunc, procpipe.EnvFiles)
	out, err := cmd.CombinedOutput()
	if want := "Parent received: child served: HELLO, LISTENER\n"; err != nil || string(out) != want {
		t.Fatalf("example printed %q, %v; want %q", out, err, want)
	}
}

func dropVars(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}
