//go:build freebsd || netbsd || openbsd || dragonfly

package unix

import "golang.org/x/sys/unix"

// recvmsg receives into p, with control messages into oob; descriptors
// arrive close-on-exec.
func recvmsg(fd int, p, oob []byte) (n, oobn, flags int, err error) {
	n, oobn, flags, _, err = unix.Recvmsg(fd, p, oob, unix.MSG_CMSG_CLOEXEC)
	return n, oobn, flags, err
}
