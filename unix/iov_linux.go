package unix

import (
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls here never block, whatever the descriptor's O_NONBLOCK
// says (sockets get MSG_DONTWAIT, pipes RWF_NOWAIT), so they are made with
// RawSyscall, which does not tell the runtime scheduler that the thread is
// in a system call. With Syscall, a call that copies 64 KiB or more, or whose
// thread the kernel preempts to run the peer, looks blocked to the runtime's
// monitor, which hands the processor to another thread and keeps waking every
// 20 µs: in ci/bench.sh that cost a futex and several nanosleep calls per
// message (perf trace) and about a third of bulk throughput. A descriptor
// must never block here, because a raw call that blocked would stall the
// whole process at its next garbage collection; that is why the calls carry
// their own non-blocking flag rather than trusting O_NONBLOCK, which another
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
// Pipes made by pipe(2) take RWF_NOWAIT since Linux 6.4 (commit afed6271f5b0
// lets them, c04fe8e32f90 makes pipe_read and pipe_write honour it); older
// kernels, FIFOs and pipes reopened through /proc answer EOPNOTSUPP, and
// qemu-user ENOSYS. Such a pipe Conn then uses readv and writev made with
// Syscall, which trust O_NONBLOCK: if that were cleared they would block a
// thread, as the runtime's own reads do, but never stall the process.

// pipeNoWait lets tests make every pipe Conn take the fallback.
var pipeNoWait atomic.Bool

func init() { pipeNoWait.Store(true) }

// noWaitUnsupported reports whether e says the kernel has no RWF_NOWAIT
// for this descriptor (or no preadv2/pwritev2 at all).
func noWaitUnsupported(e unix.Errno) bool {
	return e == unix.EOPNOTSUPP || e == unix.ENOSYS || e == unix.EINVAL
}

// iovecs is the scratch space of a Conn's reads or writes on Linux, which
// make the system calls directly: x/sys's SendmsgBuffers, Recvmsg and Writev
// allocate on every call.
type iovecs struct {
	iov   [8]unix.Iovec
	msg   unix.Msghdr
	plain unix.Errno // on a pipe: why the kernel refused RWF_NOWAIT, if it did (see pipeIO)
}

// fill points the iovecs at bufs (at most len(v.iov) of them: the rest is
// written by a later call, as after any short write) and returns how many
// it used.
func (v *iovecs) fill(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		if n == len(v.iov) {
			break
		}
		if len(b) == 0 {
			continue
		}
		v.iov[n].Base = &b[0]
		v.iov[n].SetLen(len(b))
		n++
	}
	return n
}

// clear drops the pointers to the caller's memory.
func (v *iovecs) clear(n int) {
	for i := range n {
		v.iov[i] = unix.Iovec{}
	}
}

func (v *iovecs) sendmsg(fd int, bufs [][]byte) (int, error) {
	n := v.fill(bufs)
	v.msg = unix.Msghdr{Iov: &v.iov[0]}
	v.msg.SetIovlen(n)
	r, _, e := syscall.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&v.msg)), sendFlags|unix.MSG_DONTWAIT)
	v.msg.Iov = nil
	v.clear(n)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func (v *iovecs) writev(fd int, bufs [][]byte) (int, error) {
	n := v.fill(bufs)
	r, e := v.pipeIO(unix.SYS_PWRITEV2, unix.SYS_WRITEV, fd, n)
	v.clear(n)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// recvmsg receives into p, and then q (which may be empty), with control
// messages into oob, descriptors close-on-exec, through the iovecs' scratch
// space: x/sys's Recvmsg allocates on every call.
func (v *iovecs) recvmsg(fd int, p, q, oob []byte) (n, oobn, flags int, err error) {
	iovs := v.point(p, q)
	v.msg = unix.Msghdr{Iov: &v.iov[0], Control: &oob[0]}
	v.msg.SetIovlen(iovs)
	v.msg.SetControllen(len(oob))
	r, _, e := syscall.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&v.msg)), unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
	oobn, flags = int(v.msg.Controllen), int(v.msg.Flags)
	v.msg = unix.Msghdr{}
	v.clear(iovs)
	if e != 0 {
		return 0, 0, 0, e
	}
	return int(r), oobn, flags, nil
}

// read reads into p, and then q (which may be empty), from a pipe: preadv2(2)
// with RWF_NOWAIT, or readv(2) (see pipeIO).
func (v *iovecs) read(fd int, p, q []byte) (int, error) {
	iovs := v.point(p, q)
	r, e := v.pipeIO(unix.SYS_PREADV2, unix.SYS_READV, fd, iovs)
	v.clear(iovs)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// point points the first iovecs at p (not empty) and q (if not empty) and
// returns how many it used.
func (v *iovecs) point(p, q []byte) int {
	v.iov[0].Base = &p[0]
	v.iov[0].SetLen(len(p))
	if len(q) == 0 {
		return 1
	}
	v.iov[1].Base = &q[0]
	v.iov[1].SetLen(len(q))
	return 2
}

// pipeIO reads or writes the first n iovecs on a pipe: nowait (preadv2 or
// pwritev2 at the current position with RWF_NOWAIT) as a raw call, or plain
// (readv or writev) once the kernel has refused that for this pipe.
func (v *iovecs) pipeIO(nowait, plain uintptr, fd, n int) (uintptr, unix.Errno) {
	if v.plain == 0 && pipeNoWait.Load() {
		const here = ^uintptr(0) // offset -1: the current position, in both halves
		r, _, e := syscall.RawSyscall6(nowait, uintptr(fd), uintptr(unsafe.Pointer(&v.iov[0])), uintptr(n), here, here, unix.RWF_NOWAIT)
		if !noWaitUnsupported(e) {
			return r, e
		}
		v.plain = e
	}
	r, _, e := unix.Syscall(plain, uintptr(fd), uintptr(unsafe.Pointer(&v.iov[0])), uintptr(n))
	return r, e
}
