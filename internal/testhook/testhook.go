// Package testhook holds settings of procpipe's packages that only its own
// tests change. Nothing outside the module can import it.
package testhook

import "sync/atomic"

// ControlBufferSize, when positive, replaces the size in bytes of the
// control-message buffer of the Unix socket Conns made from then on, so that
// tests can force a truncated control message (MSG_CTRUNC).
var ControlBufferSize atomic.Int64

// Handing counts the handshakes that have ended and wait in a Listener for
// an Accept to take their result, so that tests can close a Listener while
// one waits.
var Handing atomic.Int32

// HeaderSplits counts the pipe writes of a header made apart from its
// payload (see unix.headerAliases), so that tests can see them made.
var HeaderSplits atomic.Int64

// ParkedFiles counts the descriptors Linux Conns hold to park their calls
// on the runtime poller with (see unix.Conn), which come and go with how
// long calls wait, so that tests counting descriptors can leave them out.
var ParkedFiles atomic.Int32
