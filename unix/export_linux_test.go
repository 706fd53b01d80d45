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
