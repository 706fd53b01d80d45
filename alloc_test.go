// Linux only: elsewhere the transports use x/sys calls (sendmsg, recvmsg)
// and os.File I/O that allocate; see unix/iov_other.go.

//go:build linux && !race

package procpipe_test

import (
	"testing"

	"github.com/procpipe/procpipe"
)

// TestSteadyStateAllocs checks that sending and receiving raw messages
// allocate nothing once a Conn is warm, on both kinds of ends.
func TestSteadyStateAllocs(t *testing.T) {
	for _, duplex := range []bool{true, false} {
		r, w, err := procpipe.Pipe(duplex)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		msg := make([]byte, 64)
		buf := make([]byte, 64)
		batch := [][]byte{msg, msg, msg}
		got := testing.AllocsPerRun(100, func() {
			if err := w.SendBytes(msg); err != nil {
				t.Fatal(err)
			}
			if n, err := r.RecvBytesInto(buf); err != nil || n != len(msg) {
				t.Fatal(n, err)
			}
			if _, err := w.SendBytesBatch(batch); err != nil {
				t.Fatal(err)
			}
			for range batch {
				if _, err := r.RecvBytesInto(buf); err != nil {
					t.Fatal(err)
				}
			}
		})
		if got != 0 {
			t.Errorf("duplex=%v: %v allocations per send and receive; want 0", duplex, got)
		}
	}
}
