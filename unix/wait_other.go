//go:build unix && !linux

package unix

import "runtime"

// spinFor is Linux's retry before parking (see wait_linux.go); elsewhere it
// has not been measured, and a Read or Write that would block parks at once.
const spinFor = 0

func yield() { runtime.Gosched() }
