//go:build unix

package unix

import (
	"time"

	"golang.org/x/sys/unix"
)

// A spinner bounds the retries of one call that would block (see spinFor).
type spinner struct {
	start time.Time
	tries int
}

// again yields the CPU and reports whether to try the system call again;
// false means park.
func (s *spinner) again() bool {
	if spinFor <= 0 {
		return false
	}
	if s.tries == 0 { // a new call (its Conn reset tries)
		s.start = time.Now()
	} else if time.Since(s.start) > spinFor {
		return false
	}
	s.tries++
	yield()
	return true
}

// A readOp and a writeOp hold the state of a Conn's Reads and Writes: what
// persists between calls, and the arguments and results of one call across
// the callback the runtime poller calls. Their callbacks are method values
// made once, so that I/O allocates nothing: a closure handed to
// syscall.RawConn escapes, and with it every variable it captures. A Conn's
// Reads are serialised by its caller, as are its Writes, so one of each
// suffices. A call's first attempt (see Conn.firstRead) passes its
// arguments and results directly instead.
type readOp struct {
	p, q  []byte // q, if not empty, takes what does not fit p (see ReadScatter)
	n     int
	err   error
	oob   []byte // a socket's control buffer (see fileQueue); nil on a pipe
	oobn  int
	flags int
	spin  spinner
	// drained says the last read took all the kernel held (it returned
	// less than it asked for): on one CPU, nothing can arrive before this
	// process gives up the CPU (see yieldFirst).
	drained bool
	fn      func(uintptr) bool // do, bound once
	vec     iovecs
}

func (o *readOp) init(files *fileQueue) {
	if files != nil {
		o.oob = files.oob
	}
	o.fn = o.do
}

// do is the poller's callback: it reads into o.p and o.q, and tells the
// poller to park the goroutine when read found nothing.
func (o *readOp) do(fd uintptr) bool {
	o.n, o.err = o.read(int(fd), o.p, o.q)
	return o.err != unix.EAGAIN
}

// read reads once into p and q (with recvmsg on a socket, setting o.oobn
// and o.flags); when there is nothing to read it retries for a while (see
// spinFor) before it returns EAGAIN.
func (o *readOp) read(fd int, p, q []byte) (n int, err error) {
	if yieldFirst && o.drained {
		// Asking first would only return EAGAIN: a system call saved.
		o.drained = false
		yield()
	}
	for {
		if o.oob != nil {
			// recvmsg, so that passed descriptors are never dropped.
			n, o.oobn, o.flags, err = o.vec.recvmsg(fd, p, q, o.oob)
		} else {
			n, err = o.vec.read(fd, p, q)
		}
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if o.spin.again() {
				continue
			}
		case nil:
			o.drained = n < len(p)+len(q)
		}
		return n, err
	}
}

type writeOp struct {
	bufs   [][]byte
	total  int64
	err    error
	socket bool // sendmsg with sendFlags rather than writev
	fn     func(uintptr) bool
	vec    iovecs
	// rest is what is left of a call's buffers after a short write, in a
	// slice of the op's own: the caller's slice is never written to.
	rest [][]byte
}

func (o *writeOp) init(socket bool) {
	o.socket = socket
	o.fn = o.do
}

// do is the poller's callback: it writes o.bufs, and tells the poller to
// park the goroutine when the kernel has no room.
func (o *writeOp) do(fd uintptr) bool {
	var n int64
	n, o.bufs, o.err = o.write(int(fd), o.bufs)
	o.total += n
	return o.err != unix.EAGAIN
}

// write writes as much of bufs as the kernel takes, and returns how many
// bytes that was, what is left of bufs, and the error that stopped it (nil
// once all of bufs is written; EAGAIN when the kernel has no room).
func (o *writeOp) write(fd int, bufs [][]byte) (total int64, rest [][]byte, err error) {
	for {
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
		if len(bufs) == 0 {
			return total, nil, nil
		}
		var n int
		if o.socket {
			n, err = o.vec.sendmsg(fd, bufs)
		} else {
			n, err = o.vec.writev(fd, bufs)
		}
		if n > 0 {
			total += int64(n)
			if n == len(bufs[0]) && len(bufs) == 1 {
				return total, nil, nil // the common case, without consume's loop
			}
			bufs = o.consume(bufs, n)
		}
		switch err {
		case nil, unix.EINTR:
		default:
			// EAGAIN: no spin here, a full buffer holds more than the
			// peer reads in spinFor, and spinning for room made pinned
			// bulk transfers 1.5x slower in ci/bench.sh.
			return total, bufs, err
		}
	}
}

// consume drops the first n bytes of bufs. A buffer written in part is cut
// in o.rest, a copy of what is left of bufs (made at most once per call), so
// that the caller's slice keeps its buffers whole.
func (o *writeOp) consume(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if n == 0 || len(bufs) == 0 {
		return bufs
	}
	if len(o.rest) == 0 || &bufs[len(bufs)-1] != &o.rest[len(o.rest)-1] {
		o.rest = append(o.rest[:0], bufs...)
		bufs = o.rest
	}
	bufs[0] = bufs[0][n:]
	return bufs
}

// forget drops the buffers of the call that ended, so that the op does not
// keep them from the garbage collector.
func (o *writeOp) forget() {
	if len(o.rest) > 0 {
		clear(o.rest)
		o.rest = o.rest[:0]
	}
}
