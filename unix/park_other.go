//go:build unix && !linux

package unix

import (
	"os"
	"time"
)

// waits is Linux's (see park_linux.go): elsewhere a Conn's calls wait on the
// runtime poller, through its os.File.
type waits struct{}

const (
	dirRead  = 0
	dirWrite = 1
)

// rightsFlags are writeRights' sendmsg flags (see park_linux.go).
const rightsFlags = sendFlags

func newFile(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) }

func (c *Conn) waitRead(fn func(fd uintptr) bool) error  { return c.rc.Read(fn) }
func (c *Conn) waitWrite(fn func(fd uintptr) bool) error { return c.rc.Write(fn) }

func (c *Conn) setDeadlineAt(d int, t time.Time) error {
	if d == dirRead {
		return c.f.SetReadDeadline(t)
	}
	return c.f.SetWriteDeadline(t)
}

// closeWaits and noWait are Linux's (see park_linux.go).
func (waits) closeWaits() {}

func (waits) noWait(d int) {}
