package procpipe

import (
	"errors"

	"github.com/procpipe/procpipe/frame"
)

type (
	// A TooLargeError reports a message larger than a Conn's
	// [Config.MaxMessageSize] or a call's limit. A received one has been read
	// and discarded, so the Conn stays usable; a sent one was not written.
	TooLargeError = frame.TooLargeError

	// A ProtocolError reports a frame header no correct peer sends. The
	// receiving side of the Conn is unusable afterwards.
	ProtocolError = frame.ProtocolError

	// A BufferTooShortError is returned by [Conn.RecvBytesInto] when the
	// message is larger than the buffer, like Python's
	// multiprocessing.BufferTooShort; its Msg field holds the whole message.
	BufferTooShortError = frame.BufferTooShortError
)

var (
	// ErrReceiveOnly is returned when sending on the receiving end of a
	// one-way pipe.
	ErrReceiveOnly = errors.New("procpipe: send on the receive-only end of a one-way pipe")

	// ErrSendOnly is returned when receiving on the sending end of a one-way
	// pipe.
	ErrSendOnly = errors.New("procpipe: receive on the send-only end of a one-way pipe")

	// ErrNoParent is returned by [Parent] in a process that was not handed a
	// connection, or whose connection was already taken.
	ErrNoParent = errors.New("procpipe: no parent connection: " + EnvConn + " is not set (or Parent was already called)")

	// ErrBroken is wrapped by the errors a Conn returns after an error cut a
	// message short (a deadline in the middle of a large message, say): that
	// direction no longer knows where the next message starts.
	ErrBroken = frame.ErrBroken
)

// ErrPeerGone is matched by the error of a send whose peer has closed its end
// or died (on Unix, EPIPE or ECONNRESET; on Windows, ERROR_BROKEN_PIPE,
// ERROR_NO_DATA or ERROR_PIPE_NOT_CONNECTED).
var ErrPeerGone = errors.New("peer closed its end")
