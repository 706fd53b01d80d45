package unix

// SetPipeNoWaitForTest turns the RWF_NOWAIT pipe calls on or off, as a
// kernel without them would, and returns the previous setting.
func SetPipeNoWaitForTest(on bool) bool { return pipeNoWait.Swap(on) }

// PipeNoWaitForTest reports whether pipes use RWF_NOWAIT: false once the
// kernel (or an emulator such as qemu-user) has refused it.
func PipeNoWaitForTest() bool { return pipeNoWait.Load() }
