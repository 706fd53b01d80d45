package unix

import (
	"time"

	"golang.org/x/sys/unix"
)

// spinFor is how long a Read that would block keeps retrying, yielding the
// CPU between tries, before it parks the goroutine on the runtime poller.
// Parking and being woken by the poller costs a Go process an epoll round
// and a trip through the scheduler on top of the kernel's wake-up; a peer
// that answers within spinFor (a round trip) is seen without them. Writes
// do not spin (see writeOp.do). sched_yield rather than runtime.Gosched
// lets a peer pinned to the same CPU run at once. A Conn that waits longer
// spins once per call and then sleeps: an idle Recv costs no CPU. Measured
// on a 2-vCPU VM (ci/bench.sh): round trips 1.3-1.6x faster than parking
// at once; a ppoll with a timeout was slower than parking (arming a timer
// is costly in a VM).
const spinFor = 15 * time.Microsecond

// yield gives up the CPU to any other runnable thread.
func yield() { unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
