//go:build unix && !linux

package unix

// filesAt returns where, in a read of n bytes that brought descriptors, the
// byte they came with is. The BSDs' (and darwin's) soreceive stops at a
// record boundary, and a record that carries control data begins with it, so
// it is the first byte read.
func filesAt(n int) int64 { return 0 }
