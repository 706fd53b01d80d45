package unix

// filesAt returns where, in a read of n bytes that brought descriptors, the
// byte they came with is. Linux's unix_stream_read_generic stops a read right
// after the buffer that carried descriptors, so it is the last byte read.
func filesAt(n int) int64 { return int64(n) - 1 }
