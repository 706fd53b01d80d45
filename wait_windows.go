package procpipe

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/procpipe/procpipe/windows"
	xwindows "golang.org/x/sys/windows"
)

// waitReady waits with one wait on one event until some of conns are
// readable (or at once if now is true) and returns them; see windows.Wait.
func waitReady(ctx context.Context, conns []*Conn, now bool) ([]*Conn, error) {
	ends := make([]*windows.Conn, len(conns))
	for i, c := range conns {
		w, ok := c.t.(*windows.Conn)
		if !ok {
			return nil, errors.New("procpipe: wait: not a pipe end")
		}
		ends[i] = w
	}
	timeout := uint32(xwindows.INFINITE)
	var cancel xwindows.Handle
	if now {
		timeout = 0
	} else if ctx.Done() != nil {
		if d, ok := ctx.Deadline(); ok {
			timeout = uint32(max(0, (time.Until(d)+time.Millisecond-1)/time.Millisecond))
		}
		ev, err := xwindows.CreateEvent(nil, 1, 0, nil)
		if err != nil {
			return nil, os.NewSyscallError("CreateEvent", err)
		}
		defer xwindows.CloseHandle(ev)
		set := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			xwindows.SetEvent(ev)
			close(set)
		})
		defer func() {
			if !stop() {
				<-set // SetEvent must finish before the event closes
			}
		}()
		cancel = ev
	}
	flags, err := windows.Wait(ends, cancel, timeout)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	var ready []*Conn
	for i, c := range conns {
		if flags[i] {
			ready = append(ready, c)
		}
	}
	if len(ready) == 0 && !now {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if ctx.Done() == nil || timeout != xwindows.INFINITE {
			// The wait timed out a little before ctx's deadline: report
			// it as the deadline.
			return nil, context.DeadlineExceeded
		}
	}
	return ready, nil
}
