package unix_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	ppunix "github.com/procpipe/procpipe/unix"
)

// TestTryReadWrite checks TryRead and TryWrite on both kinds of Conn: they
// move bytes at once where they can (a pipe whose kernel takes RWF_NOWAIT,
// and writes on a socket), and otherwise report false having moved nothing:
// reads on a socket (which may carry descriptors), on an empty pipe, with a
// deadline set, and on a closed Conn.
func TestTryReadWrite(t *testing.T) {
	for _, kind := range []string{"socket", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			r, w := newPair(t, kind)
			roundTrip(t, r, w) // meets a kernel's refusal of RWF_NOWAIT, if any
			direct := r.PlainPipeIOForTest() == nil && w.PlainPipeIOForTest() == nil
			canRead := kind == "pipe" && direct
			buf := make([]byte, 10)

			if n, ok := r.TryRead(buf); ok {
				t.Fatalf("TryRead of an empty %s = %d, true", kind, n)
			}
			if n, ok := w.TryWrite([]byte("hello")); ok != direct || ok && n != 5 {
				t.Fatalf("TryWrite = %d, %v; want 5, %v", n, ok, direct)
			}
			if !direct {
				if _, err := w.Write([]byte("hello")); err != nil {
					t.Fatal(err)
				}
			}
			n, ok := r.TryRead(buf)
			if ok != canRead || ok && string(buf[:n]) != "hello" {
				t.Fatalf("TryRead = %q, %v; want \"hello\", %v", buf[:n], ok, canRead)
			}
			if !ok {
				if n, err := r.Read(buf); err != nil || string(buf[:n]) != "hello" {
					t.Fatalf("Read after TryRead declined = %q, %v", buf[:n], err)
				}
			}

			// A deadline sends both to the poller, which enforces it.
			if _, err := w.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			r.SetReadDeadline(time.Now().Add(time.Hour))
			w.SetWriteDeadline(time.Now().Add(time.Hour))
			if n, ok := r.TryRead(buf); ok {
				t.Fatalf("TryRead with a deadline = %d, true", n)
			}
			if n, ok := w.TryWrite([]byte("y")); ok {
				t.Fatalf("TryWrite with a deadline = %d, true", n)
			}
			r.SetReadDeadline(time.Time{})
			w.SetWriteDeadline(time.Time{})
			if n, ok := r.TryRead(buf[:1]); ok != canRead || ok && buf[0] != 'x' {
				t.Fatalf("TryRead after the deadline was cleared = %q, %v; want \"x\", %v", buf[:n], ok, canRead)
			}

			// Closed, neither touches its descriptor number, even once a
			// new pair has taken it and has bytes and room.
			rfd, wfd := r.FdForTest(), w.FdForTest()
			r.Close()
			w.Close()
			r2, w2 := newPair(t, kind)
			if r2.FdForTest() != rfd || w2.FdForTest() != wfd {
				t.Logf("the new pair took descriptors %d, %d, not %d, %d", r2.FdForTest(), w2.FdForTest(), rfd, wfd)
			}
			if _, err := w2.Write([]byte("new")); err != nil {
				t.Fatal(err)
			}
			if n, ok := w.TryWrite([]byte("z")); ok {
				t.Fatalf("TryWrite on a closed Conn = %d, true", n)
			}
			if n, ok := r.TryRead(buf); ok {
				t.Fatalf("TryRead on a closed Conn = %d, true", n)
			}
		})
	}
}

// A pipe whose kernel refuses RWF_NOWAIT (here, as tests make it) makes no
// attempt outside the poller: TryRead and TryWrite report false, and Read
// and Write still work.
func TestTryOnFallbackPipe(t *testing.T) {
	defer ppunix.SetPipeNoWaitForTest(ppunix.SetPipeNoWaitForTest(false))
	r, w := newPair(t, "pipe")
	if n, ok := w.TryWrite([]byte("abc")); ok {
		t.Fatalf("TryWrite on a fallback pipe = %d, true", n)
	}
	if _, err := w.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if n, ok := r.TryRead(buf); ok {
		t.Fatalf("TryRead on a fallback pipe = %d, true", n)
	}
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
}

// TestTryWriteUntilFull fills a pipe and a socket with TryWrite, in chunks
// of 4 KiB (which the kernel writes to a pipe whole or not at all) and of
// 100,000 bytes (which may go out in part): each call must report exactly
// what it wrote, as the reader then finds, and false once there is no room.
func TestTryWriteUntilFull(t *testing.T) {
	for _, kind := range []string{"socket", "pipe"} {
		for _, size := range []int{4096, 100000} {
			t.Run(fmt.Sprintf("%s/%d", kind, size), func(t *testing.T) {
				r, w := newPair(t, kind)
				roundTrip(t, r, w)
				if w.PlainPipeIOForTest() != nil {
					if _, ok := w.TryWrite([]byte("x")); ok {
						t.Fatal("TryWrite = true on a pipe whose kernel refuses RWF_NOWAIT")
					}
					return
				}
				chunk := bytes.Repeat([]byte{1}, size)
				var wrote, parts int
				for {
					n, ok := w.TryWrite(chunk)
					if !ok {
						break
					}
					if n <= 0 || n > size || kind == "pipe" && size == 4096 && n != size {
						t.Fatalf("TryWrite = %d of %d bytes", n, size)
					}
					if n < size {
						parts++
					}
					wrote += n
					if wrote > 64<<20 {
						t.Fatal("TryWrite never found the buffer full")
					}
				}
				if wrote == 0 {
					t.Fatal("TryWrite wrote nothing to an empty " + kind)
				}
				w.Close() // the reader reads to the end of what was written
				var read int
				for {
					n, err := r.Read(chunk)
					read += n
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if read != wrote {
					t.Fatalf("TryWrite reported %d bytes written (%d calls in part); the reader found %d", wrote, parts, read)
				}
				t.Logf("%d bytes, %d calls written in part", wrote, parts)
			})
		}
	}
}

// A TryRead that finds nothing, or takes all the kernel held, makes the next
// read yield first, as Read's own reads do (see yieldFirst); one that fills
// its buffer does not.
func TestTryReadDrained(t *testing.T) {
	r, w := newPair(t, "pipe")
	roundTrip(t, r, w)
	if r.PlainPipeIOForTest() != nil {
		t.Skip("the kernel refuses RWF_NOWAIT on pipes here: TryRead is never made")
	}
	if _, ok := r.TryRead(make([]byte, 4)); ok || !r.DrainedForTest() {
		t.Fatalf("TryRead of an empty pipe: ok %v, drained %v; want false, true", ok, r.DrainedForTest())
	}
	if _, err := w.Write([]byte("abcdef")); err != nil {
		t.Fatal(err)
	}
	if n, ok := r.TryRead(make([]byte, 4)); !ok || n != 4 || r.DrainedForTest() {
		t.Fatalf("TryRead filling its buffer = %d, %v, drained %v; want 4, true, false", n, ok, r.DrainedForTest())
	}
	if n, ok := r.TryRead(make([]byte, 4)); !ok || n != 2 || !r.DrainedForTest() {
		t.Fatalf("TryRead of the rest = %d, %v, drained %v; want 2, true, true", n, ok, r.DrainedForTest())
	}
}
