package frame_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/procpipe/procpipe/frame"
)

// item is bytes between frames that no frame header starts like.
var item = []byte{0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4, 5, 6}

// stream returns item between two frames, read one byte at a time.
func stream() io.Reader {
	var b bytes.Buffer
	b.Write(frame.AppendHeader(nil, 3))
	b.WriteString("one")
	b.Write(item)
	b.Write(frame.AppendHeader(nil, 3))
	b.WriteString("two")
	return &oneByteReader{&b}
}

func TestPeekDiscardBetweenFrames(t *testing.T) {
	// A 4-byte buffer must grow for the 10-byte item, and keep working.
	for _, size := range []int{4, 7, 0} {
		r := frame.NewReader(stream(), size)
		if got, err := r.ReadFrame(nil, -1); err != nil || string(got) != "one" {
			t.Fatalf("size %d: first frame = %q, %v", size, got, err)
		}
		for range 2 { // peeking consumes nothing
			got, err := r.Peek(len(item))
			if err != nil || !bytes.Equal(got, item) {
				t.Fatalf("size %d: Peek = %x, %v; want %x", size, got, err, item)
			}
		}
		if err := r.Discard(len(item)); err != nil {
			t.Fatalf("size %d: Discard: %v", size, err)
		}
		if got, err := r.ReadFrame(nil, -1); err != nil || string(got) != "two" {
			t.Fatalf("size %d: frame after the item = %q, %v", size, got, err)
		}
		if _, err := r.Peek(1); err != io.EOF {
			t.Fatalf("size %d: Peek at the end = %v; want io.EOF", size, err)
		}
	}
}

func TestPeekTruncated(t *testing.T) {
	r := frame.NewReader(bytes.NewReader(item[:6]), 0)
	if _, err := r.Peek(len(item)); err != io.ErrUnexpectedEOF {
		t.Fatalf("Peek past the end = %v; want io.ErrUnexpectedEOF", err)
	}
	if _, err := r.Peek(1); err != io.ErrUnexpectedEOF {
		t.Fatalf("Peek after = %v; want io.ErrUnexpectedEOF again", err)
	}
	if _, err := frame.NewReader(bytes.NewReader(nil), 0).Peek(-1); err == nil {
		t.Fatal("Peek(-1) succeeded")
	}
}

// TestPeekDeadlineKeepsStream checks that a deadline while peeking consumes
// nothing.
func TestPeekDeadlineKeepsStream(t *testing.T) {
	r := frame.NewReader(&timeoutReader{r: bytes.NewReader(item), limit: 5}, 0)
	if _, err := r.Peek(len(item)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Peek = %v; want the deadline", err)
	}
	if got, err := r.Peek(len(item)); err != nil || !bytes.Equal(got, item) {
		t.Fatalf("Peek after the deadline = %x, %v", got, err)
	}
}

func TestBreak(t *testing.T) {
	r := frame.NewReader(stream(), 0)
	bad := errors.New("malformed item")
	if err := r.Break(bad); err != bad {
		t.Fatalf("Break returned %v; want its argument", err)
	}
	if _, err := r.ReadFrame(nil, -1); !errors.Is(err, frame.ErrBroken) {
		t.Fatalf("ReadFrame after Break = %v; want ErrBroken", err)
	}
	for _, err := range []error{r.Discard(1), func() error { _, err := r.Peek(1); return err }()} {
		if !errors.Is(err, frame.ErrBroken) {
			t.Fatalf("after Break: %v; want ErrBroken", err)
		}
	}
}

func TestWriteRaw(t *testing.T) {
	var b bytes.Buffer
	w := frame.NewWriter(&b)
	if err := w.WriteFrame([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRaw(item); err != nil {
		t.Fatal(err)
	}
	if want := append(append(frame.AppendHeader(nil, 3), "one"...), item...); !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("wrote %x; want %x", b.Bytes(), want)
	}
	w = frame.NewWriter(&shortWriter{limit: 0})
	if err := w.WriteRaw(item); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteRaw = %v; want the deadline", err)
	}
	if err := w.WriteRaw(item[:1]); !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, frame.ErrBroken) {
		t.Fatalf("WriteRaw after a write that wrote nothing = %v; want the deadline, not ErrBroken", err)
	}
	w = frame.NewWriter(&shortWriter{limit: 3})
	if err := w.WriteRaw(item); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteRaw = %v; want the deadline", err)
	}
	if err := w.WriteFrame(nil); !errors.Is(err, frame.ErrBroken) {
		t.Fatalf("WriteFrame after a partial WriteRaw = %v; want ErrBroken", err)
	}
}
