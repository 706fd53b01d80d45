//go:build unix && !darwin

package unix

import "golang.org/x/sys/unix"

// sendFlags keeps a write to a socket whose peer is gone from raising SIGPIPE.
const sendFlags = unix.MSG_NOSIGNAL

func tune(fd int) error { return nil }
