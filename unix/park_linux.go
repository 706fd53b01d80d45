package unix

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/procpipe/procpipe/internal/testhook"
	"golang.org/x/sys/unix"
)

// On Linux a Conn's descriptor is not on the runtime poller while data
// flows. A descriptor on the poller stays registered with its epoll set,
// which hooks the pipe's or socket's wait queue: every write then runs
// epoll's callback in the writer's system call (a lock, the ready list),
// and a pipe that was ever polled wakes its queue on every write. In a
// profile of a 16-byte stream between two processes on 2 CPUs that cost
// the writer about 80 ns of its 450 per message, in time with interrupts
// off. In C, a reader registered with epoll as Go's poller registers it
// (ci/bench/cbench.c, CBENCH_EPOLL) cut the stream's rate to 0.75-0.94x.
// With the descriptors off the poller, 16-byte streams ran at 1.01x C's rate
// on a socketpair (0.88x before) and 0.79x on pipes (0.77x; 10 alternating
// rounds with C, free CPUs).
//
// So a Read that would block, once it has spun (see spinFor), waits in
// ppoll(2), a blocking system call, which sits on the wait queue only while
// it waits; a Read still waiting after parkAfter, and a Write that waits for
// room at once (see wait), park on the runtime poller through a descriptor
// of their own (a dup of the Conn's, see park), so that an idle Conn holds
// no thread; that descriptor stays registered while calls keep waiting
// (see unparkAfter). Close, and a deadline moved while a Read waits in
// ppoll, take effect there within parkAfter (within maxBackoff if no
// descriptor is left to park with): nothing interrupts the ppoll
// (shutdown would end a socket that other processes may share too, and an
// eventfd to wake it would cost every Conn another descriptor).

// parkAfter is how long a Read waits in ppoll before it parks on the
// runtime poller. Each call waiting in ppoll holds an OS thread, so this
// bounds how many the idle Conns of a process hold: those that started
// waiting in the last parkAfter (and at most maxPPollers).
const parkAfter = time.Millisecond

// maxBackoff is how long a wait that cannot park waits in ppoll at most
// before it tries again (see Conn.wait).
const maxBackoff = 10 * time.Millisecond

// maxPPollers bounds the calls waiting in ppoll at once, in the process:
// each holds an OS thread, which the runtime keeps once made. Calls beyond
// it park on the runtime poller at once.
const maxPPollers = 16

// ppollers counts the calls waiting in ppoll.
var ppollers atomic.Int32

// unparkAfter is how many calls in a row a direction makes without waiting
// before it drops the descriptor it parked on (see park). Registering one
// costs about 5 system calls (dup, fcntl, epoll_ctl to add and to remove,
// close) and an allocation: a 64 KiB stream on a socketpair, both processes
// on one CPU, whose writer waits for room every few messages, ran at 0.89x
// C's rate registering for every wait and 1.0x keeping the registration
// (5 alternating rounds; 0.98x on the runtime poller throughout). A stream
// of small messages, which rarely waits, drops it after unparkAfter calls.
const unparkAfter = 64

// waits is what a Conn's calls need on Linux to wait off the runtime
// poller.
type waits struct {
	// deadline is the read and the write deadline, in nanoseconds since
	// epoch on the monotonic clock as the runtime poller keeps them (0:
	// none); the flags rdl and wdl say one is set (see Conn.firstRead).
	deadline [2]atomic.Int64
	// parked holds the descriptors reads and writes park on (see park),
	// kept for the calls that follow until unparkAfter calls in a row do
	// not wait; Close closes them, which wakes a parked call, and
	// setDeadlineAt gives them the deadlines. Each is set only by its
	// direction's calls, under wmu, and read by them without it.
	parked [2]*os.File
	prc    [2]syscall.RawConn
	wmu    sync.Mutex
	// calm counts the calls in a row that did not wait, per direction,
	// while it holds a parked descriptor (see unparkAfter).
	calm [2]int
	// inPark says a call of the direction waits on the runtime poller now.
	inPark [2]atomic.Bool
}

// rightsFlags are the flags of writeRights' sendmsg: its own non-blocking
// flag, as the parked descriptor's open file may be blocking (see
// makeParked).
const rightsFlags = sendFlags | unix.MSG_DONTWAIT

// The two directions, as indexes of waits' arrays.
const (
	dirRead  = 0
	dirWrite = 1
)

// errClosing is what a wait returns once the Conn is closed; pollerError
// turns it into os.ErrClosed.
var errClosing = errors.New("use of closed Conn")

// newFile wraps fd, non-blocking, in an *os.File that is not on the runtime
// poller: the os.File only names and closes the descriptor, and hands it
// out (see File). The runtime registers a descriptor that is non-blocking
// when os.NewFile sees it, so the mode is cleared meanwhile. (That is seen
// by the processes that share the open file, for two fcntl calls: none
// does on a pipe Conn's own open file, see ownFile.)
func newFile(fd int, name string) *os.File {
	cleared := unix.SetNonblock(fd, false) == nil
	f := os.NewFile(uintptr(fd), name)
	if cleared {
		unix.SetNonblock(fd, true)
	}
	return f
}

func (c *Conn) waitRead(fn func(fd uintptr) bool) error {
	return c.wait(dirRead, unix.POLLIN, fn)
}

func (c *Conn) waitWrite(fn func(fd uintptr) bool) error {
	return c.wait(dirWrite, unix.POLLOUT, fn)
}

// wait calls fn with the descriptor, under live, until it returns true,
// waiting between calls until the descriptor is ready for events, as
// syscall.RawConn's Read and Write do. It returns errClosing once the Conn
// is closed, and an error matching os.ErrDeadlineExceeded once the
// deadline of direction d has passed.
//
// A read waits in ppoll first, for up to parkAfter; a write waiting for
// room parks at once: in ppoll, a blocking system call that the runtime's
// monitor sees last, the writer of a 64 KiB stream between processes on
// one CPU ran at 0.72x C's rate (the monitor wakes every 20 µs and hands
// the processor on, see iov_linux.go), and a write waits for the reader's
// turn, which parking costs little beside.
func (c *Conn) wait(d int, events int16, fn func(fd uintptr) bool) error {
	var start time.Time
	var backoff time.Duration
	for {
		c.live.RLock()
		if c.closed.Load() {
			c.live.RUnlock()
			return errClosing
		}
		if c.expired(d) {
			c.live.RUnlock()
			return os.ErrDeadlineExceeded
		}
		done := fn(uintptr(c.fd))
		c.live.RUnlock()
		if done {
			c.noWait(d)
			return nil
		}
		if d == dirRead && c.parked[d] == nil {
			now := time.Now()
			if start.IsZero() {
				start = now
			}
			left := parkAfter - now.Sub(start)
			if left > 0 && ppollers.Add(1) <= maxPPollers {
				c.ppoll(d, events, left)
				ppollers.Add(-1)
				continue
			} else if left > 0 {
				ppollers.Add(-1)
			}
		}
		if ok, err := c.park(d, fn); ok {
			return err
		}
		// No descriptor to park on (none left in the process, say): wait
		// on in ppoll, holding a thread, uncounted, looking again less
		// and less often (Close and moved deadlines are then seen within
		// maxBackoff).
		backoff = min(max(2*backoff, parkAfter), maxBackoff)
		c.ppoll(d, events, backoff)
	}
}

// noWait notes a call of direction d that did not wait: the unparkAfter-th
// in a row drops the descriptor it parks on (see park). Its common case
// is inline: one load.
func (c *Conn) noWait(d int) {
	if c.parked[d] != nil {
		c.calmCall(d)
	}
}

func (c *Conn) calmCall(d int) {
	if c.calm[d]++; c.calm[d] < unparkAfter {
		return
	}
	c.calm[d] = 0
	c.wmu.Lock()
	f := c.parked[d]
	c.parked[d], c.prc[d] = nil, nil
	c.wmu.Unlock()
	closeParked(f)
}

// closeParked closes a parked descriptor (see parked), which Close and the
// calls of its direction may both do.
func closeParked(f *os.File) {
	if f.Close() == nil {
		testhook.ParkedFiles.Add(-1)
	}
}

// expired reports whether direction d's deadline has passed.
func (c *Conn) expired(d int) bool {
	dl := c.deadline[d].Load()
	return dl != 0 && int64(time.Since(epoch)) >= dl
}

// ppoll waits for events on the descriptor for at most left, or until
// direction d's deadline. Its result does not matter: the caller
// looks again. It runs outside live: should Close close the descriptor
// meanwhile and its number be reused, this wakes early or late, and the
// caller then finds the Conn closed.
func (c *Conn) ppoll(d int, events int16, left time.Duration) {
	fds := [1]unix.PollFd{{Fd: int32(c.fd), Events: events}}
	if c.closed.Load() {
		return
	}
	if dl := c.deadline[d].Load(); dl != 0 {
		left = min(left, time.Duration(dl)-time.Since(epoch))
	}
	if left <= 0 {
		return
	}
	ts := unix.NsecToTimespec(int64(left))
	// Syscall, not RawSyscall: this blocks, and the runtime must know.
	syscall.Syscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)), uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
}

// park waits for fn on the runtime poller, through a descriptor of the
// Conn's open file kept for direction d's calls (see parked), made and
// registered at the first, and returns true and fn's error; or false if
// it cannot (no descriptor left, say).
func (c *Conn) park(d int, fn func(fd uintptr) bool) (bool, error) {
	c.calm[d] = 0
	if c.parked[d] == nil && !c.makeParked(d) {
		return false, nil
	}
	var err error
	c.inPark[d].Store(true)
	if d == dirRead {
		err = c.prc[d].Read(fn)
	} else {
		err = c.prc[d].Write(fn)
	}
	c.inPark[d].Store(false)
	if err != nil && c.closed.Load() && !errors.Is(err, os.ErrDeadlineExceeded) {
		err = errClosing // the poller's own "use of closed file"
	}
	return true, err
}

// makeParked makes direction d's parked descriptor (see parked), unless
// the Conn is closed, and reports whether it did. It runs under wmu: the
// two directions may make theirs at once, and the mode switch below must
// not interleave.
func (c *Conn) makeParked(d int) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.live.RLock()
	if c.closed.Load() {
		c.live.RUnlock()
		return false
	}
	nfd, err := unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
	c.live.RUnlock()
	if err != nil {
		return false
	}
	// os.NewFile registers a descriptor with the poller only if it is
	// non-blocking, as NewConn left the open file; a process sharing it (a
	// child given File's) may have made it blocking since, and is given
	// its mode back at once (epoll does not look at it, and the calls made
	// through the parked descriptor carry their own non-blocking flag,
	// save a fallback pipe's, which trust O_NONBLOCK as before).
	fl, err := unix.FcntlInt(uintptr(nfd), unix.F_GETFL, 0)
	if err == nil && fl&unix.O_NONBLOCK == 0 {
		err = unix.SetNonblock(nfd, true)
	}
	if err != nil {
		unix.Close(nfd)
		return false
	}
	f := os.NewFile(uintptr(nfd), c.f.Name())
	if fl&unix.O_NONBLOCK == 0 {
		unix.SetNonblock(nfd, false)
	}
	rc, err := f.SyscallConn()
	// A file off the poller takes no deadline: another process made the
	// open file blocking again before os.NewFile looked.
	if err != nil || f.SetReadDeadline(time.Time{}) != nil {
		f.Close()
		return false
	}
	if dl := c.deadline[d].Load(); dl != 0 {
		// The deadline as wait sees it, on the monotonic clock.
		setFileDeadline(f, d, time.Now().Add(time.Duration(dl)-time.Since(epoch)))
	}
	c.parked[d], c.prc[d] = f, rc
	testhook.ParkedFiles.Add(1)
	return true
}

func setFileDeadline(f *os.File, d int, t time.Time) {
	if d == dirRead {
		f.SetReadDeadline(t)
	} else {
		f.SetWriteDeadline(t)
	}
}

// setDeadlineAt sets direction d's deadline to t (none if zero), for the
// waits to come and a parked one; a wait in ppoll sees it within parkAfter.
func (c *Conn) setDeadlineAt(d int, t time.Time) error {
	if c.closed.Load() {
		return errClosing
	}
	var dl int64
	if !t.IsZero() {
		// time.Until saturates far in the future; the sum could not
		// reach 1<<63 before the process had run for 146 years.
		dl = max(int64(time.Since(epoch)+min(time.Until(t), 1<<62)), 1)
	}
	c.wmu.Lock()
	c.deadline[d].Store(dl)
	if f := c.parked[d]; f != nil {
		setFileDeadline(f, d, t)
	}
	c.wmu.Unlock()
	return nil
}

// closeWaits closes the parked descriptors, once closed is set, which wakes
// a parked call; a call in ppoll sees closed within parkAfter.
func (c *Conn) closeWaits() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, f := range c.parked {
		if f != nil {
			closeParked(f)
		}
	}
}
