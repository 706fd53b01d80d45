package unix

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// iovecs is the scratch space of a Conn's vectored writes on Linux, which
// make the system call directly: x/sys's SendmsgBuffers and Writev allocate
// their iovec array on every call.
type iovecs struct {
	iov [8]unix.Iovec
	msg unix.Msghdr
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
	r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&v.msg)), sendFlags)
	v.msg.Iov = nil
	v.clear(n)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func (v *iovecs) writev(fd int, bufs [][]byte) (int, error) {
	n := v.fill(bufs)
	r, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&v.iov[0])), uintptr(n))
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
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&v.msg)), unix.MSG_CMSG_CLOEXEC)
	oobn, flags = int(v.msg.Controllen), int(v.msg.Flags)
	v.msg = unix.Msghdr{}
	v.clear(iovs)
	if e != 0 {
		return 0, 0, 0, e
	}
	return int(r), oobn, flags, nil
}

// read reads into p, and then q (which may be empty): readv(2).
func (v *iovecs) read(fd int, p, q []byte) (int, error) {
	iovs := v.point(p, q)
	r, _, e := unix.Syscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&v.iov[0])), uintptr(iovs))
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
