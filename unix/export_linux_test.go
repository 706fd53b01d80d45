package unix

import "golang.org/x/sys/unix"

// SetPipeNoWaitForTest turns the RWF_NOWAIT pipe calls on or off, as a
// kernel without them would, and returns the previous setting.
func SetPipeNoWaitForTest(on bool) bool { return pipeNoWait.Swap(on) }

// PlainPipeIOForTest returns the error with which the kernel (or an emulator)
// refused RWF_NOWAIT on c, making its reads or writes fall back to readv or
// writev, or nil.
func (c *Conn) PlainPipeIOForTest() error {
	for _, e := range []unix.Errno{c.rop.vec.plain, c.wop.vec.plain} {
		if e != 0 {
			return e
		}
	}
	return nil
}

// DrainedForTest reports whether c's last read took all the kernel held.
func (c *Conn) DrainedForTest() bool { return c.rop.drained }

// FirstReadForTest makes c's first attempt at a Read into p, as Read does,
// and reports whether it was made and completed.
func (c *Conn) FirstReadForTest(p []byte) bool {
	_, done, _ := c.firstRead(p, nil)
	return done
}

// FirstWriteForTest makes c's first attempt at writing p, as Write does, and
// reports whether it was made and completed.
func (c *Conn) FirstWriteForTest(p []byte) bool {
	_, _, done, _ := c.firstWrite([][]byte{p})
	return done
}
