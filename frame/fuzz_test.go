package frame_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/procpipe/procpipe/frame"
)

// FuzzReader feeds arbitrary bytes to a Reader: it must never panic, never
// allocate far beyond the input, and every frame it returns must re-encode to
// the bytes it came from.
func FuzzReader(f *testing.F) {
	f.Add(frames([]byte("hello"), nil, pattern(300, 1)).Bytes(), int64(-1))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0}, int64(-1))
	f.Add([]byte{0x80, 0, 0, 0}, int64(10))
	f.Add([]byte{0, 0, 0, 5, 'a'}, int64(3))
	f.Fuzz(func(t *testing.T, data []byte, limit int64) {
		r := frame.NewReader(bytes.NewReader(data), 64)
		var out bytes.Buffer
		w := frame.NewWriter(&out)
		for {
			p, err := r.ReadFrame(nil, limit)
			if err != nil {
				var tl *frame.TooLargeError
				if errors.As(err, &tl) {
					continue
				}
				var pe *frame.ProtocolError
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &pe) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if cap(p) > 2*len(data)+64<<10 {
				t.Fatalf("frame of %d bytes from %d input bytes has capacity %d", len(p), len(data), cap(p))
			}
			if limit >= 0 && int64(len(p)) > limit {
				t.Fatalf("frame of %d bytes passed limit %d", len(p), limit)
			}
			if err := w.WriteFrame(p); err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, out.Bytes()[out.Len()-len(p):]) {
				t.Fatalf("payload not found in input")
			}
		}
	})
}
