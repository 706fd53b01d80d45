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
	if s.tries == 0 {
		s.start = time.Now()
	} else if time.Since(s.start) > spinFor {
		return false
	}
	s.tries++
	yield()
	return true
}

// A readOp and a writeOp hold the state of one Read and one Writev across
// the callback the runtime poller calls. They live in the Conn and their
// callbacks are method values made once, so that I/O allocates nothing: a
// closure handed to syscall.RawConn escapes, and with it every variable it
// captures. A Conn's Reads are serialised by its caller, as are its Writes,
// so one of each suffices.
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

// do reads once into o.p and o.q (with recvmsg on a socket); it tells the
// poller to park the goroutine only after retrying for a while (see spinFor)
// found nothing to read.
func (o *readOp) do(fd uintptr) bool {
	if yieldFirst && o.drained {
		// Asking first would only return EAGAIN: a system call saved.
		o.drained = false
		yield()
	}
	for {
		if o.oob != nil {
			// recvmsg, so that passed descriptors are never dropped.
			o.n, o.oobn, o.flags, o.err = o.vec.recvmsg(int(fd), o.p, o.q, o.oob)
		} else {
			o.n, o.err = o.vec.read(int(fd), o.p, o.q)
		}
		switch o.err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if o.spin.again() {
				continue
			}
			return false
		case nil:
			o.drained = o.n < len(o.p)+len(o.q)
		}
		return true
	}
}

type writeOp struct {
	bufs   [][]byte
	total  int64
	err    error
	socket bool // sendmsg with sendFlags rather than writev
	fn     func(uintptr) bool
	vec    iovecs
}

func (o *writeOp) init(socket bool) {
	o.socket = socket
	o.fn = o.do
}

// do writes as much of o.bufs as the kernel takes; it tells the poller to
// park the goroutine when the kernel has no room.
func (o *writeOp) do(fd uintptr) bool {
	for {
		for len(o.bufs) > 0 && len(o.bufs[0]) == 0 {
			o.bufs = o.bufs[1:]
		}
		if len(o.bufs) == 0 {
			return true
		}
		var n int
		if o.socket {
			n, o.err = o.vec.sendmsg(int(fd), o.bufs)
		} else {
			n, o.err = o.vec.writev(int(fd), o.bufs)
		}
		if n > 0 {
			o.total += int64(n)
			o.bufs = consume(o.bufs, n)
		}
		switch o.err {
		case nil, unix.EINTR:
		case unix.EAGAIN:
			// No spin here: a full buffer holds more than the peer
			// reads in spinFor, and spinning for room made pinned
			// bulk transfers 1.5x slower in ci/bench.sh.
			return false
		default:
			return true
		}
	}
}
