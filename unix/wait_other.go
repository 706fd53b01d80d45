//go:build unix && !linux

package unix

import "runtime"

// spinFor is Linux's retry before parking (see wait_linux.go); elsewhere it
// has not been measured, and a Read or Write that would block parks at once.
const spinFor = 0

// yieldFirst is Linux's (see wait_linux.go); elsewhere yield is not measured.
const yieldFirst = false

func yield() { runtime.Gosched() }
