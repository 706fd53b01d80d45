package unix

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// spinFor is how long a Read that would block keeps retrying, yielding the
// CPU between tries, before it waits (in ppoll, then on the runtime poller:
// see park_linux.go). Waiting and being woken costs a sleep and a wake-up
// in the kernel, and on the poller an epoll round and a trip through the
// scheduler besides; a peer that answers within spinFor (a round trip) is
// seen without them. Writes do not spin (see writeOp.write). sched_yield
// rather than runtime.Gosched lets a peer pinned to the same CPU run at
// once. A Conn that waits longer spins once per call and then sleeps: an
// idle Recv costs no CPU. Measured on a 2-vCPU VM (ci/bench.sh): round
// trips 1.3-1.6x faster than parking at once; a ppoll with a short timeout
// in place of the spin was slower than parking (arming a timer is costly
// in a VM). While the CPU is busy with other threads reads park at once
// (see slowYield in op.go).
const spinFor = 15 * time.Microsecond

// yield gives up the CPU to any other runnable thread (with syscall's raw
// call rather than x/sys's, see iov_linux.go).
func yield() { syscall.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// yieldFirst makes a Read whose last read emptied the kernel's buffer give
// up the CPU before it asks again.
//
// On one CPU (taskset, a one-CPU cpuset or machine) the peer cannot have
// written anything since, unless this process stopped running, so asking
// first would almost always fail with EAGAIN and cost a system call before
// the yield. Saving it took round trips on one-way ends with both processes
// on one CPU from 1.5x to about 1.3x C's (ci/bench.sh).
//
// With more CPUs a reader that keeps up with a stream of small messages
// otherwise takes them one read at a time, each read meeting the writer on
// the pipe's or socket's lock; yielding first lets a few more arrive, and
// both sides make fewer, cheaper calls. Streams of 16-byte messages on
// 2 CPUs ran 445 k -> 515 k msgs/s on pipes (6 alternating rounds; C 548 k)
// and about 10% faster on a socketpair; round trips and bulk transfers did
// not change. A reader that caught up gives up the CPU as a blocking read
// would; a read that fills its buffer is not followed by a yield. Nor does
// a read yield first while the CPU is busy with other threads (see
// slowYield in op.go).
const yieldFirst = true
