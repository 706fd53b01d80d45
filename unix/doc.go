// Package unix is procpipe's transport on Unix systems: connected pairs of
// descriptors made with socketpair(2) and pipe(2), born close-on-exec and
// non-blocking, whose calls wait on the Go runtime's network poller so that
// deadlines and Close work on them (on Linux, after a first wait in ppoll(2)
// that keeps streams off the poller's epoll set; see [Conn]).
//
// Descriptors passed over a socket (SCM_RIGHTS) are received with the data
// and kept with the stream offset of the byte they came with (see
// [Conn.FilesAt], [Conn.TakeFiles] and [Conn.WriteFiles]).
//
// Most programs use the root procpipe package, which frames messages on top
// of a [Conn]. This package is for programs that need the raw byte stream.
// On systems other than Unix it is empty.
package unix
