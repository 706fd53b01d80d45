package procpipe

import (
	"errors"
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
	f := os.NewFile(uintptr(h), "procpipe-parent")
	if err != nil || h == 0 || f == nil {
		return nil, false, false, errors.New("procpipe: " + EnvConn + "=" + strconv.Quote(v) + " is not a handle value")
	}
	return fileTransport(f)
}

func isPeerGone(err error) bool {
	return errors.Is(err, xwindows.ERROR_BROKEN_PIPE) ||
		errors.Is(err, xwindows.ERROR_NO_DATA) ||
		errors.Is(err, xwindows.ERROR_PIPE_NOT_CONNECTED)
}
