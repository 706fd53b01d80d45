package unix

import (
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// spinFor is how long a Read that would block keeps retrying, yielding the
// CPU between tries, before it parks the goroutine on the runtime poller.
// Parking and being woken by the poller costs a Go process an epoll round
// and a trip through the scheduler on top of the kernel's wake-up; a peer
// that answers within spinFor (a round trip) is seen without them. Writes
// do not spin (see writeOp.write). sched_yield rather than runtime.Gosched
// lets a peer pinned to the same CPU run at once. A Conn that waits longer
// spins once per call and then sleeps: an idle Recv costs no CPU. Measured
// on a 2-vCPU VM (ci/bench.sh): round trips 1.3-1.6x faster than parking
// at once; a ppoll with a timeout was slower than parking (arming a timer
// is costly in a VM).
const spinFor = 15 * time.Microsecond

// yield gives up the CPU to any other runnable thread (with syscall's raw
// call rather than x/sys's, see iov_linux.go).
func yield() { syscall.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// yieldFirst makes a Read whose last read emptied the kernel's buffer give
// up the CPU before it asks again, when the process may run on one CPU only
// (taskset, a one-CPU cpuset or machine): there the peer cannot have written
// anything since, unless this process stopped running, so asking first would
// almost always fail with EAGAIN and cost a system call before the yield.
// Saving it took round trips on one-way ends with both processes on one CPU
// from 1.5x to about 1.3x C's (ci/bench.sh), and changed no other pinned
// scenario. With more CPUs the peer may well have written in the meantime,
// and the Read asks first.
var yieldFirst = runtime.NumCPU() == 1
