package procpipe

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/procpipe/procpipe/windows"
	xwindows "golang.org/x/sys/windows"
)

func newPair(duplex bool) (a, b transport, err error) {
	x, y, err := windows.Pair(duplex)
	if err != nil {
		return nil, nil, err
	}
	return x, y, nil
}

func fileTransport(f *os.File) (t transport, canRead, canWrite bool, err error) {
	c, err := windows.NewConn(f)
	if err != nil {
		return nil, false, false, err
	}
	k := c.Kind()
	return c, k != windows.WriteOnly, k != windows.ReadOnly, nil
}

// envTransport returns the transport named by the value of EnvConn: a handle
// value, in decimal.
func envTransport(v string) (t transport, canRead, canWrite bool, err error) {
	h, err := strconv.ParseUint(v, 10, 64)
	if err != nil || h == 0 || uint64(uintptr(h)) != h {
		return nil, false, false, errors.New("procpipe: " + EnvConn + "=" + strconv.Quote(v) + " is not a handle value")
	}
	// Checked before it is wrapped: a wrong value may name a handle
	// someone else owns, which NewConn (or a dropped os.File's finalizer)
	// would close.
	if _, err := windows.KindOf(xwindows.Handle(h)); err != nil {
		return nil, false, false, fmt.Errorf("procpipe: %s=%d: %w", EnvConn, h, err)
	}
	return fileTransport(os.NewFile(uintptr(h), "procpipe-parent"))
}

func isPeerGone(err error) bool {
	return errors.Is(err, xwindows.ERROR_BROKEN_PIPE) ||
		errors.Is(err, xwindows.ERROR_NO_DATA) ||
		errors.Is(err, xwindows.ERROR_PIPE_NOT_CONNECTED)
}
