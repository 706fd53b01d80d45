package unix

import (
	"time"

	"github.com/procpipe/procpipe/internal/testhook"
	"golang.org/x/sys/unix"
)

// SetPipeNoWaitForTest turns the RWF_NOWAIT pipe calls, and a pipe Conn's
// own open file (see ownFile), on or off for the pipe Conns made from now
// on, as a kernel without them and without /proc would, and returns the
// previous setting.
func SetPipeNoWaitForTest(on bool) bool { return pipeNoWait.Swap(on) }

// PlainPipeIOForTest returns the error with which the kernel (or an emulator)
// refused RWF_NOWAIT on c, making its reads or writes fall back to readv or
// writev (EOPNOTSUPP if SetPipeNoWaitForTest turned it off), or nil.
func (c *Conn) PlainPipeIOForTest() error {
	for _, e := range []unix.Errno{c.rop.vec.plain, c.wop.vec.plain} {
		if e != 0 {
			return e
		}
	}
	return nil
}

// DrainedForTest reports whether c's last read took all the kernel held.
func (c *Conn) DrainedForTest() bool { return c.rop.drained }

// FirstReadForTest makes c's first attempt at a Read into p, as Read does,
// and reports whether it was made and completed.
func (c *Conn) FirstReadForTest(p []byte) bool {
	_, done, _ := c.firstRead(p, nil)
	return done
}

// FirstWriteForTest makes c's first attempt at writing p, as Write does, and
// reports whether it was made and completed.
func (c *Conn) FirstWriteForTest(p []byte) bool {
	_, _, done, _ := c.firstWrite([][]byte{p})
	return done
}

// NoteYieldForTest notes a yield that took d and ended now, as timedYield
// does in a process that may run on one CPU only or on more, and returns
// the calm period that followed from it (0 if none).
func NoteYieldForTest(d time.Duration, one bool) time.Duration {
	defer func(old bool) { oneCPU = old }(oneCPU)
	oneCPU = one
	calmUntil.Store(0)
	end := time.Since(epoch)
	noteYield(end-d, end)
	if u := calmUntil.Load(); u != 0 {
		return time.Duration(u) - end
	}
	return 0
}

// SetOneCPUForTest makes the Conns made from now on behave as in a process
// that may run on one CPU only (or on more), and returns the previous
// setting.
func SetOneCPUForTest(one bool) bool {
	old := oneCPU
	oneCPU = one
	return old
}

// CalmForTest is how long a slow yield keeps reads from yielding.
const CalmForTest = calmFor

// SetContentionForTest sets the calm period to end d from now (d > 0), to
// have ended without a reader seeing it yet (d < 0), or to none (d == 0),
// and the count of yields still to be timed; zero for both is the state a
// process starts in.
func SetContentionForTest(d time.Duration, yieldsToTime int32) {
	switch {
	case d > 0:
		calmUntil.Store(int64(time.Since(epoch) + d))
	case d < 0:
		calmUntil.Store(endedCalm)
	default:
		calmUntil.Store(0)
	}
	probes.Store(yieldsToTime)
	fruitless.Store(0)
}

// endedCalm is the calm period SetContentionForTest sets for d < 0.
const endedCalm = 1

// ContentionForTest returns, without looking at the clock, the state
// SetContentionForTest sets: whether a calm period is set (ended or not),
// whether it is the ended one that SetContentionForTest set, and how many
// yields are still to be timed.
func ContentionForTest() (set, ended bool, yieldsToTime int32) {
	u := calmUntil.Load()
	return u != 0, u == endedCalm, probes.Load()
}

// SpinAfterSlowYieldForTest makes a spinning read's decision after a first
// try whose yield was slow and after which there was still nothing to read,
// and reports whether it would try again. It then asks again, as the same
// call woken by the poller to find nothing would.
func SpinAfterSlowYieldForTest() bool {
	s := spinner{start: time.Now(), tries: 1, slow: true}
	again := s.again()
	s.start = time.Now().Add(-time.Second) // the park, past spinFor
	s.again()
	return again
}

// FruitlessCalmsForTest is how many slow yields in a row that bring nothing
// start a calm period.
const FruitlessCalmsForTest = fruitlessCalms

// SpinOnceForTest makes a spinning read's first retry (a timed yield) and
// reports whether the yield was slow.
func SpinOnceForTest() (slow bool) {
	var s spinner
	s.again()
	return s.slow
}

// SlowFirstForTest makes c's next read judge a slow yield made first (see
// judgeYield), as after one timed on one CPU.
func (c *Conn) SlowFirstForTest() { c.rop.slowFirst = true }

// SlowSpinForTest makes c's next read follow a slow yield of a spinning
// read, as one that found nothing, yielded, and tries again.
func (c *Conn) SlowSpinForTest() { c.rop.spin.slow = true }

// HeaderAliasesForTest is headerAliases.
var HeaderAliasesForTest = headerAliases

// HeaderSplitsForTest counts the pipe writes of a header made apart from
// its payload (see headerAliases).
func HeaderSplitsForTest() int64 { return testhook.HeaderSplits.Load() }

// OwnsFileForTest reports whether c owns its open file (see ownFile).
func (c *Conn) OwnsFileForTest() bool { return c.rop.vec.own.Load() || c.wop.vec.own.Load() }

// SetPipeOwnForTest turns a pipe Conn's own open file (see ownFile) on or
// off for the pipe Conns made from now on, as where /proc is mounted or not,
// and returns the previous setting.
func SetPipeOwnForTest(on bool) bool { return pipeOwn.Swap(on) }

// FailFileForTest makes File fail to open a file to hand out (see
// Conn.file) until the function it returns is called.
func FailFileForTest() (restore func()) {
	reopen = func(int, Kind) (int, error) { return -1, unix.EMFILE }
	return func() { reopen = openEnd }
}

// ParkedForTest reports whether c's Reads (or Writes, if write) hold a
// descriptor to park on the runtime poller with (see park): from the first
// call that parks until unparkAfter calls in a row that do not wait.
func (c *Conn) ParkedForTest(write bool) bool {
	d := dirRead
	if write {
		d = dirWrite
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.parked[d] != nil
}

// InParkForTest reports whether a Read (or a Write, if write) of c waits
// parked on the runtime poller now.
func (c *Conn) InParkForTest(write bool) bool {
	if write {
		return c.inPark[dirWrite].Load()
	}
	return c.inPark[dirRead].Load()
}

// UnparkAfterForTest is how many calls in a row that do not wait drop the
// descriptor a direction parks on.
const UnparkAfterForTest = unparkAfter

// MaxPPollersForTest bounds the calls waiting in ppoll at once.
const MaxPPollersForTest = maxPPollers
