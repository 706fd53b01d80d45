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
// a pipe in two calls (see headerAliases): when in one the payload would
// land a few bytes past its own place modulo 4 KiB, and alone it would not.
func TestHeaderAliases(t *testing.T) {
	buf := make([]byte, 80<<10)
	for _, tc := range []struct {
		hdr, off, size int
		split          bool
	}{
		{4, 0, 64 << 10, true},     // Go's page-aligned payload: 4 bytes ahead
		{4, 1, 64 << 10, true},     // 3 ahead
		{4, 4, 64 << 10, false},    // level with itself
		{4, 16, 64 << 10, false},   // behind (C's malloc'd buffers)
		{4, 4092, 64 << 10, false}, // 8 ahead, but alone it would be 4 ahead
		{12, 0, 64 << 10, true},    // a long header
		{40, 4, 64 << 10, false},   // 36 ahead: copied at full speed
		{4, 0, 16<<10 - 1, false},  // too small to pay for a system call
		{4, 0, 16 << 10, true},     // from splitHeaderAbove
	} {
		got := ppunix.HeaderAliasesForTest(make([]byte, tc.hdr), at(buf, tc.off, tc.size))
		if got != tc.split {
			t.Errorf("header of %d bytes, payload of %d at page offset %d: split %v, want %v", tc.hdr, tc.size, tc.off, got, tc.split)
		}
	}
}

// TestWritevSplitHeader writes headers and page-aligned payloads, which go
// to the pipe in two calls, and checks that the reader gets every byte in
// order: first into a pipe with room, then into a full one, where the
// header goes at once and the payload waits for room.
func TestWritevSplitHeader(t *testing.T) {
	r, w := newPair(t, "pipe")
	buf := make([]byte, 80<<10)
	payload := at(buf, 0, 64<<10)
	var want bytes.Buffer
	msg := func(i int) [][]byte {
		hdr := bytes.Repeat([]byte{byte(i)}, 1+i%8)
		for j := range payload {
			payload[j] = byte(i*31 + j)
		}
		want.Write(hdr)
		want.Write(payload)
		return [][]byte{hdr, payload}
	}
	splits := ppunix.HeaderSplitsForTest()
	done := make(chan error, 1)
	go func() {
		for i := range 20 {
			bufs := msg(i)
			if n, err := w.Writev(bufs); err != nil || n != int64(len(bufs[0])+len(bufs[1])) {
				done <- fmt.Errorf("message %d: Writev = %d, %v", i, n, err)
				return
			}
		}
		done <- nil
	}()
	total := 0
	for i := range 20 {
		total += 1 + i%8 + len(payload)
	}
	got := make([]byte, total)
	_, err := io.ReadFull(r, got)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("read %d bytes (%v) that differ from the %d written", len(got), err, want.Len())
	}
	if d := ppunix.HeaderSplitsForTest() - splits; d != 20 {
		t.Errorf("%d headers written apart from their payloads, want 20", d)
	}

	// A full pipe, but for a page.
	if r.PlainPipeIOForTest() != nil {
		return // no TryWrite to fill it with
	}
	want.Reset()
	chunk := make([]byte, 4096)
	for i := 0; ; i++ {
		chunk[0] = byte(i)
		n, ok := w.TryWrite(chunk)
		if !ok {
			break
		}
		want.Write(chunk[:n])
	}
	if _, err := io.ReadFull(r, chunk); err != nil || !bytes.Equal(chunk, want.Next(4096)) {
		t.Fatalf("first page of a full pipe: %v", err)
	}
	bufs := msg(20)
	go func() {
		_, err := w.Writev(bufs)
		done <- err
	}()
	got = make([]byte, want.Len())
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("what was read after a full pipe differs from what was written")
	}
}
