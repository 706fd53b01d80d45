package frame_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/procpipe/procpipe/frame"
)

// Seed corpora for the fuzz targets are in testdata/fuzz/<target>/, in Go's
// corpus format; ci/matrix.sh fuzzes every target for a bounded time.
//
// TODO(fd passing): the parser of fd-passing messages (the 1-byte count plus
// SCM_RIGHTS control message) gets its own Fuzz target and seeds with that
// work; ci/matrix.sh picks up any new Fuzz target by itself.

// FuzzParseHeader checks ParseHeader against the wire format: a header is
// recognised only when whole, every prefix of it reads as "more needed", the
// length is the one the bytes say, and a canonical header re-encodes to the
// same bytes.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 5})
	f.Add([]byte{0xff, 0xff, 0xff, 0xfe})
	f.Add([]byte{0x80, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, size, err := frame.ParseHeader(b)
		var short int32
		if len(b) >= 4 {
			short = int32(binary.BigEndian.Uint32(b))
		}
		switch {
		case len(b) < frame.HeaderSize:
			if size != 0 || err != nil {
				t.Fatalf("ParseHeader(%x) = %d, %d, %v; want 0, 0, nil for a partial header", b, n, size, err)
			}
			return
		case short < -1:
			var pe *frame.ProtocolError
			if !errors.As(err, &pe) || pe.Length != int64(short) || size != 0 {
				t.Fatalf("ParseHeader(%x) = %d, %d, %v; want a ProtocolError for %d", b, n, size, err, short)
			}
			return
		case err != nil:
			t.Fatalf("ParseHeader(%x) = %v; want no error", b, err)
		case short >= 0:
			if size != frame.HeaderSize || n != uint64(short) {
				t.Fatalf("ParseHeader(%x) = %d, %d; want %d, 4", b, n, size, short)
			}
		case len(b) < frame.LongHeaderSize:
			if size != 0 {
				t.Fatalf("ParseHeader(%x) = %d, %d; want size 0 for a partial long header", b, n, size)
			}
			return
		default:
			if size != frame.LongHeaderSize || n != binary.BigEndian.Uint64(b[4:]) {
				t.Fatalf("ParseHeader(%x) = %d, %d; want %d, 12", b, n, size, binary.BigEndian.Uint64(b[4:]))
			}
		}
		// Every proper prefix of a whole header asks for more.
		for i := range size {
			if _, s, err := frame.ParseHeader(b[:i]); s != 0 || err != nil {
				t.Fatalf("ParseHeader of %d of the %d header bytes %x = size %d, %v", i, size, b[:size], s, err)
			}
		}
		// A canonical header (the short form when it fits) re-encodes to
		// itself; a long header for a short length is accepted but not
		// produced.
		canonical := size == frame.HeaderSize || n > frame.MaxShortPayload
		if h := frame.AppendHeader(nil, n); canonical != bytes.Equal(h, b[:size]) {
			t.Fatalf("AppendHeader(%d) = %x; header parsed was %x (canonical %v)", n, h, b[:size], canonical)
		}
	})
}

// FuzzReadFrameInto reads the same bytes with ReadFrameInto (into a buffer
// of bufLen bytes) and with ReadFrame: frame for frame, both must agree on
// the payload and on the kind of error, whatever the buffer and read sizes.
func FuzzReadFrameInto(f *testing.F) {
	f.Add(frames([]byte("hello"), nil, pattern(300, 1)).Bytes(), uint16(10), int64(-1), uint8(0))
	f.Add(frames(pattern(100, 2), []byte("next")).Bytes(), uint16(50), int64(-1), uint8(1))
	f.Add(frames(pattern(1000, 3), pattern(10, 4)).Bytes(), uint16(2000), int64(999), uint8(7))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0}, uint16(3), int64(-1), uint8(2))
	f.Add([]byte{0, 0, 1, 0, 'x'}, uint16(512), int64(-1), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, bufLen uint16, limit int64, chunk uint8) {
		// chunk > 0 makes every transport read return at most chunk
		// bytes, which takes the resume paths; an even chunk reads
		// large payloads with ReadScatter.
		src := func() io.Reader {
			switch {
			case chunk == 0:
				return bytes.NewReader(data)
			case chunk%2 == 0:
				return &scatterReader{r: bytes.NewReader(data), max: int(chunk)}
			}
			return &chunkReader{data: data, n: int(chunk)}
		}
		into := frame.NewReader(src(), 64)
		whole := frame.NewReader(bytes.NewReader(data), 64)
		buf := make([]byte, bufLen)
		for i := 0; i <= len(data)/4+1; i++ {
			n, err := into.ReadFrameInto(buf, limit)
			want, werr := whole.ReadFrame(nil, limit)
			var bts *frame.BufferTooShortError
			if errors.As(err, &bts) {
				if werr != nil || !bytes.Equal(bts.Msg, want) || bts.BufLen != int(bufLen) || len(want) <= int(bufLen) {
					t.Fatalf("frame %d: ReadFrameInto: buffer too short with %d bytes (buffer %d); ReadFrame: %d bytes, %v", i, len(bts.Msg), bufLen, len(want), werr)
				}
				continue
			}
			if errClass(err) != errClass(werr) {
				t.Fatalf("frame %d: ReadFrameInto error %v; ReadFrame error %v", i, err, werr)
			}
			if err != nil {
				var tl *frame.TooLargeError
				if errors.As(err, &tl) {
					continue
				}
				return
			}
			if !bytes.Equal(buf[:n], want) {
				t.Fatalf("frame %d: ReadFrameInto got %d bytes, ReadFrame %d, or they differ", i, n, len(want))
			}
		}
		t.Fatalf("%d bytes did not end after %d frames", len(data), len(data)/4+2)
	})
}

// errClass names the kind of a Reader's error for comparisons.
func errClass(err error) string {
	var (
		pe *frame.ProtocolError
		tl *frame.TooLargeError
	)
	switch {
	case err == nil:
		return "nil"
	case err == io.EOF:
		return "EOF"
	case err == io.ErrUnexpectedEOF:
		return "ErrUnexpectedEOF"
	case errors.As(err, &pe):
		return "ProtocolError"
	case errors.As(err, &tl):
		return "TooLarge"
	case errors.Is(err, frame.ErrBroken):
		return "Broken"
	}
	return "other: " + err.Error()
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	m := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[m:]
	return m, nil
}
