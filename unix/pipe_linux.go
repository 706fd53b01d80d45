package unix

import (
	"os"
	"strconv"
	"sync/atomic"
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

// A pipe's open file, and with it O_NONBLOCK, is shared by every process
// holding a descriptor of it, which is why a pipe's calls carry RWF_NOWAIT
// (see iov_linux.go). RWF_NOWAIT costs: pwritev2 and preadv2 take an iovec
// array to copy in and check, where write and read take a buffer. So a Conn
// made for one end of a pipe (not a FIFO) opens that end again through
// /proc/self/fd, which makes a new open file of the same pipe, and keeps
// that one only: no other descriptor refers to it, so its O_NONBLOCK stays
// set, and the Conn reads and writes it with plain read, readv, write and
// writev, raw, which never wait for data or room (see iov_linux.go for what
// they may wait for). File hands out yet another open file of
// the end (see ownFile and Conn.file). For 16-byte messages on pipes between
// two processes on 2 free CPUs that took procpipe from 0.63x C's rate to
// 0.78x (8 alternating rounds); on one CPU from 1.11x to 1.32x; one-CPU round
// trips from 1.11x C's to 1.01x (12 rounds).

// ownFile opens again the pipe end fd refers to, as an open file of its own
// that is non-blocking and close-on-exec, and closes fd; it returns the new
// descriptor and true. Where that cannot be done (not an anonymous pipe,
// /proc not mounted, a failure) it returns fd and false, and the Conn makes
// its calls with RWF_NOWAIT instead.
//
// A pipe end in packet mode (O_DIRECT, a write end's) or that signals
// (O_ASYNC) keeps its open file too: opening it again would drop those,
// which belong to the open file.
func ownFile(fd int, kind Kind) (int, bool) {
	var fs unix.Statfs_t
	if !pipeNoWait.Load() || !pipeOwn.Load() || unix.Fstatfs(fd, &fs) != nil || fs.Type != unix.PIPEFS_MAGIC {
		return fd, false
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || fl&(unix.O_DIRECT|unix.O_ASYNC) != 0 {
		return fd, false
	}
	own, err := openEnd(fd, kind)
	if err != nil {
		return fd, false
	}
	if err := unix.SetNonblock(own, true); err != nil {
		unix.Close(own)
		return fd, false
	}
	unix.Close(fd)
	return own, true
}

// pipeOwn lets tests make pipe Conns that do not own their open file (see
// ownFile), as where /proc is not mounted.
var pipeOwn atomic.Bool

func init() { pipeOwn.Store(true) }

// reopen is openEnd, which tests replace to make File fail to open a file
// to hand out (see Conn.file).
var reopen = openEnd

// openEnd opens the pipe end fd refers to again, through /proc/self/fd: a
// new open file of the same pipe, blocking and close-on-exec. (An anonymous
// pipe's end opens at once, partner or not, unlike a FIFO's.) It checks
// that the new file is the same pipe.
func openEnd(fd int, kind Kind) (int, error) {
	mode := unix.O_RDONLY
	if kind == PipeWrite {
		mode = unix.O_WRONLY
	}
	nfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), mode|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("open", err)
	}
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Fstat(nfd, &b) != nil || a.Dev != b.Dev || a.Ino != b.Ino {
		unix.Close(nfd)
		return -1, os.NewSyscallError("open", unix.EBADF)
	}
	return nfd, nil
}

// file is Conn.File. A Conn that owns its open file (see ownFile) hands out
// another open file of the same end, made at the first call and closed by
// Close, so that whatever the receiver does to it (a child's blocking mode,
// say) leaves the Conn's own as it is. It is made blocking, as programs
// expect of an inherited descriptor, and so stays off the runtime poller.
// If it cannot be made (no descriptor left, say), the Conn hands out its own
// open file and stops trusting it: it makes no first attempts from then on
// (see iovecs.lent).
func (c *Conn) file() *os.File {
	if !c.rop.vec.own.Load() && !c.wop.vec.own.Load() {
		return c.f
	}
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if c.shared != nil {
		return c.shared
	}
	c.live.RLock()
	closed := c.closed.Load()
	var nfd int
	var err error
	if !closed {
		nfd, err = reopen(c.fd, c.kind)
	}
	c.live.RUnlock()
	if closed || err != nil {
		// The open file handed out is the Conn's own, reopened: it
		// refuses RWF_NOWAIT, so from now on calls make no first attempt
		// and trust O_NONBLOCK (see iovecs.direct; first attempts check
		// lent again under live, as the waiting path's attempts on Linux
		// are made). A call parked on the runtime poller (see park), or
		// one through the poller off Linux, that had loaded own before
		// this makes its raw call as before, which an O_NONBLOCK cleared
		// in between could block: a window between this and the
		// receiver's fcntl, left open (closing it would put those calls
		// under live).
		c.live.Lock()
		for _, v := range []*iovecs{&c.rop.vec, &c.wop.vec} {
			v.lent.Store(true)
			v.own.Store(false)
		}
		c.live.Unlock()
		return c.f
	}
	c.shared = os.NewFile(uintptr(nfd), c.f.Name())
	return c.shared
}
