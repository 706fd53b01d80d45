package procpipe

import (
	"encoding/binary"
	"fmt"
)

// The handle item that passes Windows handles (see doc.go, "Passing
// files"): the int32 -2, which starts no valid frame, the sender's process
// ID (uint32), the number of handles (uint16, 1 to MaxFiles) and each
// handle's value in the sender (uint64), big-endian. Only Windows sends and
// reads it; its encoding lives here, on every system, so that it is fuzzed
// wherever the tests run.
const (
	handleMark     = 0xfffffffe // int32(-2)
	handleHeadSize = 4 + 4 + 2
	handleSize     = 8
)

// appendHandleItem appends to b the item passing the handles with values
// vals (1 to MaxFiles of them) out of process pid.
func appendHandleItem(b []byte, pid uint32, vals []uint64) []byte {
	b = binary.BigEndian.AppendUint32(b, handleMark)
	b = binary.BigEndian.AppendUint32(b, pid)
	b = binary.BigEndian.AppendUint16(b, uint16(len(vals)))
	for _, v := range vals {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

// handleItemSize returns the size of the item whose first handleHeadSize
// bytes are head, or an error if the count of handles there is out of range
// (then nobody knows where the item ends).
func handleItemSize(head []byte) (int, error) {
	n := int(binary.BigEndian.Uint16(head[8:handleHeadSize]))
	if n < 1 || n > MaxFiles {
		return 0, fmt.Errorf("%d handles, want 1 to %d", n, MaxFiles)
	}
	return handleHeadSize + n*handleSize, nil
}

// parseHandleItem returns the sender's process ID and the handle values of
// item, a whole item whose size handleItemSize gave.
func parseHandleItem(item []byte) (pid uint32, vals []uint64) {
	pid = binary.BigEndian.Uint32(item[4:8])
	vals = make([]uint64, (len(item)-handleHeadSize)/handleSize)
	for i := range vals {
		vals[i] = binary.BigEndian.Uint64(item[handleHeadSize+i*handleSize:])
	}
	return pid, vals
}
