package windows

import (
	"errors"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/windows"
)

// statusPending is NTSTATUS STATUS_PENDING, the Internal field of an
// OVERLAPPED whose operation has not completed.
const statusPending = 0x103

// Wait waits until at least one of conns can be read at once (data waiting,
// or the peer gone), the event cancel (if not 0) is signalled, or timeout
// milliseconds pass (windows.INFINITE for no limit), and reports which conns
// are readable.
//
// It starts a zero-byte overlapped ReadFile on each pipe, which completes
// when data arrives without consuming it, and waits on one event that all of
// them signal: a single wait serves any number of Conns. The low bit of the
// event handle in each OVERLAPPED keeps the completions off the runtime's
// completion port, which owns the handles. Reads still pending at the end are
// cancelled and waited for before Wait returns.
func Wait(conns []*Conn, cancel windows.Handle, timeout uint32) ([]bool, error) {
	ready := make([]bool, len(conns))
	any := false
	for i, c := range conns {
		ok, err := c.Ready()
		if err != nil {
			return nil, err
		}
		ready[i] = ok
		any = any || ok
	}
	if any || timeout == 0 {
		return ready, nil
	}
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return nil, os.NewSyscallError("CreateEvent", err)
	}
	defer windows.CloseHandle(ev)

	handles := make([]windows.Handle, len(conns))
	ovs := make([]windows.Overlapped, len(conns))
	pending := make([]bool, len(conns))
	var waitErr error

	// Hold every handle (through Control) while reads may be in flight on
	// it, so a concurrent Close cannot recycle its value.
	var hold func(i int) error
	hold = func(i int) error {
		if i == len(conns) {
			waitErr = waitAll(handles, ovs, pending, ready, ev, cancel, timeout)
			return nil
		}
		var inner error
		err := conns[i].rc.Control(func(h uintptr) {
			handles[i] = windows.Handle(h)
			inner = hold(i + 1)
		})
		if err != nil {
			return conns[i].controlError("Wait", err)
		}
		return inner
	}
	if err := hold(0); err != nil {
		return nil, err
	}
	return ready, waitErr
}

func waitAll(handles []windows.Handle, ovs []windows.Overlapped, pending, ready []bool, ev, cancel windows.Handle, timeout uint32) error {
	var first error
	started := 0
	for i, h := range handles {
		ovs[i].HEvent = ev | 1
		err := windows.ReadFile(h, nil, nil, &ovs[i])
		switch {
		case err == nil:
			ready[i] = true
		case err == windows.ERROR_IO_PENDING:
			pending[i] = true
			started++
		case isErrnoGone(err):
			ready[i] = true
		default:
			first = os.NewSyscallError("ReadFile", err)
		}
		if first != nil || ready[i] {
			break
		}
	}
	if first == nil && started == len(handles) {
		objs := []windows.Handle{ev}
		if cancel != 0 {
			objs = append(objs, cancel)
		}
		if _, err := windows.WaitForMultipleObjects(objs, false, timeout); err != nil {
			first = os.NewSyscallError("WaitForMultipleObjects", err)
		}
	}
	// Cancel what is still pending and wait until every read has finished:
	// the OVERLAPPEDs must outlive their operations.
	for i, h := range handles {
		if pending[i] && !done(&ovs[i]) {
			windows.CancelIoEx(h, &ovs[i])
		}
	}
	for {
		windows.ResetEvent(ev)
		left := false
		for i := range handles {
			if !pending[i] {
				continue
			}
			if !done(&ovs[i]) {
				left = true
				continue
			}
			pending[i] = false
			var n uint32
			err := windows.GetOverlappedResult(handles[i], &ovs[i], &n, false)
			if err == nil || isErrnoGone(err) {
				ready[i] = true
			}
		}
		if !left {
			return first
		}
		// Every completion sets ev, and it was reset before the check.
		windows.WaitForSingleObject(ev, windows.INFINITE)
	}
}

func done(ov *windows.Overlapped) bool {
	return atomic.LoadUintptr(&ov.Internal) != statusPending
}

func isErrnoGone(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && isGone(errno)
}
