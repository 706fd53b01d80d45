// Package frame is the one framing layer every procpipe transport shares: it
// turns a byte stream into whole messages and back.
//
// The wire format is CPython's multiprocessing.connection format on Unix: a
// 4-byte big-endian signed length n followed by n payload bytes, for
// 0 <= n <= 2^31-1. A longer payload is announced by the int32 -1 followed by
// an 8-byte big-endian unsigned length. Any other negative length is a
// [ProtocolError]. Callers that carry other items between frames (such as
// procpipe's Windows handle items) start them with such a length, examine
// them with [Reader.Peek] and [Reader.Discard], and write them with
// [Writer.WriteRaw].
//
// The package makes no system calls. A [Reader] never allocates what a header
// merely claims: a payload buffer grows only as bytes arrive, so a peer that
// announces 2^62 bytes and then stops costs next to nothing. A [Writer] hands
// a header and its payload to the transport in one vectored write when the
// transport offers one ([VectorWriter]). A transport that can also read or
// write without waiting ([TryReader], [TryWriter]) gives a small frame a
// shorter path ([Reader.TryReadFrameInto], [Writer.TryWriteFrame]), which
// falls back to the general one whenever it cannot finish at once.
//
// Most programs use the root procpipe package instead; this package is for
// transports and for tools that read or write the format directly.
package frame
