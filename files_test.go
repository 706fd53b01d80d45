package procpipe_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/procpipe/procpipe"
)

// contentFile returns the read end of a pipe that holds content and whose
// write end is closed, so that reading it to the end gives content. It is
// closed when the test ends, if the test has not closed it: left to its
// finalizer, it would close during a later test and upset that test's count
// of open descriptors.
func contentFile(t testing.TB, content string) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := io.WriteString(w, content); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return r
}

// contentFiles returns n content files named prefix/i.
func contentFiles(t testing.TB, prefix string, n int) ([]*os.File, []string) {
	files := make([]*os.File, n)
	want := make([]string, n)
	for i := range files {
		want[i] = fmt.Sprintf("%s/%d", prefix, i)
		files[i] = contentFile(t, want[i])
	}
	return files, want
}

// readFiles reads each file to the end and closes it.
func readFiles(files []*os.File) ([]string, error) {
	var got []string
	var firstErr error
	for _, f := range files {
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		got = append(got, string(b))
	}
	return got, firstErr
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

// sendAsync runs send in a goroutine (a sender with acknowledgements on
// waits for the receiver) and returns a function that waits for its error.
func sendAsync(send func() error) func() error {
	done := make(chan error, 1)
	go func() { done <- send() }()
	return func() error { return <-done }
}

func TestSendRecvFiles(t *testing.T) {
	for _, cfg := range []*procpipe.Config{nil, {NoFileAck: true}} {
		for _, n := range []int{1, 2, 200, procpipe.MaxFiles} {
			t.Run(fmt.Sprintf("ack=%v/%d", cfg == nil, n), func(t *testing.T) {
				a, b := pipe(t, cfg)
				files, want := contentFiles(t, "f", n)
				wait := sendAsync(func() error { return a.SendFiles(files...) })
				got, err := b.RecvFiles()
				if err != nil {
					t.Fatal(err)
				}
				if err := wait(); err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					// The sender's files stay open and its own.
					if _, err := f.Stat(); err != nil {
						t.Errorf("sender's file after SendFiles: %v", err)
					}
					f.Close()
				}
				contents, err := readFiles(got)
				if err != nil || !equalStrings(contents, want) {
					t.Fatalf("received %d files reading %q, %v; want %q", len(got), contents, err, want)
				}
			})
		}
	}
}

// TestFilesBetweenManyFrames sends files between many small (and some large)
// messages, so that the receiver reads ahead across them: each set of files
// must come out of the stream exactly where it was sent.
func TestFilesBetweenManyFrames(t *testing.T) {
	configs := map[string]*procpipe.Config{
		"ack":             nil,
		"noack":           {NoFileAck: true},
		"noack,tinybuf":   {NoFileAck: true, ReadBufferSize: 7},
		"ack,smallbuffer": {ReadBufferSize: 100},
	}
	sizes := []int{0, 1, 5, 100, 3, 70000, 2, 40}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			a, b := pipe(t, cfg)
			const items = 300
			isFiles := func(i int) bool { return i%7 == 3 || i%11 == 4 }
			wait := sendAsync(func() error {
				for i := range items {
					if isFiles(i) {
						files, _ := contentFiles(t, fmt.Sprint(i), 1+i%3)
						err := a.SendFiles(files...)
						closeAll(files)
						if err != nil {
							return fmt.Errorf("item %d: %v", i, err)
						}
						continue
					}
					if err := a.SendBytes(pattern(sizes[i%len(sizes)])); err != nil {
						return fmt.Errorf("item %d: %v", i, err)
					}
				}
				return nil
			})
			for i := range items {
				if isFiles(i) {
					files, err := b.RecvFiles()
					if err != nil {
						t.Fatalf("item %d: RecvFiles: %v", i, err)
					}
					_, want := contentFiles(t, fmt.Sprint(i), 0)
					for j := range 1 + i%3 {
						want = append(want, fmt.Sprintf("%d/%d", i, j))
					}
					got, err := readFiles(files)
					if err != nil || !equalStrings(got, want) {
						t.Fatalf("item %d: files read %q, %v; want %q", i, got, err, want)
					}
					continue
				}
				got, err := b.RecvBytes()
				if want := pattern(sizes[i%len(sizes)]); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("item %d: message of %d bytes, %v; want %d bytes", i, len(got), err, len(want))
				}
			}
			if err := wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRecvFilesWhenMessageIsNext(t *testing.T) {
	for _, cfg := range []*procpipe.Config{nil, {NoFileAck: true}} {
		a, b := pipe(t, cfg)
		if err := a.Send("first"); err != nil {
			t.Fatal(err)
		}
		if files, err := b.RecvFiles(); !errors.Is(err, procpipe.ErrMessageNext) || files != nil {
			t.Fatalf("RecvFiles before a message = %v, %v; want ErrMessageNext", files, err)
		}
		var s string
		if err := b.Recv(&s); err != nil || s != "first" {
			t.Fatalf("Recv after ErrMessageNext = %q, %v; want the message", s, err)
		}
	}
}

func TestRecvWhenFilesAreNext(t *testing.T) {
	for _, cfg := range []*procpipe.Config{nil, {NoFileAck: true}} {
		a, b := pipe(t, cfg)
		f := contentFile(t, "kept")
		before := fdCount(t)
		wait := sendAsync(func() error {
			if err := a.SendFiles(f); err != nil {
				return err
			}
			return a.Send("after")
		})
		var s string
		if err := b.Recv(&s); !errors.Is(err, procpipe.ErrFilesNext) {
			t.Fatalf("Recv before files = %q, %v; want ErrFilesNext", s, err)
		}
		if _, err := b.RecvBytes(); !errors.Is(err, procpipe.ErrFilesNext) {
			t.Fatalf("RecvBytes before files: %v; want ErrFilesNext", err)
		}
		if _, err := b.RecvBytesInto(make([]byte, 10)); !errors.Is(err, procpipe.ErrFilesNext) {
			t.Fatalf("RecvBytesInto before files: %v; want ErrFilesNext", err)
		}
		if ok, err := b.Poll(0); !ok || err != nil {
			t.Fatalf("Poll with files waiting = %v, %v; want true", ok, err)
		}
		// One more open: on Unix the descriptor that arrived, queued
		// for RecvFiles; on Windows the sender's private duplicate, held
		// until the acknowledgement (both ends are this process, and
		// nothing is duplicated into the receiver before RecvFiles).
		if n := fdCount(t); n != before+1 {
			t.Fatalf("%d descriptors or handles open while the files wait; want %d", n, before+1)
		}
		files, err := b.RecvFiles()
		if err != nil {
			t.Fatal(err)
		}
		got, err := readFiles(files)
		if err != nil || !equalStrings(got, []string{"kept"}) {
			t.Fatalf("files kept for RecvFiles read %q, %v", got, err)
		}
		if err := b.Recv(&s); err != nil || s != "after" {
			t.Fatalf("Recv after the files = %q, %v", s, err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

func TestSendWithFiles(t *testing.T) {
	a, b := pipe(t, nil)
	type job struct {
		Name  string
		Files int
	}
	files, want := contentFiles(t, "job", 3)
	defer closeAll(files)
	wait := sendAsync(func() error { return a.SendWithFiles(job{"three", 3}, files...) })
	var got job
	recvd, err := b.RecvWithFiles(&got)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	contents, err := readFiles(recvd)
	if got != (job{"three", 3}) || err != nil || !equalStrings(contents, want) {
		t.Fatalf("RecvWithFiles = %+v with files %q, %v", got, contents, err)
	}

	// A message without files: v holds it, and the error says why.
	wait = sendAsync(func() error {
		if err := a.Send(job{"none", 0}); err != nil {
			return err
		}
		return a.Send("next")
	})
	got = job{}
	if recvd, err := b.RecvWithFiles(&got); !errors.Is(err, procpipe.ErrMessageNext) || recvd != nil || got.Name != "none" {
		t.Fatalf("RecvWithFiles of a message without files = %+v, %v, %v; want the message and ErrMessageNext", got, recvd, err)
	}
	var s string
	if err := b.Recv(&s); err != nil || s != "next" {
		t.Fatalf("Recv after = %q, %v", s, err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func TestFilesNeedASocket(t *testing.T) {
	r, w, err := procpipe.Pipe(false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f := contentFile(t, "x")
	defer f.Close()
	if err := w.SendFiles(f); !errors.Is(err, procpipe.ErrNotSocket) {
		t.Errorf("SendFiles on a pipe = %v; want ErrNotSocket", err)
	}
	if _, err := r.RecvFiles(); !errors.Is(err, procpipe.ErrNotSocket) {
		t.Errorf("RecvFiles on a pipe = %v; want ErrNotSocket", err)
	}
}

func TestWrongNumberOfFiles(t *testing.T) {
	a, b := pipe(t, &procpipe.Config{NoFileAck: true})
	files, _ := contentFiles(t, "n", procpipe.MaxFiles+1)
	defer closeAll(files)
	if err := a.SendFiles(files...); !errors.Is(err, procpipe.ErrTooManyFiles) {
		t.Errorf("SendFiles of %d files = %v; want ErrTooManyFiles", len(files), err)
	}
	if err := a.SendFiles(); !errors.Is(err, procpipe.ErrTooManyFiles) {
		t.Errorf("SendFiles of no files = %v; want ErrTooManyFiles", err)
	}
	if err := a.SendFiles(files[0], nil); !errors.Is(err, os.ErrInvalid) {
		t.Errorf("SendFiles with a nil file = %v; want os.ErrInvalid", err)
	}
	closed := contentFile(t, "c")
	closed.Close()
	if err := a.SendFiles(files[0], closed); err == nil {
		t.Errorf("SendFiles with a closed file succeeded")
	}
	if ok, err := b.Poll(0); ok || err != nil {
		t.Fatalf("after refused sends, Poll = %v, %v; want nothing sent", ok, err)
	}
}

// TestAckWhileAnotherGoroutineReceives sends files while another goroutine
// receives messages on the same Conn, which meets the acknowledgements
// first: it must consume them, not read them as messages.
func TestAckWhileAnotherGoroutineReceives(t *testing.T) {
	a, b := pipe(t, nil)
	const n = 100
	received := make(chan error, 1)
	go func() {
		for i := range n {
			var got int
			if err := a.Recv(&got); err != nil || got != i {
				received <- fmt.Errorf("message %d: got %d, %v", i, got, err)
				return
			}
		}
		received <- nil
	}()
	peer := sendAsync(func() error {
		for i := range n {
			files, err := b.RecvFiles()
			if err != nil {
				return fmt.Errorf("files %d: %v", i, err)
			}
			closeAll(files)
			if err := b.Send(i); err != nil {
				return err
			}
		}
		return nil
	})
	for i := range n {
		f := contentFile(t, "x")
		err := a.SendFiles(f)
		f.Close()
		if err != nil {
			t.Fatalf("SendFiles %d: %v", i, err)
		}
	}
	if err := peer(); err != nil {
		t.Fatal(err)
	}
	if err := <-received; err != nil {
		t.Fatal(err)
	}
}

// TestSendWithClosedFileSendsNothing checks that a message whose files
// cannot be sent is not sent either.
func TestSendWithClosedFileSendsNothing(t *testing.T) {
	a, b := pipe(t, &procpipe.Config{NoFileAck: true})
	closed := contentFile(t, "c")
	closed.Close()
	if err := a.SendWithFiles("lonely", closed); err == nil {
		t.Fatal("SendWithFiles with a closed file succeeded")
	}
	if ok, err := b.Poll(0); ok || err != nil {
		t.Fatalf("after a failed SendWithFiles, Poll = %v, %v; want nothing sent", ok, err)
	}
}

// TestPollLateAck has the peer answer before it takes the files, so that
// SendFiles stops waiting for the acknowledgement, which then arrives after
// the answer was received: with only the acknowledgement in the kernel's
// buffer, Poll and Wait must not report a message, which a Recv would then
// wait for, and a later message must still be reported and received.
func TestPollLateAck(t *testing.T) {
	for _, how := range []string{"Poll", "Wait"} {
		t.Run(how, func(t *testing.T) {
			a, b := pipe(t, nil)
			if err := b.SendBytes([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if err := a.SendFiles(contentFile(t, "x")); err != nil {
				t.Fatal(err)
			}
			if m, err := a.RecvBytes(); err != nil || string(m) != "hello" {
				t.Fatalf("RecvBytes = %q, %v", m, err)
			}
			files, err := b.RecvFiles() // writes the acknowledgement
			if err != nil {
				t.Fatal(err)
			}
			closeAll(files)
			ready := func(timeout time.Duration) bool {
				t.Helper()
				if how == "Poll" {
					ok, err := a.Poll(timeout)
					if err != nil {
						t.Fatal(err)
					}
					return ok
				}
				got, err := procpipe.Wait([]*procpipe.Conn{a}, timeout)
				if err != nil {
					t.Fatal(err)
				}
				return len(got) > 0
			}
			if how == "Poll" {
				// A read deadline that has passed stops Poll with its
				// error, and must not turn the acknowledgement into a
				// message either.
				a.SetReadDeadline(time.Now().Add(-time.Second))
				for _, timeout := range []time.Duration{0, 100 * time.Millisecond} {
					if ok, err := a.Poll(timeout); ok || !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Errorf("Poll(%v) with only the acknowledgement waiting, read deadline passed = %v, %v; want false and the deadline's error", timeout, ok, err)
					}
				}
				a.SetReadDeadline(time.Time{})
			}
			if ready(0) {
				t.Errorf("%s(0) with only the acknowledgement waiting = ready", how)
			}
			if ready(20 * time.Millisecond) {
				t.Errorf("%s(20ms) with only the acknowledgement waiting = ready", how)
			}
			if err := b.SendBytes([]byte("next")); err != nil {
				t.Fatal(err)
			}
			if !ready(-1) {
				t.Errorf("%s(-1) with a message waiting = not ready", how)
			}
			if m, err := a.RecvBytes(); err != nil || string(m) != "next" {
				t.Errorf("RecvBytes = %q, %v; want \"next\"", m, err)
			}
		})
	}
}

// TestRecvWithFilesNeedsPointer receives a message and files into what is
// not a non-nil pointer: an error, and both stay for the next receive.
func TestRecvWithFilesNeedsPointer(t *testing.T) {
	a, b := pipe(t, nil)
	done := sendAsync(func() error { return a.SendWithFiles("first", contentFile(t, "x")) })
	// A bound, so that a receive that took the message fails the test
	// rather than waiting for another.
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	var s string
	for _, v := range []any{nil, s, (*string)(nil)} {
		if files, err := b.RecvWithFiles(v); err == nil || len(files) > 0 {
			closeAll(files)
			t.Errorf("RecvWithFiles(%#v) = %d files, %v; want an error and no files", v, len(files), err)
		}
	}
	files, err := b.RecvWithFiles(&s)
	got, rerr := readFiles(files)
	closeAll(files)
	if err != nil || s != "first" || rerr != nil || len(got) != 1 || got[0] != "x" {
		t.Errorf("RecvWithFiles after the refused ones = %q, files %q (%v), %v; want \"first\" and [\"x\"]", s, got, rerr, err)
	}
	if err := done(); err != nil {
		t.Errorf("SendWithFiles: %v", err)
	}
}
