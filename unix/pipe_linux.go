package unix

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelBuffer is the buffer size asked for on Linux, for pipes
// (F_SETPIPE_SZ; 1 MiB is fs.pipe-max-size's default, the most an
// unprivileged process may ask for) and for both directions of a
// socketpair (SO_SNDBUF/SO_RCVBUF; the kernel doubles the value and caps it
// at net.core.wmem_max/rmem_max). The defaults, 64 KiB for a pipe and about
// 208 KiB for a socket, make the writer of a large message park and wake
// many times per message; with 1 MiB, one-way 1 MiB messages moved about
// 1.5x faster in ci/bench.sh. The memory is taken only while data waits in
// the buffer.
const kernelBuffer = 1 << 20

// tunePipe enlarges the pipe whose write end is fd. It is best-effort: past
// fs.pipe-user-pages-soft the kernel refuses, and the pipe keeps its size.
func tunePipe(fd int) {
	unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, kernelBuffer)
}

// tuneSocket enlarges the socket's buffers, best-effort like tunePipe.
func tuneSocket(fd int) {
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, kernelBuffer)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, kernelBuffer)
}

// headerAliases reports whether a pipe write of a short header h followed by
// a large payload p should be two writes, h's and then p's, because in one
// the kernel's copy of p would run slowly. A write to an empty pipe fills
// fresh pages from their start, so p lands len(h) bytes into the page it
// begins in; a payload that begins fewer than len(h) bytes into a page of
// its own, as Go's large allocations do (at 0), is then copied to an
// address a few bytes past its own modulo 4 KiB, which the CPU takes for a
// store it must wait on (4K aliasing) at every load. Written alone, a
// payload whose length is a multiple of 4 KiB lands at the start of fresh
// pages, level with or behind its own place (the kernel merges only a
// write's first length%4096 bytes into the last page, and only into a pipe
// that is not empty; so into a pipe that holds data, one write would have
// put the header in the last page and the payload at the start of the next,
// and the split costs a system call for nothing). A payload that begins
// just before a page's end lands ahead either way and is not split.
//
// In C, a 64 KiB payload written with its 4-byte header to a pipe on one
// CPU moved at 1.4-1.6 GB/s when the copy went 4 to 8 bytes ahead, 2.3 at
// 16, and 3.5-3.7 from 32 bytes on (10,000 messages each). In ci/bench.sh's
// one-way bulk cells, with Go's page-aligned payloads, the split took 64 KiB
// messages from 0.59x C's rate to 0.97x on one CPU, and 1 MiB ones from
// 1.12x to 1.82x (5-6 alternating rounds): the extra system call costs far
// less than the slow copy, for payloads from splitHeaderAbove.
//
// Split or not, a message larger than the pipe's buffer takes several
// writes, so processes that share one write end must take turns with a lock
// of their own, as Python's multiprocessing.Queue does.
func headerAliases(h, p []byte) bool {
	if len(p) < splitHeaderAbove {
		return false
	}
	ahead := len(h) - int(uintptr(unsafe.Pointer(unsafe.SliceData(p)))&4095)
	return ahead > 0 && ahead < 32
}

// splitHeaderAbove is the smallest payload headerAliases splits from its
// header.
const splitHeaderAbove = 16 << 10
