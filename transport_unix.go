//go:build unix

package procpipe

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/procpipe/procpipe/frame"
	"github.com/procpipe/procpipe/unix"
)

// A small message's short path (see Conn.RecvBytesInto and sendBytes)
// exists only while unix.Conn offers it to the frame layer.
var _ interface {
	frame.TryReader
	frame.TryWriter
} = (*unix.Conn)(nil)

// control calls f with t's own descriptor, held open until f returns, to
// poll it (see waitReady): File would make a pipe end's Conn open a file
// to hand out (see unix.Conn.File).
func control(t transport, f func(fd uintptr)) error {
	if c, ok := t.(*unix.Conn); ok {
		return c.Control(f)
	}
	rc, err := t.File().SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(f)
}

func newPair(duplex bool) (a, b transport, err error) {
	var x, y *unix.Conn
	if duplex {
		x, y, err = unix.Socketpair()
	} else {
		x, y, err = unix.Pipe()
	}
	if err != nil {
		return nil, nil, err
	}
	return x, y, nil
}

func fileTransport(f *os.File) (t transport, canRead, canWrite bool, err error) {
	c, err := unix.NewConn(f)
	if err != nil {
		return nil, false, false, err
	}
	k := c.Kind()
	return c, k != unix.PipeWrite, k != unix.PipeRead, nil
}

// envTransport returns the transport named by the value of EnvConn: a
// descriptor number.
func envTransport(v string) (t transport, canRead, canWrite bool, err error) {
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 0 {
		return nil, false, false, errors.New("procpipe: " + EnvConn + "=" + strconv.Quote(v) + " is not a descriptor number")
	}
	// Checked before the descriptor is wrapped: a wrong number may name
	// a descriptor someone else owns, which NewConn would close.
	if _, err := unix.KindOf(fd); err != nil {
		return nil, false, false, fmt.Errorf("procpipe: %s=%d: %w", EnvConn, fd, err)
	}
	return fileTransport(os.NewFile(uintptr(fd), "procpipe-parent"))
}

func isPeerGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}
