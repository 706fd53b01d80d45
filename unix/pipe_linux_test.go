package unix_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"unsafe"

	ppunix "github.com/procpipe/procpipe/unix"
)

// at returns n bytes of buf that begin off bytes into a 4 KiB page.
func at(buf []byte, off, n int) []byte {
	start := (off - int(uintptr(unsafe.Pointer(&buf[0])))) & 4095
	return buf[start : start+n]
}

// TestHeaderAliases checks when a header and a large payload are written to
// a pipe in two calls (see headerAliases): when the payload would land a few
// bytes past its own place modulo 4 KiB.
func TestHeaderAliases(t *testing.T) {
	buf := make([]byte, 80<<10)
	for _, tc := range []struct {
		hdr, off, size int
		split          bool
	}{
		{4, 0, 64 << 10, true},     // Go's page-aligned payload: copied 4 bytes ahead
		{4, 4, 64 << 10, true},     // level with itself: split, it lands 4 bytes behind
		{4, 4092, 64 << 10, true},  // 8 bytes ahead
		{4, 4072, 64 << 10, true},  // 28 bytes ahead
		{4, 4068, 64 << 10, false}, // 32 bytes ahead: copied at full speed
		{4, 16, 64 << 10, false},   // behind (C's malloc'd buffers)
		{12, 0, 64 << 10, true},    // a long header
		{4, 0, 16<<10 - 1, false},  // too small to pay for a system call
		{4, 0, 16 << 10, true},     // from splitHeaderAbove
		{4096, 0, 64 << 10, false}, // not a header
	} {
		got := ppunix.HeaderAliasesForTest(make([]byte, tc.hdr), at(buf, tc.off, tc.size))
		if got != tc.split {
			t.Errorf("header of %d bytes, payload of %d at page offset %d: split %v, want %v", tc.hdr, tc.size, tc.off, got, tc.split)
		}
	}
}

// TestWritevSplitHeader writes headers and page-aligned payloads, which go
// to the pipe in two calls, and checks that the reader gets every byte in
// order.
func TestWritevSplitHeader(t *testing.T) {
	r, w := newPair(t, "pipe")
	buf := make([]byte, 80<<10)
	payload := at(buf, 0, 64<<10)
	var want bytes.Buffer
	done := make(chan error, 1)
	go func() {
		defer w.Close()
		for i := range 20 {
			hdr := bytes.Repeat([]byte{byte(i)}, 1+i%8)
			for j := range payload {
				payload[j] = byte(i*31 + j)
			}
			if !ppunix.HeaderAliasesForTest(hdr, payload) {
				done <- fmt.Errorf("message %d: header of %d bytes not split from its payload", i, len(hdr))
				return
			}
			want.Write(hdr)
			want.Write(payload)
			if n, err := w.Writev([][]byte{hdr, payload}); err != nil || n != int64(len(hdr)+len(payload)) {
				done <- fmt.Errorf("message %d: Writev = %d, %v", i, n, err)
				return
			}
		}
		done <- nil
	}()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("read %d bytes that differ from the %d written", len(got), want.Len())
	}
}
