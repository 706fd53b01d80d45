//go:build unix

package procpipe_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/procpipe/procpipe"
)

// pythonChild is a Python program that takes its end of the pipe the way the
// README tells Python users to, and then does what argv[1] says.
const pythonChild = `
import json, os, sys
from multiprocessing.connection import Connection

conn = Connection(int(os.environ["PROCPIPE_CONN"]))
mode = sys.argv[1]

def pattern(n):
    return bytes((i * 7 + (i >> 8)) & 0xff for i in range(n))

if mode == "echo":
    while True:
        try:
            b = conn.recv_bytes()
        except EOFError:
            break
        conn.send_bytes(b)
elif mode == "send":
    for n in map(int, sys.argv[2:]):
        conn.send_bytes(pattern(n))
elif mode == "maxlength":
    try:
        conn.recv_bytes(int(sys.argv[2]))
        print("accepted")
    except OSError as e:
        print("rejected:", e)
elif mode == "json":
    v = json.loads(conn.recv_bytes())
    v["seen_by"] = "python"
    v["sum"] = sum(v["numbers"])
    conn.send_bytes(json.dumps(v).encode())
elif mode == "recvhandle":
    from multiprocessing import reduction
    before = conn.recv_bytes()
    fd = reduction.recv_handle(conn)
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    after = conn.recv_bytes()
    conn.send_bytes(b"|".join([before, data, after]))
elif mode == "sendhandle":
    from multiprocessing import reduction
    conn.send_bytes(b"before")
    r, w = os.pipe()
    os.write(w, sys.argv[2].encode())
    os.close(w)
    reduction.send_handle(conn, r, os.getppid())
    os.close(r)
    conn.send_bytes(b"after")
conn.close()
`

// startPython starts pythonChild with the other end of a new duplex pipe.
func startPython(t *testing.T, cfg *procpipe.Config, args ...string) (*procpipe.Conn, *procpipe.Process, *bytes.Buffer) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3 is required in CI: %v", err)
		}
		t.Skip("python3 not found (CI unset)")
	}
	parent, child, err := cfg.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, append([]string{"-c", pythonChild}, args...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	p := procpipe.Attach(cmd, child)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		parent.Close()
		p.Wait()
	})
	return parent, p, &out
}

var interopSizes = []int{0, 1, 16384, 16385, 1 << 20}

func TestPythonEcho(t *testing.T) {
	conn, p, _ := startPython(t, nil, "echo")
	for _, n := range interopSizes {
		go conn.SendBytes(pattern(n))
		got, err := conn.RecvBytes()
		if err != nil || !bytes.Equal(got, pattern(n)) {
			t.Fatalf("Python echo of %d bytes: %d bytes, %v", n, len(got), err)
		}
	}
	conn.Close()
	if err := p.Wait(); err != nil {
		t.Fatalf("Python child: %v", err)
	}
}

func TestPythonSends(t *testing.T) {
	args := []string{"send"}
	for _, n := range interopSizes {
		args = append(args, strconv.Itoa(n))
	}
	conn, p, _ := startPython(t, nil, args...)
	for i, n := range interopSizes {
		var got []byte
		var err error
		if i%2 == 0 {
			got, err = conn.RecvBytes()
		} else {
			buf := make([]byte, n+10)
			var m int
			m, err = conn.RecvBytesInto(buf)
			got = buf[:m]
		}
		if err != nil || !bytes.Equal(got, pattern(n)) {
			t.Fatalf("message of %d bytes from Python: %d bytes, %v", n, len(got), err)
		}
	}
	if _, err := conn.RecvBytes(); err != io.EOF {
		t.Fatalf("after Python closed: %v; want io.EOF", err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Python child: %v", err)
	}
}

func TestPythonMaxLengthRejects(t *testing.T) {
	conn, p, out := startPython(t, nil, "maxlength", "100")
	if err := conn.SendBytes(pattern(101)); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "rejected:") {
		t.Fatalf("Python recv_bytes(100) of 101 bytes printed %q; want a rejection", out.String())
	}
}

func TestPythonJSON(t *testing.T) {
	conn, p, _ := startPython(t, &procpipe.Config{Codec: procpipe.JSON}, "json")
	type value struct {
		Name    string `json:"name"`
		Numbers []int  `json:"numbers"`
		SeenBy  string `json:"seen_by"`
		Sum     int    `json:"sum"`
	}
	if err := conn.Send(value{Name: "héllo", Numbers: []int{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	var got value
	if err := conn.Recv(&got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(value{Name: "héllo", Numbers: []int{1, 2, 3}, SeenBy: "python", Sum: 6}, got); diff != "" {
		t.Errorf("value back from Python (-want +got):\n%s", diff)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}
