package frame

import (
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

// smallFrame is the largest payload a Writer copies behind its header to make
// one write when the transport has no [VectorWriter].
const smallFrame = 16 << 10

// A Writer writes whole frames to a byte stream. A frame goes to the
// transport in one vectored write when the transport is a [VectorWriter].
//
// A Writer is not safe for concurrent use; the caller serialises its calls.
type Writer struct {
	w   io.Writer
	vw  VectorWriter // w, if it is one
	hdr [LongHeaderSize]byte
	vec [2][]byte
	tmp []byte // header plus a small payload, when w has no Writev
	err error  // sticky: set once a frame was written in part
}

// NewWriter returns a Writer that writes frames to w.
func NewWriter(w io.Writer) *Writer {
	fw := &Writer{w: w}
	fw.vw, _ = w.(VectorWriter)
	return fw
}

// WriteFrame writes p as one frame. An error that leaves nothing written
// (such as an expired deadline) leaves the stream usable; after a frame was
// written in part every later call fails, wrapping [ErrBroken].
func (w *Writer) WriteFrame(p []byte) error {
	if w.err != nil {
		return w.err
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
	if err == nil && n != int64(len(hdr)+len(p)) {
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
