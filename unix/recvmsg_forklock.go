//go:build unix && !linux && !freebsd && !netbsd && !openbsd && !dragonfly

package unix

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// recvmsg receives into p, with control messages into oob; descriptors are
// made close-on-exec before any fork can see them. These systems have no
// MSG_CMSG_CLOEXEC, so the receive and the marking happen under
// syscall.ForkLock, which os/exec holds while it forks.
func recvmsg(fd int, p, oob []byte) (n, oobn, flags int, err error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	n, oobn, flags, _, err = unix.Recvmsg(fd, p, oob, 0)
	if err == nil && oobn > 0 {
		for _, fd := range parseRights(oob[:oobn]) {
			unix.CloseOnExec(fd)
		}
	}
	return n, oobn, flags, err
}
