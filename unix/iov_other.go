//go:build unix && !linux

package unix

import "golang.org/x/sys/unix"

// iovecs holds what a Conn's reads or writes keep between calls on Linux;
// elsewhere the portable x/sys calls are used, which allocate their own
// scratch space, and nothing is kept.
type iovecs struct{}

// init readies v for a new Conn: there is nothing to ready here.
func (*iovecs) init(own bool) {}

// direct is false: the calls here trust O_NONBLOCK (see the Linux direct),
// so every call goes through the poller.
func (*iovecs) direct(bool) bool { return false }

// handedOut is Linux's (see there): false.
func (*iovecs) handedOut() bool { return false }

func (*iovecs) sendmsg(fd int, bufs [][]byte) (int, error) {
	return unix.SendmsgBuffers(fd, bufs, nil, nil, sendFlags)
}

func (*iovecs) writev(fd int, bufs [][]byte) (int, error) { return writev(fd, bufs) }

// recvmsg receives into p only: q is a hint that a Read may ignore.
func (*iovecs) recvmsg(fd int, p, q, oob []byte) (n, oobn, flags int, err error) {
	return recvmsg(fd, p, oob)
}

// read reads into p only, like recvmsg.
func (*iovecs) read(fd int, p, q []byte) (int, error) { return unix.Read(fd, p) }

// TryRead reports false: here every read goes through the poller (see
// direct), so a caller calls Read. (On Linux it reads what has arrived
// without waiting.)
func (c *Conn) TryRead(p []byte) (int, bool) { return 0, false }

// TryWrite reports false, as TryRead does: a caller calls Writev.
func (c *Conn) TryWrite(b []byte) (int, bool) { return 0, false }
