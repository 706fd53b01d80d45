package unix

import (
	"os"

	"golang.org/x/sys/unix"
)

// darwin has no MSG_NOSIGNAL; SO_NOSIGPIPE is set on each socket instead.
const sendFlags = 0

// socketBuffer is the send and receive buffer size for darwin's AF_UNIX
// sockets, whose 8 KiB default makes every large message cost many system
// calls.
const socketBuffer = 512 << 10

func tune(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_NOSIGPIPE, 1); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	for _, opt := range []int{unix.SO_SNDBUF, unix.SO_RCVBUF} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, socketBuffer); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}
