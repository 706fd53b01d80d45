package procpipe_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/procpipe/procpipe"
	"github.com/procpipe/procpipe/windows"
	xwindows "golang.org/x/sys/windows"
)

// The Windows tests' children join the registry TestMain dispatches.
func init() {
	for name, f := range childFuncs {
		children[name] = f
	}
}

var childFuncs = map[string]func(*procpipe.Conn) error{
	// windows-echo answers each message with "echo: " and the message,
	// until EOF.
	"windows-echo": func(c *procpipe.Conn) error {
		for {
			var msg string
			if err := c.Recv(&msg); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			if err := c.Send("echo: " + msg); err != nil {
				return err
			}
		}
	},
	// windows-block says "ready" and waits for a message that never
	// comes.
	"windows-block": func(c *procpipe.Conn) error {
		if err := c.Send("ready"); err != nil {
			return err
		}
		var msg string
		return c.Recv(&msg)
	},
	"windows-exit7": func(*procpipe.Conn) error {
		os.Exit(7)
		return nil
	},
	"windows-fail": func(*procpipe.Conn) error { return errors.New("failing on purpose") },
	// windows-stdin holds no end; it reads its standard input to EOF.
	"windows-stdin": func(*procpipe.Conn) error {
		_, err := io.Copy(io.Discard, os.Stdin)
		return err
	},
	// windows-take gets "<pid> <handle>": the value of a handle that
	// process pid duplicated into this one, the sending end of a pipe
	// whose server is pid. It checks that the pipe says so, and writes
	// "hello through a passed handle" into it.
	"windows-take": func(c *procpipe.Conn) error {
		var msg string
		if err := c.Recv(&msg); err != nil {
			return err
		}
		var pid, h uint64
		if _, err := fmt.Sscan(msg, &pid, &h); err != nil {
			return fmt.Errorf("parsing %q: %v", msg, err)
		}
		w, err := windows.NewConn(os.NewFile(uintptr(h), "passed"))
		if err != nil {
			return err
		}
		defer w.Close()
		if w.Kind() != windows.WriteOnly {
			return fmt.Errorf("the passed handle is of kind %v, want WriteOnly", w.Kind())
		}
		peer, err := w.PeerPID()
		if err != nil {
			return err
		}
		if uint64(peer) != pid {
			return fmt.Errorf("PeerPID of the passed end = %d, want the sender, %d", peer, pid)
		}
		_, err = w.Write([]byte("hello through a passed handle"))
		return err
	},
	// windows-open gets a pipe name, tries to open it, and answers
	// "opened" or the error.
	"windows-open": func(c *procpipe.Conn) error {
		var name string
		if err := c.Recv(&name); err != nil {
			return err
		}
		name16, err := xwindows.UTF16PtrFromString(name)
		if err != nil {
			return err
		}
		h, err := xwindows.CreateFile(name16, xwindows.GENERIC_READ|xwindows.GENERIC_WRITE, 0, nil, xwindows.OPEN_EXISTING, 0, 0)
		if err == nil {
			xwindows.CloseHandle(h)
			return c.Send("opened")
		}
		return c.Send("error " + strconv.Itoa(int(err.(xwindows.Errno))) + ": " + strings.TrimSpace(err.Error()))
	},
}
