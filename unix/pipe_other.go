//go:build unix && !linux

package unix

import "os"

// tunePipe and tuneSocket are Linux's buffer sizing (see pipe_linux.go);
// darwin sizes its sockets in tune (sock_darwin.go).
func tunePipe(fd int)   {}
func tuneSocket(fd int) {}

// headerAliases is Linux's (see pipe_linux.go).
func headerAliases(h, p []byte) bool { return false }

// ownFile and file are Linux's (see pipe_linux.go): elsewhere a Conn keeps
// the open file it was given, and File returns it.
func ownFile(fd int, kind Kind) (int, bool) { return fd, false }

func (c *Conn) file() *os.File { return c.f }
