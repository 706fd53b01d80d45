//go:build unix

package unix

import (
	"encoding/binary"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzParseRights checks parseRights, which reads the descriptors out of
// the control messages of a receive, on any bytes: it never panics; where
// x/sys's parser takes the bytes as well-formed control messages, both find
// the same messages and descriptors; and SCM_RIGHTS messages built from the input's
// bytes, cut short at any length as the kernel cuts a control buffer that is
// too small, give back exactly the descriptors whose four bytes arrived
// whole. The seed corpus is in testdata/fuzz/FuzzParseRights.
func FuzzParseRights(f *testing.F) {
	f.Add(unix.UnixRights(3), uint16(0))
	f.Add(append(unix.UnixRights(3, 4, 5), unix.UnixRights(6)...), uint16(30))
	f.Fuzz(func(t *testing.T, oob []byte, cut uint16) {
		got := parseRights(oob)
		if msgs, err := unix.ParseSocketControlMessage(oob); err == nil {
			var want []int
			for _, m := range msgs {
				if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
					continue
				}
				// Whole descriptors only. (x/sys's ParseUnixRights
				// panics on data that is not a multiple of four bytes.)
				for d := m.Data; len(d) >= 4; d = d[4:] {
					want = append(want, int(int32(binary.NativeEndian.Uint32(d))))
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("parseRights(%x) = %v; x/sys finds %v", oob, got, want)
			}
		}

		// The input's bytes as descriptor numbers, in messages of up to
		// three each, as a peer sending several batches would.
		var fds []int32
		for rest := oob; len(rest) >= 4; rest = rest[4:] {
			fds = append(fds, int32(binary.NativeEndian.Uint32(rest)))
		}
		var built []byte
		var whole []int // per byte of built: the descriptors whole up to there
		hdr := unix.CmsgLen(0)
		for rest := fds; len(rest) > 0; {
			m := rest[:min(3, len(rest))]
			rest = rest[len(m):]
			ints := make([]int, len(m))
			for i, fd := range m {
				ints[i] = int(fd)
			}
			msg := unix.UnixRights(ints...)
			done := 0
			if len(whole) > 0 {
				done = whole[len(whole)-1]
			}
			for i := range msg {
				// Through byte i of this message (i+1 bytes): how many
				// of its descriptors are whole.
				whole = append(whole, done+min(len(m), max(0, i+1-hdr)/4))
			}
			built = append(built, msg...)
		}
		if len(built) == 0 {
			return
		}
		all := make([]int, len(fds))
		for i, fd := range fds {
			all[i] = int(fd)
		}
		if got := parseRights(built); !slices.Equal(got, all) {
			t.Fatalf("parseRights of messages carrying %v = %v", all, got)
		}
		n := int(cut) % (len(built) + 1)
		want := 0
		if n > 0 {
			want = whole[n-1]
		}
		if got := parseRights(built[:n]); !slices.Equal(got, all[:want]) {
			t.Fatalf("parseRights of messages carrying %v cut to %d of %d bytes = %v; want %v", all, n, len(built), got, all[:want])
		}
	})
}
