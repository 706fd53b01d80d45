package frame_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/procpipe/procpipe/frame"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, n := range []uint64{0, 1, 255, 16384, frame.MaxShortPayload, frame.MaxShortPayload + 1, 1 << 40} {
		h := frame.AppendHeader(nil, n)
		want := frame.HeaderSize
		if n > frame.MaxShortPayload {
			want = frame.LongHeaderSize
		}
		got, size, err := frame.ParseHeader(h)
		if err != nil || size != want || got != n {
			t.Errorf("ParseHeader(AppendHeader(%d)) = %d, %d, %v; want %d, %d, nil", n, got, size, err, n, want)
		}
		for i := range h {
			if _, size, err := frame.ParseHeader(h[:i]); size != 0 || err != nil {
				t.Errorf("ParseHeader of %d of %d header bytes = size %d, %v; want 0, nil", i, len(h), size, err)
			}
		}
	}
}

// TestHeaderBytes pins the wire format to CPython's struct.pack("!i", n) and
// struct.pack("!Q", n) after -1.
func TestHeaderBytes(t *testing.T) {
	tests := []struct {
		n    uint64
		want []byte
	}{
		{0, []byte{0, 0, 0, 0}},
		{16385, []byte{0, 0, 0x40, 0x01}},
		{0x7fffffff, []byte{0x7f, 0xff, 0xff, 0xff}},
		{0x80000000, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, frame.AppendHeader(nil, tt.n)); diff != "" {
			t.Errorf("AppendHeader(%d) (-want +got):\n%s", tt.n, diff)
		}
	}
}

func TestProtocolError(t *testing.T) {
	var buf bytes.Buffer
	buf.Write([]byte{0xff, 0xff, 0xff, 0xfe, 1, 2, 3})
	r := frame.NewReader(&buf, 0)
	_, err := r.ReadFrame(nil, -1)
	var pe *frame.ProtocolError
	if !errors.As(err, &pe) || pe.Length != -2 {
		t.Fatalf("ReadFrame = %v; want ProtocolError for -2", err)
	}
	if _, err := r.ReadFrame(nil, -1); !errors.Is(err, frame.ErrBroken) {
		t.Fatalf("second ReadFrame = %v; want ErrBroken", err)
	}
}

func frames(payloads ...[]byte) *bytes.Buffer {
	var buf bytes.Buffer
	w := frame.NewWriter(&buf)
	for _, p := range payloads {
		if err := w.WriteFrame(p); err != nil {
			panic(err)
		}
	}
	return &buf
}

func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7) + seed
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 3, 4, 100, 16384, 16385, frame.DefaultBufferSize - 4, frame.DefaultBufferSize, 1 << 20, 3<<20 + 17}
	var payloads [][]byte
	for i, n := range sizes {
		payloads = append(payloads, pattern(n, byte(i)))
	}
	for _, bufSize := range []int{16, 4096, 0} {
		// oneByteReader makes every read short, exercising each resume
		// path; scatterReader takes the path that reads large payloads
		// straight into their destination, whole or in short reads.
		for _, mode := range []string{"plain", "one-byte", "scatter", "scatter-short"} {
			var (
				src     io.Reader = frames(payloads...)
				scatter *scatterReader
			)
			switch mode {
			case "one-byte":
				src = &oneByteReader{src}
			case "scatter":
				scatter = &scatterReader{r: src, max: 1 << 30}
				src = scatter
			case "scatter-short":
				scatter = &scatterReader{r: src, max: 1000}
				src = scatter
			}
			r := frame.NewReader(src, bufSize)
			for i, want := range payloads {
				var got []byte
				var err error
				if i%2 == 0 {
					got, err = r.ReadFrame(nil, -1)
				} else {
					p := make([]byte, len(want)+3)
					var n int
					n, err = r.ReadFrameInto(p, -1)
					got = p[:n]
				}
				if err != nil {
					t.Fatalf("buf %d, %s reads: frame %d: %v", bufSize, mode, i, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("buf %d, %s reads: frame %d: payload differs", bufSize, mode, i)
				}
			}
			if _, err := r.ReadFrame(nil, -1); err != io.EOF {
				t.Fatalf("after last frame: %v; want io.EOF", err)
			}
			if scatter != nil && scatter.calls == 0 {
				t.Errorf("buf %d, %s reads: large payloads were not read with ReadScatter", bufSize, mode)
			}
		}
	}
}

// scatterReader is a frame.ScatterReader that returns at most max bytes per
// call.
type scatterReader struct {
	r     io.Reader
	max   int
	calls int // ReadScatter calls with a non-empty q

	scattered bool  // the last call was ReadScatter
	after     []int // the sizes asked for by Reads that followed one
	noTail    bool  // ReadScatter fills p only, as a transport may
}

func (s *scatterReader) Read(p []byte) (int, error) {
	if s.scattered {
		s.after = append(s.after, len(p))
		s.scattered = false
	}
	return s.r.Read(p[:min(len(p), s.max)])
}

func (s *scatterReader) ReadScatter(p, q []byte) (int, error) {
	s.scattered = true
	if len(q) > 0 {
		s.calls++
	}
	n, err := io.ReadFull(s.r, p[:min(len(p), s.max)])
	if n < len(p) || n == s.max || s.noTail {
		return n, err
	}
	m, err := s.r.Read(q[:min(len(q), s.max-n)])
	return n + m, err
}

// TestScatterThenSmallFill checks that the read after a payload read by
// ReadScatter asks for little, so that when the next frame is large too,
// little of it is copied through the buffer.
func TestScatterThenSmallFill(t *testing.T) {
	var payloads [][]byte
	for i := range 6 {
		payloads = append(payloads, pattern(100000+i, byte(i)))
	}
	// A frame's header never comes with the end of the previous
	// payload, so a fill follows each scatter read.
	src := &scatterReader{r: frames(payloads...), max: 1 << 30, noTail: true}
	r := frame.NewReader(src, 0)
	p := make([]byte, 200000)
	for i, want := range payloads {
		n, err := r.ReadFrameInto(p, -1)
		if err != nil || !bytes.Equal(p[:n], want) {
			t.Fatalf("frame %d: %d bytes, %v", i, n, err)
		}
	}
	if len(src.after) == 0 {
		t.Fatal("no read followed a scatter read")
	}
	for _, n := range src.after {
		if n > 4<<10 {
			t.Fatalf("reads after scatter reads asked for %v bytes; want at most 4 KiB each", src.after)
		}
	}
}

// TestScatterInvalidCount checks that a transport claiming more bytes than
// the two buffers hold gives an error, not a slice out of range.
func TestScatterInvalidCount(t *testing.T) {
	r := frame.NewReader(liar{frames(pattern(1<<20, 1))}, 0)
	if _, err := r.ReadFrame(nil, -1); err == nil || !strings.Contains(err.Error(), "invalid count") {
		t.Fatalf("got %v; want an invalid count error", err)
	}
}

// liar reads correctly with Read but claims one byte too many from
// ReadScatter.
type liar struct{ r io.Reader }

func (l liar) Read(p []byte) (int, error) { return l.r.Read(p) }

func (l liar) ReadScatter(p, q []byte) (int, error) { return len(p) + len(q) + 1, nil }

type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// TestLongHeaderSmallPayload checks that the -1 + uint64 form is accepted for
// any length, as a decoder must not rely on the sender's choice of form.
func TestLongHeaderSmallPayload(t *testing.T) {
	var buf bytes.Buffer
	buf.Write([]byte{0xff, 0xff, 0xff, 0xff})
	buf.Write(binary.BigEndian.AppendUint64(nil, 5))
	buf.WriteString("hello")
	got, err := frame.NewReader(&buf, 0).ReadFrame(nil, -1)
	if err != nil || string(got) != "hello" {
		t.Fatalf("ReadFrame = %q, %v", got, err)
	}
}

// TestTinyBuffer reads short and long headers and payloads longer than the
// buffer through buffers of every size up to just above the longest header.
func TestTinyBuffer(t *testing.T) {
	long := []byte("longer than any tiny buffer")
	for size := 1; size <= frame.LongHeaderSize+1; size++ {
		stream := frames([]byte("hi"), long)
		stream.Write([]byte{0xff, 0xff, 0xff, 0xff})
		stream.Write(binary.BigEndian.AppendUint64(nil, 5))
		stream.WriteString("hello")
		r := frame.NewReader(stream, size)
		for i, want := range [][]byte{[]byte("hi"), long} {
			if got, err := r.ReadFrame(nil, -1); err != nil || !bytes.Equal(got, want) {
				t.Errorf("buffer of %d: frame %d = %q, %v; want %q", size, i, got, err, want)
			}
		}
		p := make([]byte, 8)
		if n, err := r.ReadFrameInto(p, -1); err != nil || string(p[:n]) != "hello" {
			t.Errorf("buffer of %d: long-header frame = %q, %v; want \"hello\"", size, p[:n], err)
		}
	}
}

func TestTruncated(t *testing.T) {
	full := frames([]byte("hello, world")).Bytes()
	for i := 1; i < len(full); i++ {
		r := frame.NewReader(bytes.NewReader(full[:i]), 0)
		if _, err := r.ReadFrame(nil, -1); err != io.ErrUnexpectedEOF {
			t.Errorf("%d of %d bytes: %v; want io.ErrUnexpectedEOF", i, len(full), err)
		}
	}
	if _, err := frame.NewReader(bytes.NewReader(nil), 0).ReadFrame(nil, -1); err != io.EOF {
		t.Errorf("empty stream: %v; want io.EOF", err)
	}
}

// TestLyingHeader sends a header claiming 2^62 bytes and then ends the stream:
// the reader must fail without allocating anything like the claim.
func TestLyingHeader(t *testing.T) {
	for _, body := range []int{0, 10, 200 << 10} {
		var buf bytes.Buffer
		buf.Write(frame.AppendHeader(nil, 1<<62))
		buf.Write(make([]byte, body))
		r := frame.NewReader(&buf, 0)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := r.ReadFrame(nil, -1)
		runtime.ReadMemStats(&after)
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("body %d: ReadFrame = %v; want io.ErrUnexpectedEOF", body, err)
		}
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(4*body+1<<20); got > limit {
			t.Errorf("body %d: allocated %d bytes; want <= %d", body, got, limit)
		}
	}
}

func TestTooLarge(t *testing.T) {
	src := frames(pattern(1000, 1), pattern(10, 2), pattern(200<<10, 3), pattern(20, 4))
	r := frame.NewReader(src, 0)
	var tl *frame.TooLargeError
	if _, err := r.ReadFrame(nil, 999); !errors.As(err, &tl) || tl.Size != 1000 || tl.Limit != 999 {
		t.Fatalf("ReadFrame(limit 999) = %v; want TooLargeError{1000, 999}", err)
	}
	if got, err := r.ReadFrame(nil, 999); err != nil || !bytes.Equal(got, pattern(10, 2)) {
		t.Fatalf("next frame = %v; want the 10-byte frame", err)
	}
	if _, err := r.ReadFrameInto(make([]byte, 300<<10), 100<<10); !errors.As(err, &tl) || tl.Size != 200<<10 {
		t.Fatalf("ReadFrameInto(limit 100K) = %v; want TooLargeError", err)
	}
	if got, err := r.ReadFrame(nil, 999); err != nil || !bytes.Equal(got, pattern(20, 4)) {
		t.Fatalf("frame after large one = %v; want the 20-byte frame", err)
	}
	if msg := tl.Error(); msg != "procpipe: message of 204800 bytes exceeds the limit of 102400 bytes" {
		t.Errorf("message %q does not name both sizes", msg)
	}

	// Small frames, buffered whole and fitting p: the limit still holds.
	r = frame.NewReader(frames(pattern(30, 5), pattern(10, 6)), 0)
	p := make([]byte, 100)
	if _, err := r.ReadFrameInto(p, 20); !errors.As(err, &tl) || tl.Size != 30 || tl.Limit != 20 {
		t.Fatalf("ReadFrameInto(limit 20) of a buffered 30-byte frame = %v; want TooLargeError{30, 20}", err)
	}
	if n, err := r.ReadFrameInto(p, 20); err != nil || !bytes.Equal(p[:n], pattern(10, 6)) {
		t.Fatalf("frame after the too-large one = %d, %v; want the 10-byte frame", n, err)
	}
}

func TestBufferTooShort(t *testing.T) {
	r := frame.NewReader(frames(pattern(100, 1), pattern(5, 2)), 0)
	_, err := r.ReadFrameInto(make([]byte, 50), -1)
	var bts *frame.BufferTooShortError
	if !errors.As(err, &bts) || !bytes.Equal(bts.Msg, pattern(100, 1)) || bts.BufLen != 50 {
		t.Fatalf("ReadFrameInto = %v; want BufferTooShortError carrying the message", err)
	}
	p := make([]byte, 5)
	if n, err := r.ReadFrameInto(p, -1); err != nil || n != 5 || !bytes.Equal(p, pattern(5, 2)) {
		t.Fatalf("next ReadFrameInto = %d, %v", n, err)
	}
}

// timeoutReader returns a deadline error once, after delivering limit bytes.
type timeoutReader struct {
	r     io.Reader
	limit int
	fired bool
}

func (tr *timeoutReader) Read(p []byte) (int, error) {
	if tr.limit == 0 && !tr.fired {
		tr.fired = true
		return 0, os.ErrDeadlineExceeded
	}
	if len(p) > tr.limit && !tr.fired {
		p = p[:tr.limit]
	}
	n, err := tr.r.Read(p)
	tr.limit -= n
	return n, err
}

// TestDeadlineInSmallFrame checks that a deadline while a frame that fits the
// buffer is in flight consumes nothing, so the next read gets the frame.
func TestDeadlineInSmallFrame(t *testing.T) {
	want := pattern(1000, 9)
	for cut := 0; cut < 1004; cut += 97 {
		r := frame.NewReader(&timeoutReader{r: frames(want), limit: cut}, 0)
		if _, err := r.ReadFrame(nil, -1); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("cut %d: first read = %v; want deadline", cut, err)
		}
		if got, err := r.ReadFrame(nil, -1); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("cut %d: second read = %v", cut, err)
		}
	}
}

// TestDeadlineInSmallFrameOverLimit is TestDeadlineInSmallFrame for a frame
// over the receive's limit: it too is discarded only once it has fully
// arrived, so the deadline leaves the stream usable and the next receive
// reports the frame too large, then reads the one after.
func TestDeadlineInSmallFrameOverLimit(t *testing.T) {
	big, next := pattern(1000, 9), []byte("next")
	for cut := 0; cut < 1004; cut += 97 {
		r := frame.NewReader(&timeoutReader{r: frames(big, next), limit: cut}, 0)
		if _, err := r.ReadFrame(nil, 10); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("cut %d: first read = %v; want deadline", cut, err)
		}
		var tl *frame.TooLargeError
		if _, err := r.ReadFrameInto(make([]byte, 2000), 10); !errors.As(err, &tl) || tl.Size != 1000 {
			t.Fatalf("cut %d: second read = %v; want a TooLargeError for 1000 bytes", cut, err)
		}
		if got, err := r.ReadFrame(nil, 10); err != nil || !bytes.Equal(got, next) {
			t.Fatalf("cut %d: third read = %q, %v; want %q", cut, got, err, next)
		}
	}
}

// TestDeadlineInLargeFrame checks that a deadline in the middle of a frame
// larger than the buffer breaks the stream visibly instead of misframing.
func TestDeadlineInLargeFrame(t *testing.T) {
	r := frame.NewReader(&timeoutReader{r: frames(pattern(100<<10, 1), pattern(3, 2)), limit: 70 << 10}, 0)
	if _, err := r.ReadFrame(nil, -1); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("first read = %v; want deadline", err)
	}
	// The second error must not look like a deadline, or a caller retrying
	// on timeouts would spin forever.
	if _, err := r.ReadFrame(nil, -1); !errors.Is(err, frame.ErrBroken) || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second read = %v; want ErrBroken, not a deadline", err)
	}
}

// shortWriter accepts limit bytes, then fails.
type shortWriter struct {
	limit int
	bytes.Buffer
}

func (s *shortWriter) Write(p []byte) (int, error) {
	if len(p) > s.limit {
		n, _ := s.Buffer.Write(p[:s.limit])
		s.limit = 0
		return n, os.ErrDeadlineExceeded
	}
	s.limit -= len(p)
	return s.Buffer.Write(p)
}

func TestWriterPartialWriteBreaks(t *testing.T) {
	w := frame.NewWriter(&shortWriter{limit: 0})
	if err := w.WriteFrame([]byte("abc")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteFrame = %v; want deadline", err)
	}
	// Nothing was written: the stream is still usable.
	sw := &shortWriter{limit: 5}
	w = frame.NewWriter(sw)
	if err := w.WriteFrame([]byte("abc")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteFrame = %v; want deadline", err)
	}
	if err := w.WriteFrame(nil); !errors.Is(err, frame.ErrBroken) {
		t.Fatalf("WriteFrame after partial write = %v; want ErrBroken", err)
	}
}

// TestWriteFramesPartialCount cuts WriteFrames' batch writes short at every
// length: the count it returns must be exactly the frames that went out
// whole, as a reader of the written bytes finds them, and the Writer must
// stay usable exactly when the cut fell between frames.
func TestWriteFramesPartialCount(t *testing.T) {
	var ps [][]byte
	for i := range 40 {
		ps = append(ps, pattern(i*37%300, byte(i)))
	}
	ps = append(ps, pattern(5000, 1), []byte("after the large one")) // a large payload goes on its own
	total := 0
	for _, p := range ps {
		total += frame.HeaderSize + len(p)
	}
	for limit := 0; limit < total; limit++ {
		sw := &shortWriter{limit: limit}
		w := frame.NewWriter(sw)
		n, err := w.WriteFrames(ps)
		if err == nil {
			t.Fatalf("limit %d: WriteFrames = %d, nil; want an error", limit, n)
		}
		r := frame.NewReader(bytes.NewReader(sw.Bytes()), 0)
		whole := 0
		for ; ; whole++ {
			got, err := r.ReadFrame(nil, -1)
			if err != nil {
				break
			}
			if !bytes.Equal(got, ps[whole]) {
				t.Fatalf("limit %d: frame %d differs", limit, whole)
			}
		}
		if n != whole {
			t.Fatalf("limit %d: WriteFrames = %d; the %d written bytes hold %d whole frames", limit, n, sw.Len(), whole)
		}
		// Cut between frames, the stream stays usable; inside one, not.
		atBoundary := 0
		for _, p := range ps[:whole] {
			atBoundary += frame.HeaderSize + len(p)
		}
		if broken := errors.Is(w.Err(), frame.ErrBroken); broken != (sw.Len() != atBoundary) {
			t.Fatalf("limit %d: %d bytes written, %d of them whole frames: Err() = %v", limit, sw.Len(), atBoundary, w.Err())
		}
	}
}

func TestSkipFrame(t *testing.T) {
	r := frame.NewReader(frames(pattern(300<<10, 1), []byte("x")), 0)
	if n, err := r.SkipFrame(); err != nil || n != 300<<10 {
		t.Fatalf("SkipFrame = %d, %v", n, err)
	}
	if got, err := r.ReadFrame(nil, -1); err != nil || string(got) != "x" {
		t.Fatalf("ReadFrame = %q, %v", got, err)
	}
}

// vectorLog is a VectorWriter that records how many buffers each call got.
type vectorLog struct {
	bytes.Buffer
	calls []int
}

func (v *vectorLog) Writev(bufs [][]byte) (int64, error) {
	v.calls = append(v.calls, len(bufs))
	var n int64
	for _, b := range bufs {
		m, _ := v.Write(b)
		n += int64(m)
	}
	return n, nil
}

// A tiny payload goes out copied behind its header, one buffer; a larger one
// as header and payload, two buffers and no copy.
func TestWriterBuffersPerFrame(t *testing.T) {
	var v vectorLog
	w := frame.NewWriter(&v)
	tiny, edge, over, large := pattern(16, 1), pattern(256, 2), pattern(257, 3), pattern(4096, 4)
	payloads := [][]byte{tiny, large, {}, edge, over, tiny}
	for _, p := range payloads {
		if err := w.WriteFrame(p); err != nil {
			t.Fatal(err)
		}
	}
	if want := []int{1, 2, 1, 1, 2, 1}; !cmp.Equal(v.calls, want) {
		t.Errorf("buffers per Writev = %v; want %v", v.calls, want)
	}
	if want := frames(payloads...).Bytes(); !bytes.Equal(v.Bytes(), want) {
		t.Errorf("stream differs from the frames written")
	}
}
