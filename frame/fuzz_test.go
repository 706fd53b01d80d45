package frame_test

import (
	"bytes"
	"encoding/binary"
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

// FuzzReaderAnySize reads arbitrary bytes through buffers of every size
// from 1 byte (raised to the longest header) up, in small pieces or
// scattered, with ReadFrame, ReadFrameInto and SkipFrame chosen by ops, and
// checks every frame against a plain decoding of the bytes.
func FuzzReaderAnySize(f *testing.F) {
	f.Add(frames([]byte("hello"), nil, pattern(300, 1), []byte("x")).Bytes(), uint8(1), []byte{0, 1, 2, 3})
	f.Add(append([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 3}, "abc"...), uint8(11), []byte{1})
	f.Add(frames(pattern(70, 2), pattern(5, 3)).Bytes(), uint8(13), []byte{4, 5})
	f.Fuzz(func(t *testing.T, data []byte, size uint8, ops []byte) {
		want, wantErr := decodeAll(data)
		var src io.Reader = bytes.NewReader(data)
		if len(ops) > 0 && ops[0]&8 != 0 {
			src = &scatterReader{r: src, max: 1 + int(ops[0]>>4)}
		}
		r := frame.NewReader(src, int(size)+1)
		for i, w := range want {
			op := byte(0)
			if len(ops) > 0 {
				op = ops[i%len(ops)] % 3
			}
			switch op {
			case 0:
				got, err := r.ReadFrame(nil, -1)
				if err != nil || !bytes.Equal(got, w) {
					t.Fatalf("frame %d: ReadFrame = %q, %v; want %q", i, got, err, w)
				}
			case 1:
				p := make([]byte, len(w)/2)
				n, err := r.ReadFrameInto(p, -1)
				var short *frame.BufferTooShortError
				switch {
				case len(w) <= len(p):
					if err != nil || !bytes.Equal(p[:n], w) {
						t.Fatalf("frame %d: ReadFrameInto = %q, %v; want %q", i, p[:n], err, w)
					}
				case !errors.As(err, &short) || !bytes.Equal(short.Msg, w):
					t.Fatalf("frame %d: ReadFrameInto a short buffer = %v; want a BufferTooShortError with %q", i, err, w)
				}
			case 2:
				if n, err := r.SkipFrame(); err != nil || n != uint64(len(w)) {
					t.Fatalf("frame %d: SkipFrame = %d, %v; want %d", i, n, err, len(w))
				}
			}
		}
		_, err := r.ReadFrame(nil, -1)
		var pe *frame.ProtocolError
		switch {
		case wantErr == io.EOF || wantErr == io.ErrUnexpectedEOF:
			if err != wantErr {
				t.Fatalf("after the last frame: %v; want %v", err, wantErr)
			}
		case !errors.As(err, &pe):
			t.Fatalf("after the last frame: %v; want a ProtocolError", err)
		}
	})
}

// decodeAll decodes data as a stream of frames without a Reader: the
// payloads, then io.EOF at a clean end, io.ErrUnexpectedEOF in a frame, or
// a ProtocolError for a negative length other than the long form's -1.
func decodeAll(data []byte) ([][]byte, error) {
	var out [][]byte
	for len(data) > 0 {
		if len(data) < 4 {
			return out, io.ErrUnexpectedEOF
		}
		n := int64(int32(binary.BigEndian.Uint32(data)))
		data = data[4:]
		if n == -1 {
			if len(data) < 8 {
				return out, io.ErrUnexpectedEOF
			}
			u := binary.BigEndian.Uint64(data)
			data = data[8:]
			if u > uint64(len(data)) {
				return out, io.ErrUnexpectedEOF
			}
			n = int64(u)
		} else if n < 0 {
			return out, &frame.ProtocolError{}
		}
		if n > int64(len(data)) {
			return out, io.ErrUnexpectedEOF
		}
		out = append(out, data[:n])
		data = data[n:]
	}
	return out, io.EOF
}
