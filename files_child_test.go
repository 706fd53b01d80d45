package procpipe_test

import (
	"fmt"
	"io"
	"maps"
	"os"
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
	// conn-back passes the parent one end of a new connection, and
	// answers a message on its own end.
	"conn-back": func(conn *procpipe.Conn) error {
		mine, theirs, err := procpipe.Pipe(true)
		if err != nil {
			return err
		}
		defer mine.Close()
		err = conn.SendConn(procpipe.FileForTest(theirs))
		theirs.Close()
		if err != nil {
			return err
		}
		var s string
		if err := mine.Recv(&s); err != nil {
			return err
		}
		return mine.Send(strings.ToUpper(s))
	},
}

func init() { maps.Copy(children, fileChildren) }

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

func TestPassFilesToChild(t *testing.T) {
	skipWithoutChildren(t)
	conn, p := startChild(t, "files-read")
	for _, n := range []int{1, 2, 200, procpipe.MaxFiles} {
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

// TestChildPassesConnBack has the child pass the parent one end of a
// connection it made, and talks to the child over it.
func TestChildPassesConnBack(t *testing.T) {
	skipWithoutChildren(t)
	conn, p := startChild(t, "conn-back")
	files, err := conn.RecvFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		closeAll(files)
		t.Fatalf("received %d files; want 1", len(files))
	}
	other, err := procpipe.NewConn(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Send("over the end from the child"); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := other.Recv(&s); err != nil || s != "OVER THE END FROM THE CHILD" {
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
