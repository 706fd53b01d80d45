package procpipe

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"

	"github.com/procpipe/procpipe/frame"
	"github.com/procpipe/procpipe/windows"
	xwindows "golang.org/x/sys/windows"
)

// filesAlwaysAcked is true: the receiver duplicates the handles out of the
// sender, which must keep them open until it has, so Config.NoFileAck has no
// effect on Windows.
const filesAlwaysAcked = true

// passerOf returns a filePasser for t if it can carry files: a duplex pipe,
// which carries the acknowledgement back.
func passerOf(t transport) filePasser {
	if c, ok := t.(*windows.Conn); ok && c.Kind() == windows.Duplex {
		return handlePasser{}
	}
	return nil
}

func noPasserError() error { return ErrNotSocket }

// handlePasser passes handles in the pull model of CPython's
// reduction.DupHandle: the sender writes its process ID and the values of
// private duplicates of the handles; the receiver opens the sender with
// PROCESS_DUP_HANDLE, duplicates each handle into itself and acknowledges;
// the sender then closes its private duplicates. The peer's process ID from
// the pipe (GetNamedPipeClientProcessId) would name whoever opened the pipe,
// not a child the end was handed to, so the sender cannot push duplicates
// into the receiver; its own process ID is always right.
type handlePasser struct{}

func (handlePasser) filesNext(rd *frame.Reader) (bool, error) {
	b, err := rd.PeekByte()
	if err != nil || b != 0xff {
		return false, err // the first byte of a frame or an acknowledgement
	}
	head, err := rd.Peek(4)
	if err != nil {
		return false, err
	}
	return binary.BigEndian.Uint32(head) == handleMark, nil
}

func (handlePasser) takeFiles(op string, rd *frame.Reader, gate *pullGate) ([]*os.File, bool, error) {
	head, err := rd.Peek(handleHeadSize)
	if err != nil {
		return nil, false, err
	}
	size, err := handleItemSize(head)
	if err != nil {
		// Nobody knows where the item ends: the stream is out of sync.
		return nil, false, rd.Break(fmt.Errorf("procpipe: %s: malformed handle item: %w: %w", op, err, ErrBroken))
	}
	item, err := rd.Peek(size)
	if err != nil {
		return nil, false, err
	}
	pid, vals := parseHandleItem(item)
	handles := make([]xwindows.Handle, len(vals))
	for i, v := range vals {
		handles[i] = xwindows.Handle(v)
		if uint64(handles[i]) != v {
			return nil, false, rd.Break(fmt.Errorf("procpipe: %s: malformed handle item: handle value %#x does not fit a handle: %w", op, v, ErrBroken))
		}
	}
	if err := rd.Discard(len(item)); err != nil { // buffered: cannot fail
		return nil, false, err
	}
	// Inside the gate, so that the sender, once it sees this end closed,
	// may close the values it sent without this end duplicating a reused
	// one.
	if !gate.enter() {
		return nil, true, closedError(op)
	}
	dups, err := duplicateFrom(op, pid, handles)
	gate.leave()
	if err != nil {
		return nil, true, err
	}
	// Outside the gate: os.NewFile asks the system about each handle, which
	// Go's own source warns can block on a handle with synchronous I/O
	// pending, and Close must not wait for that.
	files := make([]*os.File, len(dups))
	for i, dup := range dups {
		files[i] = os.NewFile(uintptr(dup), fmt.Sprintf("handle %#x of process %d", handles[i], pid))
	}
	return files, true, nil
}

// duplicateFrom duplicates the handles of process pid into this process,
// not inheritable, and returns the duplicates. On error it closes those it
// made.
func duplicateFrom(op string, pid uint32, handles []xwindows.Handle) ([]xwindows.Handle, error) {
	proc, err := xwindows.OpenProcess(xwindows.PROCESS_DUP_HANDLE, false, pid)
	if err != nil {
		return nil, fmt.Errorf("procpipe: %s: opening the sending process %d: %w", op, pid, os.NewSyscallError("OpenProcess", err))
	}
	defer xwindows.CloseHandle(proc)
	dups := make([]xwindows.Handle, 0, len(handles))
	for i, h := range handles {
		var dup xwindows.Handle
		// Without DUPLICATE_CLOSE_SOURCE: the sender closes its own.
		err := xwindows.DuplicateHandle(proc, h, xwindows.CurrentProcess(), &dup, 0, false, xwindows.DUPLICATE_SAME_ACCESS)
		if err != nil {
			for _, d := range dups {
				xwindows.CloseHandle(d)
			}
			return nil, fmt.Errorf("procpipe: %s: handle %d of %d (%#x in process %d): %w", op, i+1, len(handles), h, pid, os.NewSyscallError("DuplicateHandle", err))
		}
		dups = append(dups, dup)
	}
	return dups, nil
}

// writeFiles makes private duplicates of the handles, so that the values
// sent stay valid until the receiver has duplicated them, whatever the
// caller does with its files meanwhile, and writes the item. The returned
// release closes the private duplicates.
func (handlePasser) writeFiles(wr *frame.Writer, conns []syscall.RawConn, before func() error) (func(), error) {
	dups := make([]xwindows.Handle, 0, len(conns))
	release := func() {
		for _, h := range dups {
			xwindows.CloseHandle(h)
		}
	}
	for i, rc := range conns {
		var (
			dup  xwindows.Handle
			derr error
		)
		err := rc.Control(func(h uintptr) { dup, derr = privateDuplicate(xwindows.Handle(h)) })
		if err == nil {
			err = derr
		}
		if err != nil {
			release()
			return nil, fmt.Errorf("procpipe: handle %d of %d to send: %w", i+1, len(conns), err)
		}
		dups = append(dups, dup)
	}
	vals := make([]uint64, len(dups))
	for i, h := range dups {
		vals[i] = uint64(h)
	}
	item := appendHandleItem(make([]byte, 0, handleHeadSize+len(vals)*handleSize), xwindows.GetCurrentProcessId(), vals)
	if before != nil {
		if err := before(); err != nil {
			release()
			return nil, err
		}
	}
	if err := wr.WriteRaw(item); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// soType is Winsock's SO_TYPE, which x/sys/windows does not name.
const soType = 0x1008

// privateDuplicate duplicates h within this process, not inheritable. It
// refuses sockets: Windows documents DuplicateHandle as unsupported for them
// (WSADuplicateSocket is the way, and needs the receiver's process ID).
func privateDuplicate(h xwindows.Handle) (xwindows.Handle, error) {
	if _, err := xwindows.GetsockoptInt(h, xwindows.SOL_SOCKET, soType); err == nil {
		return 0, ErrSocketHandle
	}
	var dup xwindows.Handle
	self := xwindows.CurrentProcess()
	if err := xwindows.DuplicateHandle(self, h, self, &dup, 0, false, xwindows.DUPLICATE_SAME_ACCESS); err != nil {
		return 0, os.NewSyscallError("DuplicateHandle", err)
	}
	return dup, nil
}

// enter reports whether duplicating may start; if so the caller calls
// leave when it is done.
func (g *pullGate) enter() bool {
	g.mu.Lock()
	if g.shut {
		g.mu.Unlock()
		return false
	}
	return true
}

func (g *pullGate) leave() { g.mu.Unlock() }
