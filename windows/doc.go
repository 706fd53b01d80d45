// Package windows is procpipe's transport on Windows: connected pairs of
// named-pipe handles, opened for overlapped I/O and read and written through
// the Go runtime's I/O completion port, so that deadlines and Close work on
// them; and the primitives for passing a handle to the process at the other
// end of a pipe.
//
// A pair is one instance of a named pipe that only the current user may
// open, created so that no process that squats on the name first can be
// connected to by mistake, and connected before [Pair] returns: nobody else
// can open it afterwards.
//
// Most programs use the root procpipe package, which frames messages on top
// of a [Conn]. This package is for programs that need the raw byte stream.
// On systems other than Windows it is empty.
package windows
