//go:build unix

package procpipe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// sockName turns Python's "\x00name" form of an abstract address into Go's
// "@name".
func sockName(address string) string {
	if rest, ok := strings.CutPrefix(address, "\x00"); ok {
		return "@" + rest
	}
	return address
}

// unixListener is a listening Unix socket.
type unixListener struct {
	ln      net.Listener
	cleanup func() // removes the socket file, if still ours
	cfg     *Config
}

func (l *unixListener) accept() (*Conn, error) {
	nc, err := l.ln.Accept()
	if err != nil {
		return nil, err
	}
	return l.cfg.netConn(nc)
}

func (l *unixListener) close() error {
	err := l.ln.Close()
	if l.cleanup != nil {
		l.cleanup()
	}
	return err
}

func listen(address string, cfg *Config) (listener, error) {
	ln, cleanup, err := listenUnix(address)
	if err != nil {
		return nil, err
	}
	return &unixListener{ln: ln, cleanup: cleanup, cfg: cfg}, nil
}

func listenUnix(address string) (net.Listener, func(), error) {
	name := sockName(address)
	if name == "" || name == "@" {
		return nil, nil, errors.New("empty address")
	}
	abstract := name[0] == '@'
	if !abstract {
		if err := removeStale(name); err != nil {
			return nil, nil, err
		}
	}
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close() // FileListener works on a copy
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		return nil, nil, os.NewSyscallError("bind", err)
	}
	var cleanup func()
	if !abstract {
		// Nobody can connect before listen(2), so restricting the file
		// here leaves no window where others could.
		if err := os.Chmod(name, 0o600); err != nil {
			os.Remove(name)
			return nil, nil, err
		}
		st, err := os.Lstat(name)
		if err != nil {
			os.Remove(name)
			return nil, nil, err
		}
		cleanup = func() {
			// Remove the file only if it is still the one we made.
			if now, err := os.Lstat(name); err == nil && os.SameFile(st, now) {
				os.Remove(name)
			}
		}
	}
	fail := func(err error) (net.Listener, func(), error) {
		if cleanup != nil {
			cleanup()
		}
		return nil, nil, err
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return fail(os.NewSyscallError("listen", err))
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return fail(os.NewSyscallError("fcntl", err))
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return fail(err)
	}
	return ln, cleanup, nil
}

// removeStale removes a socket file at path that no listener serves. A live
// socket or a file of another kind is an error, never removed.
func removeStale(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is in use by a live listener: %w", path, syscall.EADDRINUSE)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("checking whether %s is stale: %w", path, err)
	}
	return os.Remove(path)
}

func dial(ctx context.Context, address string, cfg *Config) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", sockName(address))
	if err != nil {
		return nil, err
	}
	return cfg.netConn(nc)
}

// netConn makes a Conn of a connection from the net package.
func (cfg *Config) netConn(nc net.Conn) (*Conn, error) {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("procpipe: unexpected connection type %T", nc)
	}
	f, err := uc.File() // a close-on-exec copy
	uc.Close()
	if err != nil {
		return nil, err
	}
	return cfg.NewConn(f)
}
