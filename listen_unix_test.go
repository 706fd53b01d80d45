//go:build unix

package procpipe_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/procpipe/procpipe"
)

func sockPath(t *testing.T) string {
	// Socket paths are limited to about 100 bytes; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "pp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

func TestListenDialAuth(t *testing.T) {
	path := sockPath(t)
	key := []byte("secret")
	l := listen(t, path, &procpipe.Config{AuthKey: key})
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket file: %v, %v; want a socket with mode 0600", st.Mode(), err)
	}
	errs := make(chan error, 10)
	go serveEcho(l, errs)

	c, err := procpipe.Dial(path, &procpipe.Config{AuthKey: key})
	if err != nil {
		t.Fatal(err)
	}
	c.SendBytes([]byte("hi"))
	if got, err := c.RecvBytes(); err != nil || string(got) != "hi" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	c.Close()

	// Wrong key: refused on both sides.
	if _, err := procpipe.Dial(path, &procpipe.Config{AuthKey: []byte("wrong")}); !errors.Is(err, procpipe.ErrAuthentication) {
		t.Errorf("Dial with a wrong key = %v; want ErrAuthentication", err)
	}
	if err := <-errs; !errors.Is(err, procpipe.ErrAuthentication) {
		t.Errorf("Accept of a client with a wrong key = %v; want ErrAuthentication", err)
	}
	// No key against a listener that wants one: the client sees a
	// challenge where it expected data; the listener times out or fails.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v; want it removed", err)
	}
}

func TestListenHandshakeAbuse(t *testing.T) {
	path := sockPath(t)
	l := listen(t, path, &procpipe.Config{AuthKey: []byte("k"), HandshakeTimeout: 100 * time.Millisecond})
	accept := func() error {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		return err
	}
	raw := func() net.Conn {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// A client that hangs up at once.
	c := raw()
	c.Close()
	if err := accept(); err == nil {
		t.Error("Accept of a client that hung up succeeded")
	}
	// A client that answers with an oversized message.
	c = raw()
	go func() {
		io.CopyN(io.Discard, c, 4+11+8+40) // the challenge
		c.Write(append([]byte{0, 0, 4, 0}, make([]byte, 1024)...))
	}()
	if err := accept(); !errors.Is(err, procpipe.ErrAuthentication) || !strings.Contains(err.Error(), "256") {
		t.Errorf("Accept of an oversized answer = %v; want ErrAuthentication naming the 256-byte bound", err)
	}
	c.Close()
	// A client that announces an answer of 2^62 bytes in the long form:
	// refused at once, not drained until the handshake's time limit.
	c = raw()
	go func() {
		io.CopyN(io.Discard, c, 4+11+8+40)
		c.Write([]byte{0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0})
	}()
	if err := accept(); !errors.Is(err, procpipe.ErrAuthentication) || !strings.Contains(err.Error(), "256") {
		t.Errorf("Accept of an answer claiming 2^62 bytes = %v; want ErrAuthentication naming the 256-byte bound", err)
	}
	c.Close()
	// A client that says nothing: the handshake deadline ends it.
	c = raw()
	if err := accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Accept of a silent client = %v; want os.ErrDeadlineExceeded", err)
	}
	c.Close()
	// A truncated answer: half a header, then hang up.
	c = raw()
	go func() {
		io.CopyN(io.Discard, c, 4+11+8+40)
		c.Write([]byte{0, 0})
		c.Close()
	}()
	if err := accept(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Accept of a truncated answer = %v; want io.ErrUnexpectedEOF", err)
	}
	// The listener still serves a good client.
	done := make(chan error)
	go func() {
		c, err := procpipe.Dial(path, &procpipe.Config{AuthKey: []byte("k")})
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	if err := accept(); err != nil {
		t.Errorf("Accept of a good client after abuse: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Dial: %v", err)
	}
}

// TestListenerCloseStopsHandshake closes a Listener while Accept waits in
// the handshake for a client that says nothing: Accept must return at once
// with net.ErrClosed, not at the end of the handshake's time limit.
func TestListenerCloseStopsHandshake(t *testing.T) {
	path := sockPath(t)
	l := listen(t, path, &procpipe.Config{AuthKey: []byte("k"), HandshakeTimeout: time.Hour})
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := l.Accept()
		if err == nil {
			conn.Close()
		}
		done <- err
	}()
	// Once the challenge is here, Accept is in the handshake.
	if _, err := io.CopyN(io.Discard, c, 4+11+8+40); err != nil {
		t.Fatal(err)
	}
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept stopped by Close in the handshake = %v; want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still in the handshake 10s after Close")
	}
}

// TestDialContextDeadline ends DialContext's handshake with its context's
// deadline, against a server that never speaks: the error must match
// context.DeadlineExceeded every time (the Conn's own deadline must not win
// the race and report itself instead).
func TestDialContextDeadline(t *testing.T) {
	path := sockPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // until the client hangs up
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	for i := range 40 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		c, err := procpipe.DialContext(ctx, path, &procpipe.Config{AuthKey: []byte("k")})
		cancel()
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("try %d: DialContext ended by its context's deadline = %v; want context.DeadlineExceeded", i, err)
		}
	}
}

func TestListenSocketFile(t *testing.T) {
	path := sockPath(t)
	// A live listener's socket is not taken over.
	l := listen(t, path, nil)
	if _, err := procpipe.Listen(path, nil); err == nil {
		t.Fatal("second Listen on a live socket succeeded")
	}
	// A stale socket (its listener gone without removing it) is replaced.
	stale, err := net.Listen("unix", path+"2")
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	l2, err := procpipe.Listen(path+"2", nil)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	l2.Close()
	// A regular file is never removed.
	os.WriteFile(path+"3", []byte("data"), 0o600)
	if _, err := procpipe.Listen(path+"3", nil); err == nil {
		t.Fatal("Listen over a regular file succeeded")
	}
	if b, err := os.ReadFile(path + "3"); err != nil || string(b) != "data" {
		t.Fatalf("regular file after Listen: %q, %v", b, err)
	}
	l.Close()
}

func TestListenAbstract(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("abstract sockets are Linux-only")
	}
	addr := "@procpipe-test-" + filepath.Base(sockPath(t)) + "-" + time.Now().Format("150405.000000000")
	l := listen(t, addr, nil)
	go serveEcho(l, nil)
	c, err := procpipe.Dial("\x00"+addr[1:], nil) // Python's spelling
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SendBytes([]byte("abstract"))
	if got, err := c.RecvBytes(); err != nil || string(got) != "abstract" {
		t.Fatalf("echo = %q, %v", got, err)
	}
}

const pythonNet = `
import sys
from multiprocessing.connection import Listener, Client
mode, addr, key = sys.argv[1], sys.argv[2], sys.argv[3].encode()
if mode == "listen":
    with Listener(addr, authkey=key) as l:
        print("listening", flush=True)
        try:
            with l.accept() as c:
                c.send_bytes(b"python got " + c.recv_bytes())
                print("served", flush=True)
        except Exception as e:
            print("refused", type(e).__name__, flush=True)
else:
    try:
        with Client(addr, authkey=key) as c:
            c.send_bytes(b"from python")
            print(c.recv_bytes().decode(), flush=True)
    except Exception as e:
        print("refused", type(e).__name__, flush=True)
`

func python(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3 is required in CI: %v", err)
		}
		t.Skip("python3 not found (CI unset)")
	}
	cmd := exec.Command(py, append([]string{"-c", pythonNet}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewReader(out)
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading Python's output: %v", err)
	}
	return strings.TrimSpace(line)
}

func TestPythonListenerGoClient(t *testing.T) {
	for _, tt := range []struct {
		key  string
		want string
	}{{"pykey", "served"}, {"wrong", "refused AuthenticationError"}} {
		path := sockPath(t)
		_, out := python(t, "listen", path, "pykey")
		if line := readLine(t, out); line != "listening" {
			t.Fatalf("Python said %q", line)
		}
		c, err := procpipe.Dial(path, &procpipe.Config{AuthKey: []byte(tt.key)})
		if tt.key == "pykey" {
			if err != nil {
				t.Fatalf("Dial to Python's Listener: %v", err)
			}
			c.SendBytes([]byte("go client"))
			if got, err := c.RecvBytes(); err != nil || string(got) != "python got go client" {
				t.Fatalf("answer = %q, %v", got, err)
			}
			c.Close()
		} else if !errors.Is(err, procpipe.ErrAuthentication) {
			t.Fatalf("Dial with a wrong key = %v; want ErrAuthentication", err)
		}
		if line := readLine(t, out); line != tt.want {
			t.Errorf("key %q: Python said %q; want %q", tt.key, line, tt.want)
		}
	}
}

func TestGoListenerPythonClient(t *testing.T) {
	for _, tt := range []struct {
		key  string
		want string
	}{{"gokey", "python got from python"}, {"wrong", "refused AuthenticationError"}} {
		path := sockPath(t)
		l := listen(t, path, &procpipe.Config{AuthKey: []byte("gokey")})
		done := make(chan error, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			b, err := c.RecvBytes()
			if err == nil {
				err = c.SendBytes(append([]byte("python got "), b...))
			}
			done <- err
		}()
		_, out := python(t, "client", path, tt.key)
		if line := readLine(t, out); line != tt.want {
			t.Errorf("key %q: Python client said %q; want %q", tt.key, line, tt.want)
		}
		err := <-done
		if tt.key == "gokey" && err != nil {
			t.Errorf("Accept of Python's client: %v", err)
		}
		if tt.key != "gokey" && !errors.Is(err, procpipe.ErrAuthentication) {
			t.Errorf("Accept of Python's client with a wrong key = %v; want ErrAuthentication", err)
		}
	}
}
