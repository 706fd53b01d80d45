package frame

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

const (
	// HeaderSize is the size of the header of a payload of at most
	// [MaxShortPayload] bytes.
	HeaderSize = 4

	// LongHeaderSize is the size of the header of a larger payload: the int32
	// -1 and then an 8-byte length.
	LongHeaderSize = 12

	// MaxShortPayload is the largest payload announced by a 4-byte header.
	MaxShortPayload = math.MaxInt32
)

// AppendHeader appends the header announcing an n-byte payload to b and
// returns the extended slice.
func AppendHeader(b []byte, n uint64) []byte {
	if n <= MaxShortPayload {
		return binary.BigEndian.AppendUint32(b, uint32(n))
	}
	b = binary.BigEndian.AppendUint32(b, math.MaxUint32) // int32(-1)
	return binary.BigEndian.AppendUint64(b, n)
}

// ParseHeader parses the header at the start of b. It returns the payload
// length and the header's size. A size of 0 with a nil error means b holds
// only part of a header. A negative length other than -1 is a
// [*ProtocolError].
func ParseHeader(b []byte) (n uint64, size int, err error) {
	if len(b) < HeaderSize {
		return 0, 0, nil
	}
	short := int32(binary.BigEndian.Uint32(b))
	switch {
	case short >= 0:
		return uint64(short), HeaderSize, nil
	case short != -1:
		return 0, 0, &ProtocolError{Length: int64(short)}
	case len(b) < LongHeaderSize:
		return 0, 0, nil
	}
	return binary.BigEndian.Uint64(b[HeaderSize:]), LongHeaderSize, nil
}

// A ProtocolError reports a frame header that no correct peer sends: a
// negative length other than -1.
type ProtocolError struct {
	Length int64 // the length the header announced
}

func (e *ProtocolError) Error() string {
	return "procpipe: protocol error: frame header announces length " + strconv.FormatInt(e.Length, 10)
}

// A TooLargeError reports a message larger than a size limit. On receive, the
// message has been read and discarded, so the stream remains usable; on send,
// nothing was written.
type TooLargeError struct {
	Size  uint64 // the message's size in bytes
	Limit int64  // the limit it exceeds
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("procpipe: message of %d bytes exceeds the limit of %d bytes", e.Size, e.Limit)
}

// A BufferTooShortError is returned when a message does not fit the buffer
// the caller supplied, like Python's multiprocessing.BufferTooShort. The
// message has been consumed; Msg holds all of it.
type BufferTooShortError struct {
	Msg    []byte // the whole message
	BufLen int    // the length of the caller's buffer
}

func (e *BufferTooShortError) Error() string {
	return fmt.Sprintf("procpipe: message of %d bytes does not fit a buffer of %d bytes", len(e.Msg), e.BufLen)
}
