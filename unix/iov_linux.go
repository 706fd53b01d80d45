package unix

import (
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls here never wait for the peer, whatever another process
// does (sockets get MSG_DONTWAIT, pipes an open file of their own or
// RWF_NOWAIT; see below), so they are made with
// RawSyscall, which does not tell the runtime scheduler that the thread is
// in a system call. With Syscall, a call that copies 64 KiB or more, or whose
// thread the kernel preempts to run the peer, looks blocked to the runtime's
// monitor, which hands the processor to another thread and keeps waking every
// 20 µs: in ci/bench.sh that cost a futex and several nanosleep calls per
// message (perf trace) and about a third of bulk throughput. A descriptor
// must never block here, because a raw call that blocked would stall the
// whole process at its next garbage collection; that is why the calls carry
// their own non-blocking flag, or are made on a pipe's open file that no
// other process shares, rather than trusting an O_NONBLOCK that another
// process sharing the open file could clear.
//
// They call the standard library's syscall.RawSyscall and RawSyscall6, which
// x/sys's only jump to (its Errno is the same type). The detour is not free:
// where the kernel isolates its page tables without PCID (as on the VM that
// ci/bench.sh ran on), every system call empties the TLB and each page of
// code touched after it costs a refill. Skipping the two pages of x/sys's
// trampolines made round trips with both processes on one CPU about 2%
// faster (4 runs of 6 alternating rounds against C).
//
// A pipe Conn that owns its open file (see ownFile in pipe_linux.go), as
// one does wherever /proc is mounted, needs no flag: no other process can
// clear that file's O_NONBLOCK, so its plain read, readv, write and writev
// never wait for data or room either, and cost less than preadv2 and
// pwritev2. Unlike RWF_NOWAIT, which only tries the pipe's lock and takes
// memory without reclaim, they may wait for the lock while the peer's own
// call holds it (as long as that call's copy, at most the pipe's 1 MiB),
// and for memory under pressure; a garbage collection waits with them.
// What follows is for the pipes that do not own their open file.
//
// Pipes made by pipe(2) take RWF_NOWAIT since Linux 6.4 (commit afed6271f5b0
// lets them, c04fe8e32f90 makes pipe_read and pipe_write honour it); older
// kernels, FIFOs and pipes reopened through /proc answer EOPNOTSUPP, and
// qemu-user ENOSYS. Such a pipe Conn then uses readv and writev made with
// Syscall, which trust O_NONBLOCK: if a process sharing the open file
// cleared it, they would block a thread, as the runtime's own reads do, but
// never stall the process; Close would then wait for them to return, as an
// os.File's Close does.

// pipeNoWait lets tests make every pipe Conn made while it is false take the
// fallback: no open file of its own (see ownFile), no RWF_NOWAIT, as where
// /proc is not mounted on a kernel before 6.4. It is read once per Conn (see
// iovecs.init) rather than on every
// call, so that a read after a yield touches no global.
var pipeNoWait atomic.Bool

func init() { pipeNoWait.Store(true) }

// noWaitUnsupported reports whether e says the kernel has no RWF_NOWAIT
// for this descriptor (or no preadv2/pwritev2 at all).
func noWaitUnsupported(e unix.Errno) bool {
	return e == unix.EOPNOTSUPP || e == unix.ENOSYS || e == unix.EINVAL
}

// iovecs holds what a Conn's reads or writes on Linux keep between calls.
// The system calls are made directly, with their iovec arrays and message
// headers on the stack (x/sys's SendmsgBuffers, Recvmsg and Writev allocate
// on every call): stores there need no write barrier, and touch no page of
// memory besides the stack.
type iovecs struct {
	plain unix.Errno // on a pipe: why the kernel refused RWF_NOWAIT, if it did, or EOPNOTSUPP if tests turned it off (see nowait, pipeNoWait)
	// own says the pipe Conn owns its open file (see ownFile), whose
	// O_NONBLOCK no other process can clear: its calls are plain read,
	// readv, write and writev, raw. lent says File had to hand that open
	// file out (see Conn.file), which clears own: the open file, reopened,
	// refuses RWF_NOWAIT, and its calls make no first attempts.
	own, lent atomic.Bool
}

// maxIovecs is how many buffers one vectored call takes; the rest are
// written by a later call, as after any short write.
const maxIovecs = 8

// fill points iov at the non-empty ones among bufs and returns how many it
// used.
func fill(iov *[maxIovecs]unix.Iovec, bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		if n == len(iov) {
			break
		}
		if len(b) == 0 {
			continue
		}
		iov[n].Base = &b[0]
		iov[n].SetLen(len(b))
		n++
	}
	return n
}

// point points iov at p (not empty) and q (if not empty) and returns how
// many it used.
func point(iov *[2]unix.Iovec, p, q []byte) int {
	iov[0].Base = &p[0]
	iov[0].SetLen(len(p))
	if len(q) == 0 {
		return 1
	}
	iov[1].Base = &q[0]
	iov[1].SetLen(len(q))
	return 2
}

// direct reports whether the calls cannot wait for the peer whatever another
// process does, so that a first attempt (see Conn.firstRead) returns at
// once: MSG_DONTWAIT on a socket; on a pipe, an open file of the Conn's own
// (see ownFile) or RWF_NOWAIT. A pipe that falls back to readv and writev
// trusts O_NONBLOCK, which a process sharing the open file could clear, so
// once the refusal is known its calls go the waiting path only (Conn.wait),
// as do those of a pipe whose own open file File had to hand out (see
// lent). (The call that meets the refusal falls back at once,
// even in a first attempt.)
func (v *iovecs) direct(socket bool) bool {
	return socket || !v.lent.Load() && (v.own.Load() || v.nowait())
}

// handedOut reports whether File had to hand out the pipe's own open file
// (see lent); first attempts check it again under the Conn's lock.
func (v *iovecs) handedOut() bool { return v.lent.Load() }

// here, as the offset of preadv2 and pwritev2 (in both halves), means the
// current position.
const here = ^uintptr(0)

// nowait reports whether to make a pipe's calls with RWF_NOWAIT, as raw
// calls; the kernel may refuse it (see refused), and then the pipe uses
// readv and writev made with Syscall.
func (v *iovecs) nowait() bool { return v.plain == 0 }

// init readies v for a new pipe Conn, which owns its open file or not (see
// ownFile, pipeNoWait).
func (v *iovecs) init(own bool) {
	v.own.Store(own)
	if !pipeNoWait.Load() {
		v.plain = unix.EOPNOTSUPP
	}
}

// refused reports whether e says the kernel refuses RWF_NOWAIT for this
// pipe, and remembers it.
func (v *iovecs) refused(e unix.Errno) bool {
	if !noWaitUnsupported(e) {
		return false
	}
	v.plain = e
	return true
}

// result is a system call's result as Go returns it.
func result(r uintptr, e unix.Errno) (int, error) {
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// The calls a message makes end this file, and then TryRead and TryWrite, a
// small message's whole path here, right before op.go, which opens with the
// general path's callers (see there).

// sendmsg sends bufs on a socket. One buffer goes with sendto(2), which
// takes the same flags with no message header or iovec array for the kernel
// to copy in and check: for 16-byte messages on a socketpair between two
// processes on 2 free CPUs, that took the sender from 0.66x C's rate
// (write(2)) to 0.86x (10 alternating rounds), and on one CPU from 0.98x
// to 1.07x, with round trips 4% shorter.
func (v *iovecs) sendmsg(fd int, bufs [][]byte) (int, error) {
	if len(bufs) == 1 && len(bufs[0]) > 0 {
		b := bufs[0]
		r, _, e := syscall.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), sendFlags|unix.MSG_DONTWAIT, 0, 0)
		return result(r, e)
	}
	var iov [maxIovecs]unix.Iovec
	msg := unix.Msghdr{Iov: &iov[0]}
	msg.SetIovlen(fill(&iov, bufs))
	r, _, e := syscall.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), sendFlags|unix.MSG_DONTWAIT)
	return result(r, e)
}

// writev writes bufs to a pipe, like read (whose shape it shares: the call
// is made inline in each rather than through a shared helper, which cost
// ~45 more instructions per round trip and side).
func (v *iovecs) writev(fd int, bufs [][]byte) (int, error) {
	if v.own.Load() {
		if len(bufs) == 1 {
			b := bufs[0]
			r, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
			return result(r, e)
		}
		var iov [maxIovecs]unix.Iovec
		n := fill(&iov, bufs)
		r, _, e := syscall.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		return result(r, e)
	}
	var iov [maxIovecs]unix.Iovec
	n := fill(&iov, bufs)
	if v.nowait() {
		r, _, e := syscall.RawSyscall6(unix.SYS_PWRITEV2, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n), here, here, unix.RWF_NOWAIT)
		if !v.refused(e) {
			return result(r, e)
		}
	}
	r, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
	return result(r, e)
}

// recvmsg receives into p, and then q (which may be empty), with control
// messages into oob, descriptors close-on-exec.
func (v *iovecs) recvmsg(fd int, p, q, oob []byte) (n, oobn, flags int, err error) {
	var iov [2]unix.Iovec
	msg := unix.Msghdr{Iov: &iov[0], Control: &oob[0]}
	msg.SetIovlen(point(&iov, p, q))
	msg.SetControllen(len(oob))
	r, _, e := syscall.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
	if e != 0 {
		return 0, 0, 0, e
	}
	return int(r), int(msg.Controllen), int(msg.Flags), nil
}

// read reads into p, and then q (which may be empty), from a pipe: read(2)
// or readv(2) on an open file of the Conn's own (see ownFile), else
// preadv2(2) with RWF_NOWAIT, or readv(2) made with Syscall once the kernel
// has refused that for this pipe (see nowait).
func (v *iovecs) read(fd int, p, q []byte) (int, error) {
	if v.own.Load() {
		if len(q) == 0 {
			r, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			return result(r, e)
		}
		var iov [2]unix.Iovec
		n := point(&iov, p, q)
		r, _, e := syscall.RawSyscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		return result(r, e)
	}
	var iov [2]unix.Iovec
	n := point(&iov, p, q)
	if v.nowait() {
		r, _, e := syscall.RawSyscall6(unix.SYS_PREADV2, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n), here, here, unix.RWF_NOWAIT)
		if !v.refused(e) {
			return result(r, e)
		}
	}
	r, _, e := unix.Syscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
	return result(r, e)
}

// TryRead reads into p what has already arrived, without waiting, and
// reports how many bytes that was and true; or it reports false having
// read nothing: when nothing has arrived, when the call failed (Read then
// waits, and reports the error), or when the attempt cannot be made before
// Read's waiting path: on a socket (which may carry descriptors), with a
// read deadline set, on a closing Conn, on a pipe that neither owns its open
// file nor gets RWF_NOWAIT (see direct), and off Linux. False is thus not
// "would block": a caller
// then calls Read to wait, or to learn what went wrong (end of stream
// included). Like Read, it first gives up the CPU if the last read took all
// the kernel held (see the yieldFirst constant); and when it finds nothing,
// the next Read does so. It counts as a Read: the caller serialises it with
// Reads.
//
// It is a small message's receipt (see frame.Reader.TryReadFrameInto):
// with TryWrite, round trips with both processes on one CPU ran 2-3.5%
// faster than through Read and Writev (two blocks of 16 rounds alternating
// with C: mean 1.262-1.272x -> 1.234-1.235x C's, p50 1.226-1.242x ->
// 1.199-1.207x), which make the same system call after the frame reader's
// and writer's general paths, an interface call, and their own. The call
// is made inline here, and the functions laid out next to the others a
// message runs through (see op.go): built from Read's own helpers, the
// same path gained about half as much.
func (c *Conn) TryRead(p []byte) (int, bool) {
	o := &c.rop
	if len(p) == 0 || c.files != nil || c.rdl.Load() || !o.vec.direct(false) {
		return 0, false
	}
	c.live.RLock()
	if c.closed.Load() {
		c.live.RUnlock()
		return 0, false
	}
	o.yieldIfDrained()
	var r uintptr
	var e syscall.Errno
	if o.vec.own.Load() {
		r, _, e = syscall.RawSyscall(unix.SYS_READ, uintptr(c.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	} else {
		var iov unix.Iovec
		iov.Base = &p[0]
		iov.SetLen(len(p))
		r, _, e = syscall.RawSyscall6(unix.SYS_PREADV2, uintptr(c.fd), uintptr(unsafe.Pointer(&iov)), 1, here, here, unix.RWF_NOWAIT)
	}
	c.live.RUnlock()
	if e != 0 || r == 0 {
		if o.slowFirst {
			o.judgeYield(0, len(p))
		}
		o.drained = e == unix.EAGAIN
		return 0, false
	}
	if o.slowFirst {
		o.judgeYield(int(r), len(p))
	}
	o.drained = int(r) < len(p)
	c.noWait(dirRead)
	return int(r), true
}

// TryWrite writes b, or as much of it as the kernel takes at once, without
// waiting, and reports how many bytes that was and true (all of b, on a
// pipe, for b up to 4 KiB, which the kernel writes to a pipe at once or not
// at all); or it reports false having written nothing: when the kernel has
// no room, when the call failed (Writev then waits, and reports the error),
// or when the attempt cannot be made before Writev's waiting path (with a
// write deadline set, on a closing Conn, on a pipe that neither owns its
// open file nor gets RWF_NOWAIT, and off Linux). As with TryRead, false is
// not "would block":
// Writev waits, or says what went wrong. It counts as a Write: the caller
// serialises it with Writes. It is a small message's send (see TryRead and
// frame.Writer.TryWriteFrame).
func (c *Conn) TryWrite(b []byte) (int, bool) {
	o := &c.wop
	if len(b) == 0 || c.wdl.Load() || !o.vec.direct(o.socket) {
		return 0, false
	}
	c.live.RLock()
	if c.closed.Load() {
		c.live.RUnlock()
		return 0, false
	}
	var r uintptr
	var e syscall.Errno
	if o.socket {
		// sendto, not sendmsg: see iovecs.sendmsg.
		r, _, e = syscall.RawSyscall6(unix.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), sendFlags|unix.MSG_DONTWAIT, 0, 0)
	} else if o.vec.own.Load() {
		r, _, e = syscall.RawSyscall(unix.SYS_WRITE, uintptr(c.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	} else {
		var iov unix.Iovec
		iov.Base = &b[0]
		iov.SetLen(len(b))
		r, _, e = syscall.RawSyscall6(unix.SYS_PWRITEV2, uintptr(c.fd), uintptr(unsafe.Pointer(&iov)), 1, here, here, unix.RWF_NOWAIT)
	}
	c.live.RUnlock()
	if e != 0 || r == 0 {
		return 0, false
	}
	c.noWait(dirWrite)
	return int(r), true
}
