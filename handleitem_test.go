package procpipe

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
)

// FuzzHandleItem checks the Windows handle item's encoding on any bytes:
// the size read from a head never panics and is either refused or in range,
// a whole item parses and encodes back to the same bytes, and every item
// appendHandleItem makes parses back to what went in. The seed corpus is in
// testdata/fuzz/FuzzHandleItem.
func FuzzHandleItem(f *testing.F) {
	f.Add(appendHandleItem(nil, 4242, []uint64{0x1a4}))
	f.Add(appendHandleItem(nil, 1, []uint64{0, 1<<64 - 1, 0x80000000}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= handleHeadSize {
			size, err := handleItemSize(b[:handleHeadSize])
			n := int(binary.BigEndian.Uint16(b[8:]))
			switch {
			case err != nil:
				if n >= 1 && n <= MaxFiles {
					t.Fatalf("count %d refused: %v", n, err)
				}
			case n < 1 || n > MaxFiles:
				t.Fatalf("count %d taken, size %d", n, size)
			case size != handleHeadSize+n*handleSize:
				t.Fatalf("count %d: size %d", n, size)
			case len(b) >= size:
				pid, vals := parseHandleItem(b[:size])
				if len(vals) != n {
					t.Fatalf("count %d: %d values", n, len(vals))
				}
				again := appendHandleItem(nil, pid, vals)
				// The mark is the caller's to check (filesNext).
				if !bytes.Equal(again[4:], b[4:size]) {
					t.Fatalf("item %x encodes back as %x", b[:size], again)
				}
			}
		}
		// b read as a process ID and values, as many as fit the limits.
		if len(b) < 4 {
			return
		}
		pid := binary.BigEndian.Uint32(b)
		var vals []uint64
		for rest := b[4:]; len(rest) >= 8 && len(vals) < MaxFiles; rest = rest[8:] {
			vals = append(vals, binary.BigEndian.Uint64(rest))
		}
		if len(vals) == 0 {
			return
		}
		item := appendHandleItem([]byte("before"), pid, vals)[len("before"):]
		if binary.BigEndian.Uint32(item) != handleMark {
			t.Fatalf("item %x does not start with the mark", item)
		}
		size, err := handleItemSize(item[:handleHeadSize])
		if err != nil || size != len(item) {
			t.Fatalf("item of %d values, %d bytes: size %d, %v", len(vals), len(item), size, err)
		}
		gotPID, got := parseHandleItem(item)
		if gotPID != pid || !slices.Equal(got, vals) {
			t.Fatalf("parsed (%d, %x); want (%d, %x)", gotPID, got, pid, vals)
		}
	})
}
