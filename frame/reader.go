package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// DefaultBufferSize is the read buffer size [NewReader] uses for a size <= 0.
// A frame that fits the buffer is consumed only once it has fully arrived, so
// a deadline that expires while such a frame is in flight leaves the stream
// intact.
const DefaultBufferSize = 64 << 10

// firstChunk is the most a Reader allocates for a payload before any of its
// bytes have arrived.
const firstChunk = 64 << 10

// ErrBroken is wrapped by the error every read returns after an earlier error
// (a deadline, a closed or failing transport, a protocol error) cut a frame
// short: the reader no longer knows where the next frame starts.
var ErrBroken = errors.New("procpipe: stream out of sync: an earlier error cut a message short")

// errInvalidCount says a transport claimed to have read a negative number
// of bytes, or more than it was asked for.
var errInvalidCount = errors.New("procpipe: transport returned an invalid count")

// scatterTail is how much of the stream after a large payload a
// [ScatterReader] is asked for in the same read: enough for the next frame's
// header and a few small frames, little enough that when the next frame is
// large too, the part of it that lands in the buffer (and is copied out) is
// small.
const scatterTail = 4 << 10

// A ScatterReader is a transport that can read into two buffers at once, as
// readv(2) does: ReadScatter fills p before it writes anything to q and
// returns the total number of bytes read (0 < n <= len(p)+len(q), or an
// error). A Reader reads a large payload straight into its destination with
// it and takes the start of the next frame in the same call, so that large
// messages are neither copied on receipt nor cost an extra read for the
// header that follows. A transport may read into p only.
type ScatterReader interface {
	ReadScatter(p, q []byte) (int, error)
}

// A TryReader is a transport that can read without waiting: TryRead reads
// into p what has already arrived and reports how many bytes that was
// (0 < n <= len(p)) and true, or reports false having read nothing (nothing
// has arrived, or the transport cannot tell without waiting, or the read
// failed). [Reader.TryReadFrameInto] uses it; a caller whose attempt fails
// calls [Reader.ReadFrameInto], which waits and reports errors. The bytes
// TryRead returns are the stream's next bytes, exactly as Read's would be:
// a transport that keeps account of what Read returned (a position, say)
// must keep it for TryRead too, or refuse.
type TryReader interface {
	TryRead(p []byte) (n int, ok bool)
}

// A Reader reads whole frames from a byte stream. It buffers reads, so many
// small frames cost one read from the transport, and reads large payloads
// straight into the caller's memory.
//
// A Reader is not safe for concurrent use; the caller serialises its calls.
type Reader struct {
	rd   io.Reader
	tr   TryReader // rd, if it is one
	buf  []byte
	r, w int   // buf[r:w] is buffered and not yet consumed
	err  error // sticky: set once the stream is out of sync

	// scattered is set when a payload was read with ReadScatter: the
	// next fill then reads at most scatterTail bytes, so that if the
	// frame it starts is large too, little of it is copied through the
	// buffer before the rest goes straight to its destination.
	scattered bool
}

// MaxBufferSize is the largest read buffer [NewReader] makes: the buffer is
// allocated whole at once, and beyond a few MiB a larger one saves nothing
// (large payloads are read straight into their destination).
const MaxBufferSize = 64 << 20

// NewReader returns a Reader that reads frames from rd through a buffer of
// size bytes (DefaultBufferSize if size <= 0). A size below LongHeaderSize
// is raised to it, as the buffer must hold any header whole; one above
// MaxBufferSize is lowered to it.
func NewReader(rd io.Reader, size int) *Reader {
	if size <= 0 {
		size = DefaultBufferSize
	}
	size = min(max(size, LongHeaderSize), MaxBufferSize)
	tr, _ := rd.(TryReader)
	return &Reader{rd: rd, tr: tr, buf: make([]byte, size)}
}

// Buffered returns the number of bytes read from the transport and not yet
// consumed.
func (r *Reader) Buffered() int { return r.w - r.r }

// Fill reads once from the transport into the buffer. It returns nil if it
// read at least one byte. A Reader whose stream is out of sync returns its
// sticky error.
func (r *Reader) Fill() error {
	if r.err != nil {
		return r.err
	}
	return r.fill()
}

// fillTo reads until at least need bytes are buffered. need must not exceed
// the buffer's size.
func (r *Reader) fillTo(need int) error {
	for r.w-r.r < need {
		if err := r.fill(); err != nil {
			return err
		}
	}
	return nil
}

// broken records err as the reason the stream is out of sync and returns the
// error for the current call.
func (r *Reader) broken(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err == io.ErrUnexpectedEOF {
		r.err = err
	} else {
		r.err = fmt.Errorf("%w (%v)", ErrBroken, err)
	}
	return err
}

// header reads the next frame's header without consuming it. It returns the
// payload length and the header's size. A clean end of stream before the
// header's first byte is io.EOF; inside the header it is
// io.ErrUnexpectedEOF. Any other transport error leaves the stream intact.
func (r *Reader) header() (n uint64, size int, err error) {
	if r.err != nil {
		return 0, 0, r.err
	}
	for {
		n, size, err = ParseHeader(r.buf[r.r:r.w])
		if err != nil {
			r.err = fmt.Errorf("%w (%v)", ErrBroken, err)
			return 0, 0, err
		}
		if size > 0 {
			return n, size, nil
		}
		if err = r.fill(); err != nil {
			if err == io.EOF && r.w > r.r {
				return 0, 0, r.broken(err)
			}
			return 0, 0, err
		}
	}
}

// whole waits until the frame whose header is buffered is buffered in full,
// if it fits the buffer. It reports whether it does.
func (r *Reader) whole(n uint64, size int) (bool, error) {
	if n > uint64(len(r.buf)-size) {
		return false, nil
	}
	if err := r.fillTo(size + int(n)); err != nil {
		if err == io.EOF {
			return false, r.broken(err)
		}
		return false, err // nothing consumed
	}
	return true, nil
}

// checkLimit consumes and discards a frame larger than limit (if limit >= 0)
// and returns a *TooLargeError for it. A frame that fits the buffer is
// discarded only once it has fully arrived, as it would be received, so
// that an error meanwhile (a deadline) leaves the stream usable.
func (r *Reader) checkLimit(n uint64, size int, limit int64) error {
	if limit < 0 || n <= uint64(limit) {
		return nil
	}
	if _, err := r.whole(n, size); err != nil {
		return err
	}
	r.r += size
	if err := r.discard(n); err != nil {
		return err
	}
	return &TooLargeError{Size: n, Limit: limit}
}

// ReadFrame reads the next frame and appends its payload to dst. A frame
// larger than limit bytes (if limit >= 0) is discarded and reported as a
// [*TooLargeError]; the stream stays usable. The buffer grows with the bytes
// that actually arrive, never more than 16 times their number ahead of them
// (32 for payloads of 64 MiB and more).
func (r *Reader) ReadFrame(dst []byte, limit int64) ([]byte, error) {
	n, size, err := r.header()
	if err != nil {
		return dst, err
	}
	if room := uint64(math.MaxInt - len(dst)); n > room && (limit < 0 || uint64(limit) > room) {
		limit = int64(room) // cannot be held in memory here (e.g. 32-bit)
	}
	if err := r.checkLimit(n, size, limit); err != nil {
		return dst, err
	}
	if ok, err := r.whole(n, size); ok {
		r.r += size
		dst = append(dst, r.buf[r.r:r.r+int(n)]...)
		r.r += int(n)
		return dst, nil
	} else if err != nil {
		return dst, err
	}
	r.r += size
	return r.payload(dst, int(n))
}

// payload appends the next n bytes of the stream to dst, growing dst as bytes
// arrive.
func (r *Reader) payload(dst []byte, n int) ([]byte, error) {
	start := len(dst)
	for got := 0; got < n; got = len(dst) - start {
		if len(dst) == cap(dst) {
			dst = grow(dst, got, n)
		}
		m, err := r.readInto(dst[len(dst):min(cap(dst), start+n)])
		dst = dst[:len(dst)+m]
		if err != nil {
			return dst[:start], r.broken(err)
		}
	}
	return dst, nil
}

// grow returns dst with room for more of an n-byte payload of which got bytes
// have arrived. The capacity doubles with what arrived and jumps to the whole
// payload once a 16th of it is in (a 32nd for payloads of 64 MiB and more):
// a lying header costs little, and a genuine large payload is copied at most
// once at a fraction of its size. For large payloads the chunks outgrown on
// the way add up to about a 16th of the payload, which with Go's runtime
// keeps the peak resident memory of receiving a 256 MiB message below 1.15
// times its size (at a 16th it was 1.16); smaller payloads keep the tighter
// bound on what a lying header can make the receiver allocate.
func grow(dst []byte, got, n int) []byte {
	jump := n / 16
	if n >= 64<<20 {
		jump = n / 32
	}
	want := n
	if got < jump {
		want = min(n, max(firstChunk, 2*got))
	}
	out := make([]byte, len(dst), len(dst)-got+want)
	copy(out, dst)
	return out
}

// readInto fills p from the buffer, or straight from the transport when p is
// large, and returns how many bytes it wrote.
func (r *Reader) readInto(p []byte) (int, error) {
	if r.r < r.w {
		n := copy(p, r.buf[r.r:r.w])
		r.r += n
		return n, nil
	}
	var q []byte // the part of the buffer a scatter read fills after p
	sr, scatter := r.rd.(ScatterReader)
	switch {
	case scatter && len(p) >= min(len(r.buf), scatterTail):
		r.r, r.w = 0, 0
		q = r.buf[:min(len(r.buf), scatterTail)]
		r.scattered = true
	case len(p) >= len(r.buf):
		scatter = false
	default:
		if err := r.fill(); err != nil {
			return 0, err
		}
		n := copy(p, r.buf[r.r:r.w])
		r.r += n
		return n, nil
	}
	for range 100 {
		var (
			n   int
			err error
		)
		if scatter {
			n, err = sr.ReadScatter(p, q)
		} else {
			n, err = r.rd.Read(p)
		}
		if n < 0 || n > len(p)+len(q) {
			return 0, errInvalidCount
		}
		if n > 0 {
			m := min(n, len(p))
			r.w += n - m // what went to q
			return m, nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrNoProgress
}

// SkipFrame reads and discards the next frame and returns its length.
func (r *Reader) SkipFrame() (uint64, error) {
	n, size, err := r.header()
	if err != nil {
		return 0, err
	}
	r.r += size
	return n, r.discard(n)
}

// discard consumes the next n payload bytes.
func (r *Reader) discard(n uint64) error {
	for n > 0 {
		if r.r == r.w {
			if err := r.fill(); err != nil {
				return r.broken(err)
			}
		}
		m := uint64(r.w - r.r)
		if m > n {
			m = n
		}
		r.r += int(m)
		n -= m
	}
	return nil
}

// ReadByte consumes one byte of the stream that is not part of a frame (such
// as the count byte CPython sends with passed file descriptors).
func (r *Reader) ReadByte() (byte, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.r == r.w {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	b := r.buf[r.r]
	r.r++
	return b, nil
}

// PeekByte returns the next byte of the stream without consuming it, reading
// from the transport if nothing is buffered.
func (r *Reader) PeekByte() (byte, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.r == r.w {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	return r.buf[r.r], nil
}

// Peek returns the next n bytes of the stream without consuming them,
// reading from the transport until they are buffered. It serves callers that
// carry items other than frames between frames (procpipe's Windows handle
// items): such an item must not start like a valid frame header. If the
// buffer is smaller than n it grows to n bytes, so callers bound n
// themselves and never pass a size a peer announced without checking it.
// The slice is valid until the next call on r.
//
// An end of stream before any of the bytes is io.EOF; after some of them it
// is io.ErrUnexpectedEOF, and the stream is out of sync. Any other transport
// error leaves the stream intact.
func (r *Reader) Peek(n int) ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if n < 0 {
		return nil, fmt.Errorf("procpipe: peek of %d bytes", n)
	}
	if n > len(r.buf) {
		buf := make([]byte, n)
		r.w = copy(buf, r.buf[r.r:r.w])
		r.r = 0
		r.buf = buf
	}
	if err := r.fillTo(n); err != nil {
		if err == io.EOF && r.w > r.r {
			return nil, r.broken(err)
		}
		return nil, err
	}
	return r.buf[r.r : r.r+n], nil
}

// Discard consumes the next n bytes of the stream, which are not part of a
// frame (such as an item the caller examined with [Reader.Peek]). An error
// leaves the stream out of sync.
func (r *Reader) Discard(n int) error {
	if r.err != nil {
		return r.err
	}
	if n < 0 {
		return fmt.Errorf("procpipe: discard of %d bytes", n)
	}
	return r.discard(uint64(n))
}

// Break records that the stream is out of sync because of err, which the
// caller found in bytes it examined (a malformed item, say), and returns
// err. Every later read fails with an error wrapping [ErrBroken].
func (r *Reader) Break(err error) error {
	if r.err == nil {
		r.err = fmt.Errorf("%w (%v)", ErrBroken, err)
	}
	return err
}

// The rest of this file is a small frame's path through a Reader, kept
// together, and next to writer.go, whose first functions (after NewWriter,
// which is inlined) are Writer.TryWriteFrame and Writer.WriteFrame: the
// linker lays out a package's functions in file and source order, and
// where every system call empties the TLB (see the unix package's
// iov_linux.go) each page of code a message's path touches costs a refill.

// ReadFrameInto reads the next frame into p and returns its length. A frame
// larger than limit bytes (if limit >= 0) is discarded and reported as a
// [*TooLargeError]. A frame larger than p is read whole and returned in a
// [*BufferTooShortError]. Either way the stream stays usable.
func (r *Reader) ReadFrameInto(p []byte, limit int64) (int, error) {
	if r.err == nil {
		if r.r == r.w {
			// Nothing buffered: read before looking for a header,
			// rather than after finding none (a round trip's
			// messages mostly arrive in one read each).
			if err := r.fill(); err != nil {
				return 0, err
			}
		}
		if n, ok := r.short(p, limit); ok {
			return n, nil
		}
	}
	n, size, err := r.header()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(p)) {
		msg, err := r.ReadFrame(nil, limit)
		if err != nil {
			return 0, err
		}
		return 0, &BufferTooShortError{Msg: msg, BufLen: len(p)}
	}
	if err := r.checkLimit(n, size, limit); err != nil {
		return 0, err
	}
	if ok, err := r.whole(n, size); ok {
		r.r += size
		r.r += copy(p, r.buf[r.r:r.r+int(n)])
		return int(n), nil
	} else if err != nil {
		return 0, err
	}
	r.r += size
	for got := 0; got < int(n); {
		m, err := r.readInto(p[got:n])
		got += m
		if err != nil {
			return 0, r.broken(err)
		}
	}
	return int(n), nil
}

// short consumes the next frame into p and returns its length, if it is
// buffered whole, has a short header and fits both p and limit: the common
// case, handled here in a few dozen instructions (a small message's receipt
// is dominated by fixed costs: each one saved shows in round trips).
func (r *Reader) short(p []byte, limit int64) (int, bool) {
	b := r.buf[r.r:r.w]
	if len(b) < HeaderSize {
		return 0, false
	}
	n := int(int32(binary.BigEndian.Uint32(b)))
	if n < 0 || n > len(b)-HeaderSize || n > len(p) || (limit >= 0 && int64(n) > limit) {
		return 0, false
	}
	copy(p, b[HeaderSize:HeaderSize+n])
	r.r += HeaderSize + n
	return n, true
}

// fill is Fill without its check of the sticky error: one read from the
// transport into the buffer, after making room at its end.
func (r *Reader) fill() error {
	if r.r == r.w {
		r.r, r.w = 0, 0
	} else if r.w == len(r.buf) {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	end := len(r.buf)
	if r.scattered {
		end = min(end, r.w+scatterTail)
		r.scattered = false
	}
	for range 100 {
		n, err := r.rd.Read(r.buf[r.w:end])
		if n < 0 || n > end-r.w {
			return errInvalidCount
		}
		r.w += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// TryReadFrameInto is [Reader.ReadFrameInto] for a frame that is there
// already: if the buffer holds the next frame whole, or holds nothing and
// one [TryReader.TryRead] from the transport brings the frame whole, and
// the frame has a short header (see [MaxShortPayload]) and fits both p and
// limit, it consumes the frame into p and returns its length and true.
// Otherwise it returns false having consumed nothing (the bytes TryRead
// brought stay buffered), and ReadFrameInto takes the frame: with nothing
// buffered, a transport that is not a TryReader gets false, and a stream
// out of sync always does.
//
// A small message's receipt takes this path, the shortest from the system
// call to the caller (see the transport's TryRead).
func (r *Reader) TryReadFrameInto(p []byte, limit int64) (int, bool) {
	if r.err != nil {
		return 0, false
	}
	if r.r == r.w {
		if r.tr == nil || r.scattered {
			return 0, false
		}
		r.r, r.w = 0, 0
		n, ok := r.tr.TryRead(r.buf)
		if !ok || n == 0 {
			return 0, false
		}
		if n < 0 || n > len(r.buf) {
			r.err = fmt.Errorf("%w (%v)", ErrBroken, errInvalidCount)
			return 0, false
		}
		r.w = n
	}
	return r.short(p, limit)
}
