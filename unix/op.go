//go:build unix

package unix

import (
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/procpipe/procpipe/internal/testhook"
	"golang.org/x/sys/unix"
)

// A message's general path through a Conn comes first in this file, and on
// Linux right after the system calls, TryRead and TryWrite that end
// iov_linux.go: the linker lays out a
// package's functions in file and source order, and where every system call
// empties the TLB (see iov_linux.go) each page of code touched between two
// calls costs a refill.

// Read reads up to len(p) bytes. It returns io.EOF when the peer has closed
// its end or is gone (a reset counts as gone). On a socket it also keeps the
// descriptors that arrive with the data, until they are taken (see
// [Conn.FilesAt]) or the Conn is closed.
func (c *Conn) Read(p []byte) (int, error) { return c.ReadScatter(p, nil) }

// ReadScatter is [Conn.Read] into p and then q: on Linux one readv(2) (or
// preadv2(2)) or recvmsg(2) fills p and puts what follows in q, so a caller reading a large
// payload into its destination also gets the start of the next message
// without a second system call or a copy. Elsewhere it reads into p only.
// It returns the total number of bytes read.
func (c *Conn) ReadScatter(p, q []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	o := &c.rop
	o.spin.tries = 0
	n, done, serr := c.firstRead(p, q)
	var err error
	if !done {
		o.p, o.q = p, q
		err = c.waitRead(o.fn)
		n, serr = o.n, o.err
		o.p, o.q, o.err = nil, nil, nil
	}
	if c.files != nil {
		c.files.received(n, o.oob[:o.oobn], o.flags, err, serr)
	}
	return readResult(n, c.pollerError("read", err), serr)
}

// firstRead makes a Read's first attempt straight on the descriptor and
// reports whether that completed the call; firstWrite does the same for a
// Write. The attempt does not wait for the peer (a read retries for at most
// spinFor), so Close, which waits for it, waits briefly; it is made only
// where the calls cannot wait for the peer whatever another process does
// (see iovecs.direct; save the one call on a pipe that learns the kernel
// refuses RWF_NOWAIT, see iov_linux.go). When the attempt would block, or
// is not made, or a deadline is set (the waiting path enforces it), or the
// Conn is closing, the call goes the waiting path, waitRead or waitWrite
// (a call that then waits has made one more attempt than it would have). The lock
// is released without a defer: nothing under it can panic (every slice is
// indexed after a length check).
//
// Going through the runtime poller's bookkeeping (os.File's RawConn, then
// poll.FD's reference count and readiness reset) on every call touched a
// dozen more pages of code and data between system calls; where each system
// call empties the TLB (see iov_linux.go) that made round trips with both
// processes on one CPU about 2.5% slower (4 runs of 6 rounds alternating
// with C). Calling the op directly, with arguments and results passed rather
// than stored in it, and its iovecs on the stack cut another ~250
// instructions per round trip and side (cachegrind); with the frame reader's
// and the locks' shorter paths, round trips ran about 2% faster.
func (c *Conn) firstRead(p, q []byte) (n int, done bool, err error) {
	if c.rdl.Load() || !c.rop.vec.direct(c.files != nil) {
		return 0, false, nil
	}
	c.live.RLock()
	// lent again under the lock: File may have handed the open file out
	// since direct (see Conn.file).
	if !c.closed.Load() && !c.rop.vec.handedOut() {
		n, err = c.rop.read(c.fd, p, q)
		done = err != unix.EAGAIN
	}
	c.live.RUnlock()
	if done {
		c.noWait(dirRead)
	}
	return n, done, err
}

// read reads once into p and q (with recvmsg on a socket, setting o.oobn
// and o.flags); when there is nothing to read it retries for a while (see
// spinFor) before it returns EAGAIN.
func (o *readOp) read(fd int, p, q []byte) (n int, err error) {
	o.yieldIfDrained()
	for {
		if o.oob != nil {
			// recvmsg, so that passed descriptors are never dropped.
			n, o.oobn, o.flags, err = o.vec.recvmsg(fd, p, q, o.oob)
		} else {
			n, err = o.vec.read(fd, p, q)
		}
		if o.slowFirst {
			o.judgeYield(n, len(p)+len(q))
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
			if o.spin.slow { // the peer's turn: not fruitless
				o.spin.slow = false
				fruitless.Store(0)
			}
		}
		return n, err
	}
}

// yieldIfDrained gives up the CPU if the last read took all the kernel held
// (see the yieldFirst constant), unless the CPU is busy (see contended). On
// one CPU a slow yield may be the peer using its turn (see oneCPU): there
// the read after a slow one judges it (see judgeYield).
func (o *readOp) yieldIfDrained() {
	if !yieldFirst || !o.drained {
		return
	}
	o.drained = false
	if o.alone {
		if calmUntil.Load() != 0 { // contended's common answer, inline
			if contended() {
				return
			}
			o.yields = sampleEvery - 1 // a calm period ended: time this one
		}
		// One yield in sampleEvery is timed, as below; a slow one is
		// judged by what the read after it finds (see judgeYield).
		if o.yields++; o.yields%sampleEvery != 0 {
			yield()
		} else {
			o.slowFirst = timedYield()
		}
		return
	}
	if !contended() {
		// One yield in sampleEvery is timed: two clock reads on each
		// made round trips with both processes on one CPU 2% slower,
		// and a CPU taken by other threads shows in every yield alike.
		if o.yields++; o.yields%sampleEvery == 0 || probes.Load() > 0 {
			timedYield()
		} else {
			yield()
		}
	}
}

// judgeYield judges a slow yield made first on one CPU by the n bytes the
// read after it found (0 for none) into size: a peer that kept the CPU that
// long streaming wrote more than busyPeerBytes, or filled the buffer, so
// less means that another thread had the CPU, or that the peer was busy
// without writing; either way reads may as well park at once, and a calm
// period starts. With a busy
// loop sharing the CPU, each yield made first handed it a scheduler tick:
// one-CPU round trips took 1.4 ms in the mean, and 33 µs with this (C's
// blocking reads: 11 µs).
func (o *readOp) judgeYield(n, size int) {
	o.slowFirst = false
	if n < busyPeerBytes && n < size {
		calmUntil.Store(int64(time.Since(epoch) + calmFor))
	}
}

// busyPeerBytes is less than a peer streaming small messages writes in a
// millisecond: a 16-byte stream on one CPU runs at 400 k messages/s and
// more (20 bytes each with the header).
const busyPeerBytes = 4096

// contended reports whether a slow yield (see slowYield) was seen less than
// calmFor ago. Its common answer costs one atomic load.
func contended() bool {
	u := calmUntil.Load()
	if u == 0 {
		return false
	}
	if int64(time.Since(epoch)) < u {
		return true
	}
	if calmUntil.CompareAndSwap(u, 0) {
		probes.Store(probeYields)
	}
	return false
}

// Writev writes the concatenation of bufs in as few system calls as the
// kernel allows, waiting for room as needed (on a Linux pipe, a large buffer
// after a short one may take a call of its own, which the kernel copies
// faster). It returns the number of bytes
// written, which is less than the total only with an error. It leaves bufs
// as it was, even after a short write. It never raises SIGPIPE: a write to a
// peer that is gone fails with EPIPE or ECONNRESET in an [*os.SyscallError].
func (c *Conn) Writev(bufs [][]byte) (int64, error) {
	total, rest, done, serr := c.firstWrite(bufs)
	var err error
	if !done {
		o := &c.wop
		o.bufs, o.total = rest, total
		err = c.waitWrite(o.fn)
		total, serr = o.total, o.err
		o.bufs, o.err = nil, nil
	}
	c.wop.forget()
	switch {
	case err != nil:
		return total, c.pollerError("write", err)
	case serr != nil:
		return total, os.NewSyscallError("write", serr)
	}
	return total, nil
}

// firstWrite is firstRead's counterpart for a Write (see there).
func (c *Conn) firstWrite(bufs [][]byte) (total int64, rest [][]byte, done bool, err error) {
	if c.wdl.Load() || !c.wop.vec.direct(c.wop.socket) {
		return 0, bufs, false, nil
	}
	c.live.RLock()
	if c.closed.Load() || c.wop.vec.handedOut() {
		rest = bufs
	} else {
		total, rest, err = c.wop.write(c.fd, bufs)
		done = err != unix.EAGAIN
	}
	c.live.RUnlock()
	if done {
		c.noWait(dirWrite)
	}
	return total, rest, done, err
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
		switch {
		case o.socket:
			n, err = o.vec.sendmsg(fd, bufs)
		case len(bufs) > 1 && headerAliases(bufs[0], bufs[1]):
			testhook.HeaderSplits.Add(1)
			n, err = o.vec.writev(fd, bufs[:1]) // see headerAliases
		default:
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

// A spinner bounds the retries of one call that would block (see spinFor).
type spinner struct {
	start time.Time
	tries int
	slow  bool // the last yield was slow (see slowYield)
}

// again yields the CPU and reports whether to try the system call again;
// false means park.
//
// Slow yields after which there is still nothing to read start a calm
// period even on one CPU, the fruitlessCalms-th in a row (see
// noteFruitless), where noteYield cannot tell a peer that used its turn
// from another thread that took the CPU: a peer that used it would have
// written. With a busy loop sharing the one CPU, every yield gave it a
// scheduler tick, and 200 clients handshaking with a Listener timed out.
func (s *spinner) again() bool {
	if spinFor <= 0 || contended() {
		return false
	}
	if s.tries == 0 { // a new call (its Conn reset tries)
		s.start = time.Now()
	} else if s.slow {
		s.slow = false // counted once, whatever wakes the call
		noteFruitless()
		return false
	} else if time.Since(s.start) > spinFor {
		return false
	}
	s.tries++
	s.slow = timedYield()
	if !s.slow && fruitless.Load() != 0 {
		fruitless.Store(0) // not in a row
	}
	return true
}

// noteFruitless notes a slow yield after which a spinning read still found
// nothing, and starts a calm period at the fruitlessCalms-th in a row.
func noteFruitless() {
	if fruitless.Add(1) >= fruitlessCalms {
		fruitless.Store(0)
		calmUntil.Store(int64(time.Since(epoch) + calmFor))
	}
}

// fruitless counts the slow yields in a row after which a spinning read
// still found nothing (see spinner.again); the fruitlessCalms-th starts a
// calm period. A quick yield, or a slow one after which the read found
// data, ends the run. A few are what a peer that is busy, or still starting,
// makes: calm periods started by the second put one in 6 runs of 20,000
// one-CPU round trips through a calm period at 1.3x their time.
var fruitless atomic.Int32

const fruitlessCalms = 4

// A yield hands the CPU to whatever else is runnable on it: the peer, when
// both processes share one CPU, but on a busy CPU any other thread, which
// may then keep it for a scheduler tick (4 ms here). A reader that yields
// while it waits, and finds its data once back, never sleeps, so the kernel
// never hurries its wake-up as it does a sleeper's. With two busy loops on
// the 2 CPUs of the VM ci/bench.sh ran on, 2 to 3 of 8 runs of one-way round
// trips took a tick each at the median (4 ms), where parking on the poller
// at once kept the median at 22-130 µs. So a yield that kept its thread off
// the CPU for longer than slowYield makes the process's reads park at once,
// neither spinning nor yielding first, for calmFor; then the next yields
// are timed to look again. On one CPU, only when the read after the slow
// yield found little or nothing and did not fill its buffer (see oneCPU).
//
// Under the same load that gave medians of 17-129 µs and means of 20-324 µs
// (before: up to 3.2 ms). On a quiet machine a slow yield is seen about once
// a second (the two processes of a stream briefly sharing a CPU, say); round
// trips on one CPU did not change, and 16-byte streams on 2 CPUs ran within
// 4% (8 alternating rounds).
const (
	slowYield   = time.Millisecond
	calmFor     = 100 * time.Millisecond
	probeYields = 16 // yields timed after a calm period (see probes)
	sampleEvery = 16 // of the yields made first, one in sampleEvery is timed
)

// epoch is the origin of calmUntil's monotonic times.
var epoch = time.Now()

// calmUntil is when reads may yield again (see slowYield), in nanoseconds
// since epoch; 0 for no calm period (a period that ended is cleared by the
// first reader to see that).
var calmUntil atomic.Int64

// probes counts the yields still to be timed, whoever makes them, after a
// calm period ended: a busy CPU must be seen again at once, not at a
// reader's next sampled yield (see readOp.yieldIfDrained; on one CPU a Conn
// that sees a period end times its next yield instead).
var probes atomic.Int32

// timedYield yields, notes how long that took, and reports whether it was
// slow.
func timedYield() bool {
	t := time.Since(epoch)
	yield()
	d := time.Since(epoch)
	noteYield(t, d)
	return d-t > slowYield
}

// noteYield notes a yield made from t to d (times since epoch).
func noteYield(t, d time.Duration) {
	if d-t > slowYield {
		if !oneCPU {
			calmUntil.Store(int64(d + calmFor))
		}
	} else if probes.Load() > 0 {
		probes.Add(-1)
	}
}

// oneCPU says the process may run on one CPU only (taskset, a one-CPU
// cpuset or machine). There a yield is how the peer gets to run, and one
// that lasts may be the peer using its turn, not a busy CPU: a writer
// streaming small messages keeps the CPU for a tick, and parking the reader
// instead made one-CPU streams of 16-byte messages 0.9x C's rate instead of
// 1.6-1.8x (ci/bench.sh). So there a slow yield alone starts no calm period;
// one after which a read finds little or nothing, not filling its buffer,
// does (see judgeYield and spinner.again).
var oneCPU = runtime.NumCPU() == 1

// A readOp and a writeOp hold the state of a Conn's Reads and Writes: what
// persists between calls, and the arguments and results of one call across
// the callback the waiting path calls (see Conn.waitRead). Their callbacks are method values
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
	// less than it asked for), so that the next one yields first (see
	// yieldFirst).
	drained bool
	yields  uint8 // yields made first, counted to time one in sampleEvery
	// slowFirst says a yield made first on one CPU was timed and slow: the
	// read after it judges it (see judgeYield).
	slowFirst bool
	alone     bool               // oneCPU, copied so that a read after a yield loads one global only (calmUntil)
	fn        func(uintptr) bool // do, bound once
	vec       iovecs
}

func (o *readOp) init(files *fileQueue, own bool) {
	o.alone = oneCPU
	if files != nil {
		o.oob = files.oob
	} else {
		o.vec.init(own)
	}
	o.fn = o.do
}

// do is the waiting path's callback: it reads into o.p and o.q, and tells
// the waiting path to wait when read found nothing.
func (o *readOp) do(fd uintptr) bool {
	o.n, o.err = o.read(int(fd), o.p, o.q)
	return o.err != unix.EAGAIN
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

func (o *writeOp) init(socket, own bool) {
	o.socket = socket
	if !socket {
		o.vec.init(own)
	}
	o.fn = o.do
}

// do is the waiting path's callback: it writes o.bufs, and tells the
// waiting path to wait when the kernel has no room.
func (o *writeOp) do(fd uintptr) bool {
	var n int64
	n, o.bufs, o.err = o.write(int(fd), o.bufs)
	o.total += n
	return o.err != unix.EAGAIN
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
