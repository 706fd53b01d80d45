package frame

import (
	"encoding/binary"
	"fmt"
	"io"
)

// A VectorWriter is a transport that can write several buffers in one call,
// as writev(2) does. Writev writes all of bufs, in order, or returns an error
// saying why not, with the number of bytes it did write.
type VectorWriter interface {
	io.Writer
	Writev(bufs [][]byte) (int64, error)
}

// A TryWriter is a [VectorWriter] that can also write without waiting:
// TryWrite writes b, or as much of it as the transport takes at once, and
// reports how many bytes that was (0 < n <= len(b)) and true, or reports
// false having written nothing (the transport has no room, or cannot tell
// without waiting, or the write failed). [Writer.TryWriteFrame] uses it.
type TryWriter interface {
	VectorWriter
	TryWrite(b []byte) (n int, ok bool)
}

// smallFrame is the largest payload a Writer copies behind its header to make
// one write when the transport has no [VectorWriter].
const smallFrame = 16 << 10

// tinyFrame is the largest payload a Writer copies behind its header even for
// a [VectorWriter]: one buffer costs the kernel less than two, and the copy
// next to nothing. With it, streams of 16-byte messages with both processes
// free on 2 CPUs ran 5-20% faster on a socketpair and 0-7% on pipes (5 rounds
// alternating with and without); no change on one CPU, nor for round trips.
const tinyFrame = 256

// A Writer writes whole frames to a byte stream. On a [VectorWriter] a frame
// goes in one vectored write: header and payload as two buffers, or as one
// when the payload is tiny (up to 256 bytes) and copied behind the header. On
// another transport a payload of up to 16 KiB is copied behind its header for
// one write, and a larger one follows its header in a second write.
// [Writer.TryWriteFrame] hands a tiny frame to a [TryWriter] without waiting.
//
// A Writer is not safe for concurrent use; the caller serialises its calls.
type Writer struct {
	w   io.Writer
	vw  VectorWriter // w, if it is one
	tw  TryWriter    // w, if it is one
	hdr [LongHeaderSize]byte
	vec [2][]byte
	tmp []byte // header plus a payload copied behind it (see WriteFrame)
	// tiny holds a tiny frame (see tinyFrame) for a VectorWriter.
	tiny [HeaderSize + tinyFrame]byte
	bat  []byte // frames gathered by WriteFrames
	err  error  // sticky: set once a frame was written in part
}

// NewWriter returns a Writer that writes frames to w.
func NewWriter(w io.Writer) *Writer {
	fw := &Writer{w: w}
	fw.vw, _ = w.(VectorWriter)
	fw.tw, _ = w.(TryWriter)
	return fw
}

// TryWriteFrame is [Writer.WriteFrame] for a tiny frame (a payload of up
// to 256 bytes) that the transport takes without waiting: it reports true
// once the transport, a [TryWriter], took the frame at once. It reports
// false having written nothing when the transport is no TryWriter, p is
// longer, the stream is out of sync, or the transport had no room; then
// WriteFrame writes the frame. Should the transport take part of the frame
// only, TryWriteFrame writes the rest as WriteFrame would, waiting if need
// be, and reports true with the error that stopped it, if any.
//
// A small message's send takes this path, the shortest from the caller to
// the system call (see the transport's TryWrite).
func (w *Writer) TryWriteFrame(p []byte) (bool, error) {
	if w.tw == nil || w.err != nil || len(p) > tinyFrame {
		return false, nil
	}
	b := w.packTiny(p)
	n, ok := w.tw.TryWrite(b)
	switch {
	case !ok || n == 0:
		return false, nil
	case n == len(b):
		return true, nil
	case n < 0 || n > len(b):
		// What went out is unknown.
		w.err = fmt.Errorf("%w (%v)", ErrBroken, errInvalidCount)
		return true, w.err
	}
	w.vec[0] = b[n:]
	m, err := w.vw.Writev(w.vec[:1])
	return true, w.wrote(int64(n)+m, len(b), err)
}

// packTiny returns the frame of p, a tiny payload (see tinyFrame), in the
// Writer's own array.
func (w *Writer) packTiny(p []byte) []byte {
	b := w.tiny[:HeaderSize+len(p)]
	binary.BigEndian.PutUint32(b, uint32(len(p)))
	copy(b[HeaderSize:], p)
	return b
}

// WriteFrame writes p as one frame. An error that leaves nothing written
// (such as an expired deadline) leaves the stream usable; after a frame was
// written in part every later call fails, wrapping [ErrBroken].
func (w *Writer) WriteFrame(p []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.vw != nil && len(p) <= tinyFrame {
		// The common case first, in the Writer's own array: a small
		// message's cost is mostly fixed, and each step saved shows.
		b := w.packTiny(p)
		w.vec[0] = b
		n, err := w.vw.Writev(w.vec[:1])
		return w.wrote(n, len(b), err)
	}
	hdr := AppendHeader(w.hdr[:0], uint64(len(p)))
	var n int64
	var err error
	switch {
	case w.vw != nil:
		w.vec[0], w.vec[1] = hdr, p
		n, err = w.vw.Writev(w.vec[:])
		w.vec[1] = nil // do not keep the caller's memory alive
	case len(p) <= smallFrame:
		w.tmp = append(append(w.tmp[:0], hdr...), p...)
		var m int
		m, err = w.w.Write(w.tmp)
		n = int64(m)
	default:
		var m int
		m, err = w.w.Write(hdr)
		n = int64(m)
		if err == nil {
			m, err = w.w.Write(p)
			n += int64(m)
		}
	}
	return w.wrote(n, len(hdr)+len(p), err)
}

// wrote is the outcome of writing a frame of size bytes, of which the
// transport wrote n: it breaks the Writer if the frame went out in part.
// Its success path is inlined.
func (w *Writer) wrote(n int64, size int, err error) error {
	if err == nil && n == int64(size) {
		return nil
	}
	return w.failed(n, size, err)
}

func (w *Writer) failed(n int64, size int, err error) error {
	if err == nil {
		err = io.ErrShortWrite
	}
	if n > 0 {
		w.err = fmt.Errorf("%w (%v)", ErrBroken, err)
	}
	return err
}

// WriteRaw writes p, bytes that are not a frame (an item the caller defines
// between frames), in one write. Like [Writer.WriteFrame], an error that
// leaves nothing written leaves the stream usable, and a partial write makes
// every later call fail, wrapping [ErrBroken].
func (w *Writer) WriteRaw(p []byte) error {
	if w.err != nil {
		return w.err
	}
	n, err := w.w.Write(p)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	if err != nil && n > 0 {
		w.err = fmt.Errorf("%w (%v)", ErrBroken, err)
	}
	return err
}

// Err returns the error that made the Writer unusable (it wraps
// [ErrBroken]), or nil: callers that write to the transport between frames
// check it first.
func (w *Writer) Err() error { return w.err }

const (
	// batchSize is how many bytes of frames WriteFrames gathers before it
	// writes them.
	batchSize = 64 << 10

	// batchCopy is the largest payload WriteFrames copies into its batch;
	// a larger one is written on its own, without a copy.
	batchCopy = 4 << 10
)

// WriteFrames writes each of ps as one frame, in order. It copies small
// payloads into a batch and writes each batch of up to 64 KiB with one
// write, so that a stream of small frames costs few system calls; a large
// payload is written on its own, as by [Writer.WriteFrame]. It returns the
// number of frames written whole: on an error, frames ps[:n] were written
// and the error is that of the write of the next ones; the stream stays
// usable only if that write wrote nothing.
func (w *Writer) WriteFrames(ps [][]byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.bat == nil {
		w.bat = make([]byte, 0, batchSize)
	}
	done := 0 // ps[:done] are written; ps[done:i] are in the batch
	for i, p := range ps {
		if len(p) > batchCopy {
			if m, err := w.flush(); err != nil {
				return done + w.cut(ps[done:i], m, err), err
			}
			if err := w.WriteFrame(p); err != nil {
				return i, err
			}
			done = i + 1
			continue
		}
		if len(w.bat)+LongHeaderSize+len(p) > cap(w.bat) {
			if m, err := w.flush(); err != nil {
				return done + w.cut(ps[done:i], m, err), err
			}
			done = i
		}
		w.bat = append(AppendHeader(w.bat, uint64(len(p))), p...)
	}
	if m, err := w.flush(); err != nil {
		return done + w.cut(ps[done:], m, err), err
	}
	return len(ps), nil
}

// cut is WriteFrames' answer to a batch write that failed with err after m
// bytes: it returns how many of the batched frames, of payloads ps, went out
// whole, and makes the Writer unusable if the write ended inside a frame.
func (w *Writer) cut(ps [][]byte, m int64, err error) int {
	for k, p := range ps {
		size := int64(HeaderSize + len(p))
		if uint64(len(p)) > MaxShortPayload {
			size = int64(LongHeaderSize + len(p))
		}
		if size > m {
			if m > 0 {
				w.err = fmt.Errorf("%w (%v)", ErrBroken, err)
			}
			return k
		}
		m -= size
	}
	return len(ps)
}

// flush writes the frames gathered in w.bat and empties it. It returns how
// many bytes it wrote; its caller knows where the frames end, and so
// whether a failed write cut one.
func (w *Writer) flush() (int64, error) {
	if len(w.bat) == 0 {
		return 0, nil
	}
	var n int64
	var err error
	if w.vw != nil {
		w.vec[0], w.vec[1] = w.bat, nil
		n, err = w.vw.Writev(w.vec[:1])
		w.vec[0] = nil
	} else {
		var m int
		m, err = w.w.Write(w.bat)
		n = int64(m)
	}
	if err == nil && n != int64(len(w.bat)) {
		err = io.ErrShortWrite
	}
	w.bat = w.bat[:0]
	return n, err
}
