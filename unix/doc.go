// Package unix is procpipe's transport on Unix systems: connected pairs of
// descriptors made with socketpair(2) and pipe(2), born close-on-exec and
// non-blocking, read and written through the Go runtime's network poller so
// that deadlines and Close work on them.
//
// Most programs use the root procpipe package, which frames messages on top
// of a [Conn]. This package is for programs that need the raw byte stream.
// On systems other than Unix it is empty.
package unix
