// Package unix is procpipe's transport on Unix systems: connected pairs of
// descriptors made with socketpair(2) and pipe(2), born close-on-exec and
// non-blocking, read and written through the Go runtime's network poller so
// that deadlines and Close work on them.
//
// Descriptors passed over a socket (SCM_RIGHTS) are received with the data
// and kept with the stream offset of the byte they came with (see
// [Conn.FilesAt], [Conn.TakeFiles] and [Conn.WriteFiles]).
//
// Most programs use the root procpipe package, which frames messages on top
// of a [Conn]. This package is for programs that need the raw byte stream.
// On systems other than Unix it is empty.
package unix
