//go:build unix

package procpipe

import (
	"fmt"
	"os"
	"syscall"

	"github.com/procpipe/procpipe/frame"
	"github.com/procpipe/procpipe/unix"
)

// Both packages must agree on the limit.
var (
	_ [unix.MaxFiles - MaxFiles]struct{}
	_ [MaxFiles - unix.MaxFiles]struct{}
)

// filesAlwaysAcked is false: on Unix the acknowledgement is optional
// (Config.NoFileAck), because the descriptors travel in the kernel.
const filesAlwaysAcked = false

// passerOf returns a filePasser for t if it can carry files: a socket.
func passerOf(t transport) filePasser {
	if c, ok := t.(*unix.Conn); ok && c.Kind() == unix.Socket {
		return socketPasser{c}
	}
	return nil
}

func noPasserError() error { return ErrNotSocket }

// socketPasser passes descriptors as CPython's reduction.sendfds does: a
// one-byte message holding their number modulo 256, with the descriptors
// attached (SCM_RIGHTS). The socket queues the descriptors that arrive by
// the stream offset of their byte, so the next item is files if descriptors
// came with the next byte the Conn's reader will consume.
type socketPasser struct{ c *unix.Conn }

// pos returns the stream offset of the next byte rd will consume.
func (p socketPasser) pos(rd *frame.Reader) int64 {
	return p.c.ReadOffset() - int64(rd.Buffered())
}

func (p socketPasser) filesNext(rd *frame.Reader) (bool, error) {
	return p.c.FilesAt(p.pos(rd)), nil
}

func (p socketPasser) takeFiles(op string, rd *frame.Reader, _ *pullGate) ([]*os.File, bool, error) {
	pos := p.pos(rd)
	n, err := rd.ReadByte() // buffered: cannot fail
	if err != nil {
		return nil, false, err
	}
	files, err := p.c.TakeFiles(pos)
	if err != nil {
		return nil, true, fmt.Errorf("%w (%v)", ErrFilesTruncated, err)
	}
	if len(files)%256 != int(n) {
		closeFiles(files)
		err := fmt.Errorf("procpipe: %s: %d files arrived, but the peer's count byte says %d (mod 256); closed them", op, len(files), n)
		if len(files) < int(n) {
			// Fewer than announced: some were lost on the way, as
			// when the control buffer was too small but the system
			// (or an emulator) did not say so with MSG_CTRUNC.
			err = fmt.Errorf("%w (%v)", ErrFilesTruncated, err)
		}
		return nil, true, err
	}
	return files, true, nil
}

// writeFiles sends the descriptors, which the kernel holds from then on:
// nothing is left to release.
func (p socketPasser) writeFiles(_ *frame.Writer, conns []syscall.RawConn, before func() error) (func(), error) {
	return nil, p.c.WriteFiles(byte(len(conns)%256), conns, before)
}
