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
	"strings"
	"testing"

	"github.com/procpipe/procpipe"
)

// File-passing children, added to the children that TestMain registers.
var fileChildren = map[string]func(*procpipe.Conn) error{
	// files-read receives sets of files until the parent closes its end,
	// and answers each with the files' contents.
	"files-read": func(conn *procpipe.Conn) error {
		for {
			files, err := conn.RecvFiles()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			got, err := readFiles(files)
			if err != nil {
				return err
			}
			if err := conn.Send(got); err != nil {
				return err
			}
		}
	},
	// files-loop does what the parent says: "pass" receives files, reads and
	// closes them and passes one back; "count" sends its number of open
	// descriptors; "done" ends.
	"files-loop": func(conn *procpipe.Conn) error {
		for {
			var cmd string
			if err := conn.Recv(&cmd); err != nil {
				return err
			}
			switch cmd {
			case "pass":
				files, err := conn.RecvFiles()
				if err != nil {
					return err
				}
				if _, err := readFiles(files); err != nil {
					return err
				}
				f, err := newContentFile("from child")
				if err != nil {
					return err
				}
				err = conn.SendFiles(f)
				f.Close()
				if err != nil {
					return err
				}
			case "count":
				n, err := countFDs()
				if err != nil {
					return err
				}
				if err := conn.Send(n); err != nil {
					return err
				}
			case "done":
				return nil
			default:
				return fmt.Errorf("unknown command %q", cmd)
			}
		}
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
	// conn-passed receives one end of another connection and answers a
	// message on it.
	"conn-passed": func(conn *procpipe.Conn) error {
		files, err := conn.RecvFiles()
		if err != nil {
			return err
		}
		other, err := procpipe.NewConn(files[0])
		if err != nil {
			return err
		}
		defer other.Close()
		var s string
		if err := other.Recv(&s); err != nil {
			return err
		}
		return other.Send(strings.ToUpper(s))
	},
}

func init() { maps.Copy(children, fileChildren) }

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

func newContentFile(content string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	_, err = io.WriteString(w, content)
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func countFDs() (int, error) {
	entries, err := os.ReadDir(fdDir())
	return len(entries), err
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

func TestPassFilesToChild(t *testing.T) {
	skipWithoutChildren(t)
	conn, p := startChild(t, "files-read")
	for _, n := range []int{1, 2, 200} {
		files, want := contentFiles(t, fmt.Sprintf("n%d", n), n)
		if err := conn.SendFiles(files...); err != nil {
			t.Fatalf("SendFiles of %d: %v", n, err)
		}
		closeAll(files)
		var got []string
		if err := conn.Recv(&got); err != nil {
			t.Fatal(err)
		}
		if !equalStrings(got, want) {
			t.Fatalf("child read %d files as %q; want %q", n, got, want)
		}
	}
	conn.Close()
	if err := p.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
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

func TestPassConnEndToChild(t *testing.T) {
	skipWithoutChildren(t)
	conn, p := startChild(t, "conn-passed")
	mine, theirs, err := procpipe.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	if err := conn.SendConn(procpipe.FileForTest(theirs)); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	if err := mine.Send("over the passed end"); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := mine.Recv(&s); err != nil || s != "OVER THE PASSED END" {
		t.Fatalf("answer on the passed end = %q, %v", s, err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// TestFilePassingLeaksNothing passes files both ways a thousand times and
// checks that both processes end with the descriptors they began with.
func TestFilePassingLeaksNothing(t *testing.T) {
	skipWithoutChildren(t)
	conn, p := startChild(t, "files-loop")
	pass := func() {
		t.Helper()
		f := contentFile(t, "from parent")
		if err := conn.Send("pass"); err != nil {
			t.Fatal(err)
		}
		err := conn.SendFiles(f, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		files, err := conn.RecvFiles()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := readFiles(files); err != nil || !equalStrings(got, []string{"from child"}) {
			t.Fatalf("file from the child reads %q, %v", got, err)
		}
	}
	count := func() int {
		t.Helper()
		if err := conn.Send("count"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.Recv(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	pass() // warm up both processes
	parentBefore, childBefore := fdCount(t), count()
	for range 1000 {
		pass()
	}
	if n := fdCount(t); n != parentBefore {
		t.Errorf("parent has %d descriptors open after 1000 passes; had %d", n, parentBefore)
	}
	if n := count(); n != childBefore {
		t.Errorf("child has %d descriptors open after 1000 passes; had %d", n, childBefore)
	}
	if err := conn.Send("done"); err != nil {
		t.Fatal(err)
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
	defer p.Wait()
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
