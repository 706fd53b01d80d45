package frame_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/procpipe/procpipe/frame"
)

// tryReader is a TryReader over a stream: each TryRead hands over the next
// of its chunks, or reports false when there is none (or when count says to
// lie about the length); Read reads the rest of the stream.
type tryReader struct {
	chunks [][]byte
	rest   io.Reader
	tries  int
	count  func(n int) int // if set, the count TryRead reports for n bytes
}

func (t *tryReader) Read(p []byte) (int, error) { return t.rest.Read(p) }

func (t *tryReader) TryRead(p []byte) (int, bool) {
	t.tries++
	if len(t.chunks) == 0 {
		return 0, false
	}
	n := copy(p, t.chunks[0])
	if n < len(t.chunks[0]) {
		t.chunks[0] = t.chunks[0][n:]
	} else {
		t.chunks = t.chunks[1:]
	}
	if t.count != nil {
		return t.count(n), true
	}
	return n, true
}

// TestTryReadFrameInto takes frames that arrived whole, several from one
// TryRead, and leaves to ReadFrameInto whatever it cannot take at once:
// what it declines it must not consume, so that the stream reads on intact.
func TestTryReadFrameInto(t *testing.T) {
	a, b, c := pattern(10, 1), pattern(64, 2), pattern(300, 3)
	ab := frames(a, b).Bytes()
	cBytes := frames(c).Bytes()
	tr := &tryReader{
		chunks: [][]byte{ab, cBytes[:7]},                                                        // a and b together; then part of c
		rest:   io.MultiReader(bytes.NewReader(cBytes[7:]), bytes.NewReader(frames(a).Bytes())), // the rest of c; a, read by Read only
	}
	r := frame.NewReader(tr, 0)
	buf := make([]byte, 400)
	for i, want := range [][]byte{a, b} {
		n, ok := r.TryReadFrameInto(buf, -1)
		if !ok || !bytes.Equal(buf[:n], want) {
			t.Fatalf("frame %d: TryReadFrameInto = %d, %v", i, n, ok)
		}
	}
	if tr.tries != 1 {
		t.Fatalf("%d TryReads for two frames that came in one", tr.tries)
	}
	if n, ok := r.TryReadFrameInto(buf, -1); ok {
		t.Fatalf("TryReadFrameInto took %d bytes of a frame not yet whole", n)
	}
	if r.Buffered() != 7 {
		t.Fatalf("%d bytes buffered; want the 7 TryRead brought", r.Buffered())
	}
	if n, err := r.ReadFrameInto(buf, -1); err != nil || !bytes.Equal(buf[:n], c) {
		t.Fatalf("ReadFrameInto after a partial frame = %d, %v", n, err)
	}
	// Nothing more to try: false, and ReadFrameInto reads on.
	if _, ok := r.TryReadFrameInto(buf, -1); ok {
		t.Fatal("TryReadFrameInto = true with nothing to try")
	}
	if n, err := r.ReadFrameInto(buf, -1); err != nil || !bytes.Equal(buf[:n], a) {
		t.Fatalf("ReadFrameInto = %d, %v", n, err)
	}
}

// TestTryReadFrameIntoDeclines: a frame too long for p or limit, or with a
// long header, is left to ReadFrameInto, which reports it as it always has.
func TestTryReadFrameIntoDeclines(t *testing.T) {
	p := pattern(100, 4)
	for _, tc := range []struct {
		name   string
		stream []byte
		buf    int
		limit  int64
		check  func(n int, err error) error
	}{
		{"buffer too short", frames(p).Bytes(), 50, -1, func(n int, err error) error {
			if e := (*frame.BufferTooShortError)(nil); !errors.As(err, &e) || !bytes.Equal(e.Msg, p) {
				return fmt.Errorf("got %d, %v; want BufferTooShortError with the message", n, err)
			}
			return nil
		}},
		{"over limit", frames(p).Bytes(), 200, 99, func(n int, err error) error {
			if e := (*frame.TooLargeError)(nil); !errors.As(err, &e) {
				return fmt.Errorf("got %d, %v; want TooLargeError", n, err)
			}
			return nil
		}},
		{"long header", append(binary.BigEndian.AppendUint64([]byte{0xff, 0xff, 0xff, 0xff}, uint64(len(p))), p...), 200, -1, func(n int, err error) error {
			if err != nil || n != len(p) {
				return fmt.Errorf("got %d, %v; want the message", n, err)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := frame.NewReader(&tryReader{chunks: [][]byte{tc.stream}, rest: bytes.NewReader(nil)}, 0)
			buf := make([]byte, tc.buf)
			if n, ok := r.TryReadFrameInto(buf, tc.limit); ok {
				t.Fatalf("TryReadFrameInto = %d, true", n)
			}
			if r.Buffered() != len(tc.stream) {
				t.Fatalf("%d bytes buffered; want all %d", r.Buffered(), len(tc.stream))
			}
			n, err := r.ReadFrameInto(buf, tc.limit)
			if err := tc.check(n, err); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A TryRead that reports a count it cannot have read puts the stream out of
// sync: nothing later may be taken for a frame.
func TestTryReadFrameIntoInvalidCount(t *testing.T) {
	for _, count := range []func(int) int{
		func(n int) int { return -1 },
		func(n int) int { return 1 << 30 },
	} {
		tr := &tryReader{chunks: [][]byte{frames([]byte("x")).Bytes()}, rest: bytes.NewReader(frames([]byte("y")).Bytes()), count: count}
		r := frame.NewReader(tr, 0)
		if _, ok := r.TryReadFrameInto(make([]byte, 10), -1); ok {
			t.Fatal("TryReadFrameInto = true after an invalid count")
		}
		if _, err := r.ReadFrameInto(make([]byte, 10), -1); !errors.Is(err, frame.ErrBroken) {
			t.Fatalf("ReadFrameInto = %v; want ErrBroken", err)
		}
	}
}

// A transport that is not a TryReader is never read by TryReadFrameInto.
func TestTryReadFrameIntoPlainReader(t *testing.T) {
	r := frame.NewReader(frames([]byte("x")), 0)
	if _, ok := r.TryReadFrameInto(make([]byte, 10), -1); ok || r.Buffered() != 0 {
		t.Fatalf("TryReadFrameInto on a plain reader = true or read (%d buffered)", r.Buffered())
	}
}

// tryWriter is a TryWriter that takes at most room bytes per TryWrite (-1:
// none, reporting false), reports count(n) if count is set, and fails
// Writev with failv once set.
type tryWriter struct {
	vectorLog
	room  int
	tries int
	count func(n int) int
	failv error
}

func (t *tryWriter) TryWrite(b []byte) (int, bool) {
	t.tries++
	if t.room < 0 {
		return 0, false
	}
	n, _ := t.Write(b[:min(len(b), t.room)])
	if t.count != nil {
		return t.count(n), true
	}
	return n, true
}

func (t *tryWriter) Writev(bufs [][]byte) (int64, error) {
	if t.failv != nil {
		return 0, t.failv
	}
	return t.vectorLog.Writev(bufs)
}

func TestTryWriteFrame(t *testing.T) {
	tiny, over := pattern(256, 1), pattern(257, 2)

	tw := &tryWriter{room: 1 << 20}
	w := frame.NewWriter(tw)
	if ok, err := w.TryWriteFrame(tiny); !ok || err != nil {
		t.Fatalf("TryWriteFrame = %v, %v", ok, err)
	}
	if ok, err := w.TryWriteFrame(over); ok || err != nil || tw.tries != 1 {
		t.Fatalf("TryWriteFrame of %d bytes = %v, %v after %d tries; want false, nil, untried", len(over), ok, err, tw.tries)
	}
	if len(tw.calls) != 0 || !bytes.Equal(tw.Bytes(), frames(tiny).Bytes()) {
		t.Fatalf("TryWriteFrame wrote %q with %d Writev calls; want one frame, none", tw.Bytes(), len(tw.calls))
	}

	// No room: nothing written, and WriteFrame writes it.
	tw = &tryWriter{room: -1}
	w = frame.NewWriter(tw)
	if ok, err := w.TryWriteFrame(tiny); ok || err != nil || tw.Len() != 0 {
		t.Fatalf("TryWriteFrame with no room = %v, %v, %d bytes written", ok, err, tw.Len())
	}

	// Part taken: the rest follows through Writev.
	tw = &tryWriter{room: 3}
	w = frame.NewWriter(tw)
	if ok, err := w.TryWriteFrame(tiny); !ok || err != nil {
		t.Fatalf("TryWriteFrame taken in part = %v, %v", ok, err)
	}
	if !bytes.Equal(tw.Bytes(), frames(tiny).Bytes()) || len(tw.calls) != 1 {
		t.Fatalf("wrote %d bytes with %d Writev calls; want the frame, the rest in one", tw.Len(), len(tw.calls))
	}

	// Part taken, and the rest fails: the error, and the stream is broken.
	tw = &tryWriter{room: 3, failv: io.ErrClosedPipe}
	w = frame.NewWriter(tw)
	if ok, err := w.TryWriteFrame(tiny); !ok || !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("TryWriteFrame cut short = %v, %v; want true and the error", ok, err)
	}
	if ok, err := w.TryWriteFrame(tiny); ok || err != nil {
		t.Fatalf("TryWriteFrame on a broken stream = %v, %v; want false, nil", ok, err)
	}
	if err := w.WriteFrame(tiny); !errors.Is(err, frame.ErrBroken) {
		t.Fatalf("WriteFrame on a broken stream = %v; want ErrBroken", err)
	}

	// An invalid count: what went out is unknown, so the stream is broken.
	for _, count := range []func(int) int{func(int) int { return -1 }, func(n int) int { return n + 1 }} {
		tw = &tryWriter{room: 1 << 20, count: count}
		w = frame.NewWriter(tw)
		if ok, err := w.TryWriteFrame(tiny); !ok || !errors.Is(err, frame.ErrBroken) {
			t.Fatalf("TryWriteFrame with an invalid count = %v, %v; want true, ErrBroken", ok, err)
		}
	}
}

// onlyTry has TryWrite but is not a VectorWriter: TryWriteFrame leaves it
// alone (a Writer finishes a frame taken in part with Writev).
type onlyTry struct{ bytes.Buffer }

func (o *onlyTry) TryWrite(b []byte) (int, bool) {
	n, _ := o.Write(b)
	return n, true
}

func TestTryWriteFrameNeedsVectorWriter(t *testing.T) {
	var o onlyTry
	if ok, _ := frame.NewWriter(&o).TryWriteFrame([]byte("x")); ok || o.Len() != 0 {
		t.Fatalf("TryWriteFrame = %v, wrote %d bytes; want false, none", ok, o.Len())
	}
}
