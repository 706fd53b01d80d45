//go:build unix

package procpipe

import (
	"context"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// waitReady waits with one poll(2) until some of conns are readable (or
// at once if now is true) and returns them. Each descriptor is held (through
// control) for the duration, so a concurrent Close cannot
// recycle its number under the poll. A pipe created for the call wakes the
// poll when ctx is done.
func waitReady(ctx context.Context, conns []*Conn, now bool) ([]*Conn, error) {
	fds := make([]unix.PollFd, len(conns), len(conns)+1)
	var wake [2]int
	if !now && ctx.Done() != nil {
		if err := cloexecPipe(&wake); err != nil {
			return nil, os.NewSyscallError("pipe", err)
		}
		defer unix.Close(wake[0])
		defer unix.Close(wake[1])
		fds = append(fds, unix.PollFd{Fd: int32(wake[0]), Events: unix.POLLIN})
		woke := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			unix.Write(wake[1], []byte{0})
			close(woke)
		})
		defer func() {
			if !stop() {
				<-woke // the write must finish before the pipe closes
			}
		}()
	}
	var (
		pollErr error
		hold    func(i int) error
	)
	hold = func(i int) error {
		if i == len(conns) {
			pollErr = pollAll(ctx, fds, now)
			return nil
		}
		var inner error
		err := control(conns[i].t, func(fd uintptr) {
			fds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
			inner = hold(i + 1)
		})
		if err != nil {
			return closedError("wait")
		}
		return inner
	}
	if err := hold(0); err != nil {
		return nil, err
	}
	if pollErr != nil {
		return nil, pollErr
	}
	var ready []*Conn
	for i, c := range conns {
		if fds[i].Revents != 0 {
			ready = append(ready, c)
		}
	}
	if len(ready) == 0 && !now {
		return nil, ctx.Err()
	}
	return ready, nil
}

// pollAll polls fds until one is ready (the last may be the wake-up pipe),
// ctx is done, or at once if now is true.
func pollAll(ctx context.Context, fds []unix.PollFd, now bool) error {
	for {
		timeout := -1
		if now {
			timeout = 0
		} else if d, ok := ctx.Deadline(); ok {
			timeout = int(max(0, (time.Until(d)+time.Millisecond-1)/time.Millisecond))
		}
		n, err := unix.Poll(fds, timeout)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("poll", err)
		}
		if n > 0 || now || ctx.Err() != nil {
			return nil
		}
	}
}

func cloexecPipe(p *[2]int) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := unix.Pipe(p[:]); err != nil {
		return err
	}
	unix.CloseOnExec(p[0])
	unix.CloseOnExec(p[1])
	return nil
}
