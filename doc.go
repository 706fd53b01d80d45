// Package procpipe connects a Go process and its children with message pipes,
// as Python's multiprocessing.Pipe connects Python processes.
//
// [Pipe] returns the two ends of a connection. Each end is a [Conn] that
// sends and receives whole messages: Go values through a [Codec] with
// [Conn.Send] and [Conn.Recv], or raw bytes with [Conn.SendBytes],
// [Conn.RecvBytes] and [Conn.RecvBytesInto]. A [Process] starts a child that
// owns the other end: either a function of this same program registered with
// [Register] (the child runs it from [Dispatch], called early in main), or
// any program through an exec.Cmd. The child takes its end with [Parent].
//
// The wire format is CPython's multiprocessing.connection format (see package
// [github.com/procpipe/procpipe/frame]), so a Python child can talk to a Go
// parent with multiprocessing.connection.Connection on the descriptor named
// in the environment variable PROCPIPE_CONN (on Unix; Python's Windows
// PipeConnection uses message-mode pipes without headers, a different
// format).
//
// # Passing files
//
// A duplex Conn also carries open files: [Conn.SendFiles] (or
// [Conn.SendConn] for a listener or connection) passes duplicates of them,
// and the peer takes them with [Conn.RecvFiles]; [Conn.SendWithFiles] and
// [Conn.RecvWithFiles] keep a message and its files together. On Unix the
// wire form is CPython's multiprocessing.reduction sendfds/recvfds, so a
// Python peer uses send_handle and recv_handle; with CPython 3.13 or older
// on any system but macOS, set [Config.NoFileAck]. A child can also inherit
// named files at start ([Process.AddFile], [InheritedFile], environment
// variable PROCPIPE_FILES; Unix).
//
// On Windows the same methods pass handles between Go processes, in a wire
// form of procpipe's own, between frames:
//
//	int32  -2              bytes FF FF FF FE: starts no valid frame
//	uint32 pid             the sender's process ID
//	uint16 n               the number of handles, 1 to MaxFiles
//	uint64 handle × n      the handles' values in the sender
//
// all big-endian. The receiver checks n before it reads the values, opens
// the sender with PROCESS_DUP_HANDLE, duplicates each handle into itself
// with DuplicateHandle (same access, not inheritable) and answers with the
// byte 'A', which the sender always waits for: the values are those of
// private duplicates the sender keeps open until then. If the sender's Conn
// is closed before the acknowledgement, it closes them only if it has
// already met the end of the stream (the peer's end is closed, and a closed
// Conn duplicates nothing more); otherwise they stay open until the sending
// process exits, since the peer may still duplicate their values and
// Windows reuses handle values. The receiver pulls
// the handles, as CPython's DupHandle.detach does, because the sender cannot
// push them: the pipe names the process that opened its other end
// (GetNamedPipeClientProcessId), which is the parent even after the parent
// handed that end to a child. CPython's own Windows send_handle pickles a
// DupHandle object, which procpipe does not read.
//
// # Many connections, and unrelated processes
//
// [Wait] returns the Conns of a list that have a message ready, from one
// system call, like Python's multiprocessing.connection.wait. [Listen] and
// [Dial] connect processes that are not parent and child over a Unix socket
// path, a Linux abstract name or a Windows pipe name, with CPython's HMAC
// handshake when [Config.AuthKey] is set, like Python's Listener and Client.
//
// # Errors
//
// Operations on a closed Conn fail with an error matching [net.ErrClosed]; an
// expired deadline with one matching [os.ErrDeadlineExceeded]. Receiving
// after the peer closed its end or died returns [io.EOF] between messages and
// [io.ErrUnexpectedEOF] inside one. Sending to a peer that is gone fails with
// an error matching [ErrPeerGone]. Oversized messages give a
// [*TooLargeError], a malformed header a [*ProtocolError], a message larger
// than the buffer of RecvBytesInto a [*BufferTooShortError].
//
// # Platforms
//
// On Unix a duplex pipe is a socketpair(2) and a one-way pipe a pipe(2). On
// Windows both are one instance of a named pipe (see package
// [github.com/procpipe/procpipe/windows]), with the same frame format; a
// child's end is an inherited handle, and PROCPIPE_CONN holds its value in
// decimal. Windows binaries are tested under Wine (ci/wine.sh) and on the
// Windows runners of the public repository's workflow.
package procpipe
