//go:build unix

package unix_test

import (
	"bytes"
	"io"
	"net"
	"os"
	"runtime"
	"testing"

	ppunix "github.com/procpipe/procpipe/unix"
	"golang.org/x/sys/unix"
)

// flags returns the descriptor flags (FD_CLOEXEC) and status flags
// (O_NONBLOCK) of f.
func flags(t *testing.T, f *os.File) (cloexec, nonblock bool) {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		fdfl, err1 := unix.FcntlInt(fd, unix.F_GETFD, 0)
		fl, err2 := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		cloexec, nonblock = fdfl&unix.FD_CLOEXEC != 0, fl&unix.O_NONBLOCK != 0
	})
	return
}

func TestBornCloexecNonblocking(t *testing.T) {
	a, b, err := ppunix.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := ppunix.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*ppunix.Conn{a, b, r, w} {
		defer c.Close()
		if ce, nb := flags(t, c.File()); !ce || !nb {
			t.Errorf("%s: cloexec %v, nonblocking %v; want both", c.File().Name(), ce, nb)
		}
	}
	if a.Kind() != ppunix.Socket || r.Kind() != ppunix.PipeRead || w.Kind() != ppunix.PipeWrite {
		t.Errorf("kinds = %v %v %v", a.Kind(), r.Kind(), w.Kind())
	}
}

func TestNewConnKinds(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r, err := ppunix.NewConn(pr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := ppunix.NewConn(pw)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if r.Kind() != ppunix.PipeRead || w.Kind() != ppunix.PipeWrite {
		t.Fatalf("kinds = %v, %v", r.Kind(), w.Kind())
	}
	if ce, nb := flags(t, r.File()); !ce || !nb {
		t.Errorf("NewConn's descriptor: cloexec %v, nonblocking %v; want both", ce, nb)
	}
	go w.Writev([][]byte{[]byte("a"), nil, []byte("bc")})
	buf := make([]byte, 3)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "abc" {
		t.Fatalf("read %q, %v", buf, err)
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ppunix.NewConn(f); err == nil {
		t.Error("NewConn of a regular file succeeded")
	}
	u, err := net.ListenPacket("unixgram", t.TempDir()+"/g")
	if err != nil {
		t.Fatal(err)
	}
	uf, _ := u.(*net.UnixConn).File()
	u.Close()
	if _, err := ppunix.NewConn(uf); err == nil {
		t.Error("NewConn of a datagram socket succeeded")
	}
}

// TestWritevLarge writes more than the socket buffer in one Writev, which
// must finish through partial writes and waits.
func TestWritevLarge(t *testing.T) {
	a, b, err := ppunix.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	p1 := bytes.Repeat([]byte{1}, 3<<20)
	p2 := bytes.Repeat([]byte{2}, 1<<20+3)
	done := make(chan error)
	go func() {
		n, err := a.Writev([][]byte{p1, p2})
		if err == nil && n != int64(len(p1)+len(p2)) {
			err = io.ErrShortWrite
		}
		done <- err
	}()
	got := make([]byte, len(p1)+len(p2))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(p1, p2...)) {
		t.Fatal("data differs")
	}
	a.Close()
	if _, err := b.Read(got); err != io.EOF {
		t.Fatalf("Read after peer closed = %v; want io.EOF", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestReadScatter checks that ReadScatter fills p before q and, on Linux,
// takes what follows p in the same call, on a socket and on a pipe.
func TestReadScatter(t *testing.T) {
	for _, kind := range []string{"socket", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			r, w := newPair(t, kind)
			data := make([]byte, 1000)
			for i := range data {
				data[i] = byte(i * 7)
			}
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			p, q := make([]byte, 600), make([]byte, 600)
			n, err := r.ReadScatter(p, q)
			if err != nil {
				t.Fatal(err)
			}
			want := len(data)
			if runtime.GOOS != "linux" {
				want = len(p) // elsewhere a ReadScatter reads into p only
			}
			if n != want {
				t.Fatalf("ReadScatter = %d bytes; want %d", n, want)
			}
			got := append(p[:min(n, len(p))], q[:n-min(n, len(p))]...)
			if !bytes.Equal(got, data[:n]) {
				t.Fatal("data differs, or q was filled before p")
			}
		})
	}
}

// newPair returns a connected "socket" pair or "pipe" (read end, write end),
// closed when the test ends.
func newPair(t *testing.T, kind string) (r, w *ppunix.Conn) {
	t.Helper()
	var err error
	if kind == "socket" {
		r, w, err = ppunix.Socketpair()
	} else {
		r, w, err = ppunix.Pipe()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}
