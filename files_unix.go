//go:build unix

package procpipe

import "github.com/procpipe/procpipe/unix"

// Both packages must agree on the limit.
var (
	_ [unix.MaxFiles - MaxFiles]struct{}
	_ [MaxFiles - unix.MaxFiles]struct{}
)

// passerOf returns t as a filePasser if it can carry files: a socket.
func passerOf(t transport) filePasser {
	if c, ok := t.(*unix.Conn); ok && c.Kind() == unix.Socket {
		return c
	}
	return nil
}

func noPasserError() error { return ErrNotSocket }
