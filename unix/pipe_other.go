//go:build unix && !linux

package unix

// tunePipe and tuneSocket are Linux's buffer sizing (see pipe_linux.go);
// darwin sizes its sockets in tune (sock_darwin.go).
func tunePipe(fd int)   {}
func tuneSocket(fd int) {}

// headerAliases is Linux's (see pipe_linux.go).
func headerAliases(h, p []byte) bool { return false }
