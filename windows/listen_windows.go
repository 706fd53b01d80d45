package windows

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/windows"
)

// A Listener accepts clients on a named pipe, \\.\pipe\<name>, with the same
// protection as a [Pair]: only the current user, no remote clients, and the
// first instance created with FILE_FLAG_FIRST_PIPE_INSTANCE, so Listen fails
// rather than share a name someone else holds.
type Listener struct {
	name    string
	closeEv windows.Handle // set by Close, to wake Accept

	mu      sync.Mutex // guards the fields below
	next    *os.File   // the instance the next client connects to
	err     error      // why there is no next instance, if Close is not why
	closed  bool
	accepts sync.Mutex // one Accept at a time owns next
}

// Listen creates the first instance of the pipe called name and returns a
// Listener on it.
func Listen(name string) (*Listener, error) {
	if !strings.HasPrefix(name, `\\.\pipe\`) {
		return nil, fmt.Errorf(`procpipe: %q is not a local pipe name (\\.\pipe\...)`, name)
	}
	f, err := createInstance(name, true)
	if err != nil {
		return nil, err
	}
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		f.Close()
		return nil, os.NewSyscallError("CreateEvent", err)
	}
	return &Listener{name: name, closeEv: ev, next: f}, nil
}

// createInstance creates an instance of the pipe called name; the first one
// must be the name's first.
func createInstance(name string, first bool) (*os.File, error) {
	sa, err := userOnly()
	if err != nil {
		return nil, err
	}
	name16, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, err
	}
	var flags uint32 = windows.PIPE_ACCESS_DUPLEX | windows.FILE_FLAG_OVERLAPPED
	if first {
		flags |= windows.FILE_FLAG_FIRST_PIPE_INSTANCE
	}
	h, err := windows.CreateNamedPipe(name16, flags,
		windows.PIPE_TYPE_BYTE|windows.PIPE_READMODE_BYTE|windows.PIPE_WAIT|windows.PIPE_REJECT_REMOTE_CLIENTS,
		windows.PIPE_UNLIMITED_INSTANCES, pipeBuffer, pipeBuffer, 0, sa)
	if err != nil {
		return nil, os.NewSyscallError("CreateNamedPipe", err)
	}
	return os.NewFile(uintptr(h), name), nil
}

// Accept waits for a client and returns the connected instance. After Close
// it returns an error matching [net.ErrClosed].
func (l *Listener) Accept() (*Conn, error) {
	l.accepts.Lock()
	defer l.accepts.Unlock()
	l.mu.Lock()
	f, closed, broken := l.next, l.closed, l.err
	l.mu.Unlock()
	switch {
	case closed || f == nil && broken == nil:
		return nil, net.ErrClosed
	case f == nil:
		return nil, broken
	}
	for {
		err := l.connect(f)
		if err == nil {
			break
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		// The instance may be dead: once a client has connected and
		// left before ConnectNamedPipe, that fails on it with
		// ERROR_NO_DATA for good, and clients would find it busy. A new
		// one keeps the Listener serving; after such a client, Accept
		// waits for the next. The new instance is made before the old
		// one closes, so that the name never goes without one (a Dial
		// would fail, and another process could take the name).
		dead := f
		var rerr error
		f, rerr = l.renew()
		dead.Close()
		switch {
		case rerr != nil:
			return nil, rerr
		case !errors.Is(err, windows.ERROR_NO_DATA):
			return nil, err
		}
	}
	// Make the next instance before handing this one out, so clients
	// find one waiting.
	if _, err := l.renew(); err != nil && !errors.Is(err, net.ErrClosed) {
		f.Close()
		return nil, err
	}
	return wrap(f, Duplex, true)
}

// renew makes the instance the next client connects to and returns it. If
// it cannot, later Accepts return why; after Close it returns
// net.ErrClosed.
func (l *Listener) renew() (*os.File, error) {
	next, err := createInstance(l.name, false)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err != nil:
		l.next, l.err = nil, err
		return nil, err
	case l.closed:
		next.Close()
		l.next = nil
		return nil, net.ErrClosed
	}
	l.next = next
	return next, nil
}

// connect waits until a client connects to f, or Close.
func (l *Listener) connect(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	err = rc.Control(func(h uintptr) { cerr = l.connectHandle(windows.Handle(h)) })
	if err != nil {
		return net.ErrClosed
	}
	return cerr
}

func (l *Listener) connectHandle(h windows.Handle) error {
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return os.NewSyscallError("CreateEvent", err)
	}
	defer windows.CloseHandle(ev)
	o := windows.Overlapped{HEvent: ev | 1} // off the runtime's completion port
	switch err = windows.ConnectNamedPipe(h, &o); err {
	case nil, windows.ERROR_PIPE_CONNECTED:
		return nil
	case windows.ERROR_IO_PENDING:
	default:
		return os.NewSyscallError("ConnectNamedPipe", err)
	}
	which, err := windows.WaitForMultipleObjects([]windows.Handle{ev, l.closeEv}, false, windows.INFINITE)
	if err != nil || which != windows.WAIT_OBJECT_0 {
		windows.CancelIoEx(h, &o)
	}
	var n uint32
	rerr := windows.GetOverlappedResult(h, &o, &n, true) // o stays in use until this returns
	switch {
	case err != nil:
		return os.NewSyscallError("WaitForMultipleObjects", err)
	case which != windows.WAIT_OBJECT_0:
		return net.ErrClosed
	case rerr != nil && rerr != windows.ERROR_PIPE_CONNECTED:
		return os.NewSyscallError("ConnectNamedPipe", rerr)
	}
	return nil
}

// Close stops listening: a blocked Accept returns, and the waiting instance
// is closed. Close may be called more than once.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	windows.SetEvent(l.closeEv)
	l.mu.Unlock()
	l.accepts.Lock() // wait for Accept to let go of next
	l.mu.Lock()
	if l.next != nil {
		l.next.Close()
		l.next = nil
	}
	l.mu.Unlock()
	l.accepts.Unlock()
	windows.CloseHandle(l.closeEv)
	return nil
}

// Dial connects to the pipe called name, waiting while all its instances are
// busy, until ctx is done.
func Dial(ctx context.Context, name string) (*Conn, error) {
	wait := time.Millisecond
	for {
		f, err := openClient(name, true)
		if err == nil {
			return wrap(f, Duplex, false)
		}
		if !errors.Is(err, windows.ERROR_PIPE_BUSY) {
			return nil, err
		}
		// Every instance is taken until the listener makes the next one.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}
