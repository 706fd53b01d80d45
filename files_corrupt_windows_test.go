package procpipe_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/procpipe/procpipe"
	xwindows "golang.org/x/sys/windows"
)

// These tests play a peer that writes raw bytes where SendFiles would write
// a handle item, and check that the receiver answers each with a clear
// error or the files named, without a panic, a hang (every wait is bounded
// by a deadline), a leaked handle or an allocation the bytes do not pay for.

// rawEnd returns the file under c, for a test that plays c's side by hand,
// with a read deadline of patience so that no read of it hangs the test.
func rawEnd(t *testing.T, c *procpipe.Conn) *os.File {
	t.Helper()
	f := procpipe.FileForTest(c)
	if err := f.SetReadDeadline(time.Now().Add(patience)); err != nil {
		t.Fatal(err)
	}
	return f
}

// bounded sets c's read deadline to patience from now.
func bounded(t *testing.T, c *procpipe.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(patience)); err != nil {
		t.Fatal(err)
	}
}

// expectAck reads one byte from raw and fails unless it is the
// acknowledgement.
func expectAck(t *testing.T, raw *os.File) {
	t.Helper()
	ack := make([]byte, 1)
	if _, err := io.ReadFull(raw, ack); err != nil || ack[0] != 'A' {
		t.Fatalf("read %q, %v from the receiver; want the acknowledgement", ack, err)
	}
}

// frameOf is a frame of payload p with a short header.
func frameOf(p string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)
}

// TestWindowsHandleItemStalled writes part of an item and stops: RecvFiles
// and RecvBytes must give up at their deadline having consumed nothing, so
// that once the rest arrives the item is received whole.
func TestWindowsHandleItemStalled(t *testing.T) {
	for _, cut := range []int{1, 2, 3, 4, 5, 8, 9, 10, 11, 17} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			good := contentFile(t, "good")
			defer good.Close()
			item := handleItem(uint32(os.Getpid()), 1, handleOf(t, good))
			a, b := pipe(t, &procpipe.Config{ReadBufferSize: 12})
			raw := rawEnd(t, a)
			if _, err := raw.Write(item[:cut]); err != nil {
				t.Fatal(err)
			}
			for _, recv := range []struct {
				name string
				call func() error
			}{
				{"RecvFiles", func() error {
					files, err := b.RecvFiles()
					if files != nil {
						t.Errorf("RecvFiles returned files %v with %v", files, err)
					}
					return err
				}},
				{"RecvBytes", func() error { _, err := b.RecvBytes(); return err }},
				{"RecvBytesInto", func() error { _, err := b.RecvBytesInto(make([]byte, 64)); return err }},
			} {
				want := os.ErrDeadlineExceeded
				if recv.name != "RecvFiles" && cut >= 4 {
					want = procpipe.ErrFilesNext // the mark is enough to tell
				}
				if err := b.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
					t.Fatal(err)
				}
				if err := recv.call(); !errors.Is(err, want) {
					t.Fatalf("%s on %d bytes of an item = %v; want %v", recv.name, cut, err, want)
				}
			}
			bounded(t, b)
			if _, err := raw.Write(append(item[cut:], frameOf("after")...)); err != nil {
				t.Fatal(err)
			}
			files, err := b.RecvFiles()
			if err != nil {
				t.Fatalf("RecvFiles once the rest arrived: %v", err)
			}
			if got, err := readFiles(files); err != nil || !equalStrings(got, []string{"good"}) {
				t.Fatalf("received file reads %q, %v", got, err)
			}
			expectAck(t, raw)
			if got, err := b.RecvBytes(); err != nil || string(got) != "after" {
				t.Fatalf("RecvBytes after the item = %q, %v", got, err)
			}
		})
	}
}

// TestWindowsHandleItemPeerGoneMidItem closes the sender's end after part
// of an item: every receiving call reports the cut stream, and none
// duplicates anything.
func TestWindowsHandleItemPeerGoneMidItem(t *testing.T) {
	good := contentFile(t, "good")
	defer good.Close()
	item := handleItem(uint32(os.Getpid()), 2, handleOf(t, good), handleOf(t, good))
	for _, cut := range []int{1, 3, 4, 9, 10, 18, 25} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			a, b := pipe(t, nil)
			bounded(t, b)
			rawWriter(t, a)(item[:cut])
			a.Close()
			_, err := b.RecvBytes()
			if cut < 4 {
				if err != io.ErrUnexpectedEOF {
					t.Fatalf("RecvBytes on %d bytes of an item, then the end = %v; want io.ErrUnexpectedEOF", cut, err)
				}
			} else if !errors.Is(err, procpipe.ErrFilesNext) {
				t.Fatalf("RecvBytes on %d bytes of an item, then the end = %v; want ErrFilesNext", cut, err)
			}
			if files, err := b.RecvFiles(); err != io.ErrUnexpectedEOF || files != nil {
				t.Fatalf("RecvFiles on %d bytes of an item, then the end = %v, %v; want io.ErrUnexpectedEOF", cut, files, err)
			}
			if _, err := b.RecvBytes(); err != io.ErrUnexpectedEOF {
				t.Fatalf("RecvBytes after = %v; want io.ErrUnexpectedEOF", err)
			}
			if ok, err := b.Poll(0); !ok && err == nil {
				t.Fatalf("Poll after the cut = %v, %v; want something to report", ok, err)
			}
		})
	}
}

// TestWindowsCloseDuringPartialItem closes the receiver while RecvFiles
// waits for the rest of an item.
func TestWindowsCloseDuringPartialItem(t *testing.T) {
	good := contentFile(t, "good")
	defer good.Close()
	item := handleItem(uint32(os.Getpid()), 1, handleOf(t, good))
	for _, cut := range []int{2, 6, 12} {
		a, b := pipe(t, nil)
		bounded(t, b)
		rawWriter(t, a)(item[:cut])
		done := make(chan error, 1)
		go func() {
			files, err := b.RecvFiles()
			closeAll(files)
			done <- err
		}()
		// Close may come before RecvFiles takes the receive lock or
		// while it waits for the rest: either way it returns
		// net.ErrClosed, and the deadline only bounds a failure.
		b.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("RecvFiles on %d bytes of an item, closed = %v; want net.ErrClosed", cut, err)
		}
	}
}

// TestWindowsHandleItemAbsurdCounts checks that a count read from the wire
// costs no more than the bytes that actually arrive, with a receive buffer
// smaller than the item.
func TestWindowsHandleItemAbsurdCounts(t *testing.T) {
	self := uint32(os.Getpid())
	for _, c := range []struct {
		name  string
		count uint16
		body  int // handle bytes sent after the head
		want  error
	}{
		{"65535, no body", math.MaxUint16, 0, procpipe.ErrBroken},
		{"65535, 1 KiB body", math.MaxUint16, 1 << 10, procpipe.ErrBroken},
		{"254", procpipe.MaxFiles + 1, 0, procpipe.ErrBroken},
		{"0", 0, 16, procpipe.ErrBroken},
		{"MaxFiles, no body", procpipe.MaxFiles, 0, os.ErrDeadlineExceeded},
		{"MaxFiles, half the body", procpipe.MaxFiles, procpipe.MaxFiles * 4, os.ErrDeadlineExceeded},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := pipe(t, &procpipe.Config{ReadBufferSize: 12})
			item := append(handleItem(self, c.count), make([]byte, c.body)...)
			rawWriter(t, a)(item)
			if err := b.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			files, err := b.RecvFiles()
			runtime.ReadMemStats(&after)
			if !errors.Is(err, c.want) || files != nil {
				t.Fatalf("RecvFiles = %v, %v; want %v", files, err, c.want)
			}
			// The most an item of MaxFiles handles needs, and some for
			// the error.
			if n := after.TotalAlloc - before.TotalAlloc; n > 8<<10 {
				t.Fatalf("RecvFiles of an item counting %d handles, %d bytes sent, allocated %d bytes", c.count, len(item), n)
			}
			t.Logf("%v; %d bytes allocated", err, after.TotalAlloc-before.TotalAlloc)
		})
	}
}

// TestWindowsHandleItemOddValues names handles no correct sender names: the
// receiver either duplicates what the value names in the sender (a value
// is the sender's to choose, and Windows' pseudo-handles and ignored tag
// bits name real objects) or fails with an *os.SyscallError; either way
// the item is acknowledged, the stream goes on, and nothing stays open.
func TestWindowsHandleItemOddValues(t *testing.T) {
	good := contentFile(t, "good")
	defer good.Close()
	h := handleOf(t, good)
	proc, err := xwindows.OpenProcess(xwindows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer xwindows.CloseHandle(proc)
	event, err := xwindows.CreateEvent(nil, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer xwindows.CloseHandle(event)
	self := uint32(os.Getpid())
	exited := exitedPID(t)
	cases := []struct {
		name string
		pid  uint32
		h    uint64
	}{
		{"value 0", self, 0},
		{"pseudo current process", self, math.MaxUint64},
		{"pseudo current thread", self, math.MaxUint64 - 1},
		{"32-bit -1", self, math.MaxUint32},
		{"high bits", self, 1<<32 | h},
		{"tag bits", self, h | 3},
		{"a process", self, uint64(proc)},
		{"an event", self, uint64(event)},
		{"pid 0", 0, h},
		{"pid 4", 4, h},
		{"exited process", exited, h},
		{"pid max", math.MaxUint32, h},
	}
	a, b := pipe(t, nil)
	raw := rawEnd(t, a)
	before := fdCount(t)
	for _, c := range cases {
		bounded(t, b)
		if _, err := raw.Write(append(handleItem(c.pid, 1, c.h), frameOf("next")...)); err != nil {
			t.Fatal(err)
		}
		files, err := b.RecvFiles()
		var se *os.SyscallError
		switch {
		case err == nil && (len(files) != 1 || files[0] == nil):
			t.Fatalf("%s: RecvFiles = %v, nil; want one file", c.name, files)
		case err != nil && (!errors.As(err, &se) || files != nil):
			t.Fatalf("%s: RecvFiles = %v, %v; want files or an *os.SyscallError", c.name, files, err)
		case err == nil:
			t.Logf("%s: received %s (%s)", c.name, files[0].Name(), objectType(uintptr(handleOf(t, files[0]))))
		default:
			t.Logf("%s: %v", c.name, err)
		}
		closeAll(files)
		expectAck(t, raw)
		if got, err := b.RecvBytes(); err != nil || string(got) != "next" {
			t.Fatalf("%s: RecvBytes after the item = %q, %v", c.name, got, err)
		}
	}
	if n := fdCount(t); n != before {
		t.Fatalf("%d handles open after the odd items; want %d", n, before)
	}
}

// exitedPID returns the ID of a process that has exited (the ID may be
// reused by the time it is used, which the test tolerates).
func exitedPID(t *testing.T) uint32 {
	t.Helper()
	c, p := startChildNoCleanup(t, "windows-exit7")
	pid := uint32(p.Pid())
	p.Wait()
	c.Close()
	return pid
}

// TestWindowsItemInsteadOfAck answers SendFiles with a handle item of the
// peer's own instead of the acknowledgement: SendFiles stops waiting, the
// item is received as files, and the late acknowledgement is consumed.
func TestWindowsItemInsteadOfAck(t *testing.T) {
	a, b := pipe(t, nil)
	mine := contentFile(t, "mine")
	defer mine.Close()
	theirs := contentFile(t, "theirs")
	defer theirs.Close()
	bounded(t, a)
	raw := rawEnd(t, b)
	wait := sendAsync(func() error { return a.SendFiles(mine) })
	item := make([]byte, 18)
	if _, err := io.ReadFull(raw, item); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Write(handleItem(uint32(os.Getpid()), 1, handleOf(t, theirs))); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatalf("SendFiles answered by an item: %v", err)
	}
	files, err := a.RecvFiles()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readFiles(files); err != nil || !equalStrings(got, []string{"theirs"}) {
		t.Fatalf("received %q, %v", got, err)
	}
	expectAck(t, raw)
	if _, err := raw.Write(append([]byte{'A'}, frameOf("end")...)); err != nil {
		t.Fatal(err)
	}
	if got, err := a.RecvBytes(); err != nil || string(got) != "end" {
		t.Fatalf("RecvBytes after the late acknowledgement = %q, %v", got, err)
	}
}

// TestWindowsItemOrGarbageAtRecvFiles gives RecvFiles frames that start
// with 0xff but are not items.
func TestWindowsItemOrGarbageAtRecvFiles(t *testing.T) {
	long := append([]byte{0xff, 0xff, 0xff, 0xff}, binary.BigEndian.AppendUint64(nil, 2)...)
	long = append(long, "hi"...)
	a, b := pipe(t, nil)
	bounded(t, b)
	rawWriter(t, a)(long)
	if files, err := b.RecvFiles(); !errors.Is(err, procpipe.ErrMessageNext) || files != nil {
		t.Fatalf("RecvFiles before a long-header frame = %v, %v; want ErrMessageNext", files, err)
	}
	if got, err := b.RecvBytes(); err != nil || string(got) != "hi" {
		t.Fatalf("RecvBytes of the long-header frame = %q, %v", got, err)
	}
	rawWriter(t, a)([]byte{0xff, 0xff, 0xff, 0xfd, 0, 0, 0, 0})
	files, err := b.RecvFiles()
	t.Logf("RecvFiles before a header of -3: %v, %v", files, err)
	if files != nil || err == nil {
		t.Fatalf("RecvFiles before a header of -3 = %v, %v; want an error", files, err)
	}
	_, err = b.RecvBytes()
	var pe *procpipe.ProtocolError
	if !errors.As(err, &pe) && !errors.Is(err, procpipe.ErrBroken) {
		t.Fatalf("RecvBytes of a header of -3 = %v; want a protocol error", err)
	}
}

// TestWindowsRandomHandleStreams feeds receivers random mixes of frames,
// valid items and corrupt ones, in random chunks, through buffers of
// several sizes, and receives until the stream ends or breaks: each call
// must return, with files or an error, and nothing may stay open.
func TestWindowsRandomHandleStreams(t *testing.T) {
	good := contentFile(t, "")
	defer good.Close()
	h := handleOf(t, good)
	self := uint32(os.Getpid())
	before := fdCount(t)
	outcomes := map[string]int{}
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 14))
		var stream []byte
		for range 1 + rng.IntN(12) {
			switch rng.IntN(8) {
			case 0, 1:
				stream = append(stream, frameOf(string(make([]byte, rng.IntN(40))))...)
			case 2, 3:
				n := 1 + rng.IntN(4)
				hs := make([]uint64, n)
				for i := range hs {
					hs[i] = h
				}
				stream = append(stream, handleItem(self, uint16(n), hs...)...)
			case 4: // a count that does not match the body
				n := rng.IntN(6)
				hs := make([]uint64, rng.IntN(6))
				for i := range hs {
					hs[i] = h
				}
				stream = append(stream, handleItem(self, uint16(n), hs...)...)
			case 5: // random values and pid
				pid := self
				if rng.IntN(2) == 0 {
					pid = rng.Uint32()
				}
				stream = append(stream, handleItem(pid, 1, uint64(rng.IntN(1<<12))*4+0x10000)...)
			case 6: // random bytes after the mark
				stream = binary.BigEndian.AppendUint32(stream, 0xfffffffe)
				for range rng.IntN(30) {
					stream = append(stream, byte(rng.Uint32()))
				}
			case 7: // an acknowledgement nobody expects, then a frame
				stream = append(stream, 'A')
			}
		}
		if rng.IntN(3) == 0 {
			stream = stream[:rng.IntN(len(stream)+1)]
		}
		bufSize := []int{0, 12, 13, 20, 64}[rng.IntN(5)]
		func() {
			a, b := pipe(t, &procpipe.Config{ReadBufferSize: bufSize, MaxMessageSize: 1 << 20})
			defer a.Close()
			defer b.Close()
			raw := procpipe.FileForTest(a)
			go func() {
				for rest := stream; len(rest) > 0; {
					n := min(len(rest), 1+rng.IntN(24))
					if _, err := raw.Write(rest[:n]); err != nil {
						return
					}
					rest = rest[n:]
				}
				a.Close()
			}()
			bounded(t, b)
			for range 100 {
				files, err := b.RecvFiles()
				closeAll(files)
				if err == procpipe.ErrMessageNext {
					_, err = b.RecvBytes()
				}
				outcomes[outcome(err)]++
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("seed %d: a receiving call hung: %v", seed, err)
				}
				if err == io.EOF || err == io.ErrUnexpectedEOF || errors.Is(err, procpipe.ErrBroken) {
					return
				}
				var pe *procpipe.ProtocolError
				var tl *procpipe.TooLargeError
				if errors.As(err, &pe) || errors.As(err, &tl) {
					return
				}
			}
			t.Fatalf("seed %d: the stream did not end in 100 calls", seed)
		}()
	}
	t.Logf("outcomes: %v", outcomes)
	if n := fdCount(t); n != before {
		t.Fatalf("%d handles open after the random streams; want %d", n, before)
	}
}

// TestWindowsSendFilesAfterCorruptItem: once a corrupt item has left the
// receiving side out of sync, no acknowledgement can ever be read on the
// Conn, so SendFiles must not send an item: the private duplicates it
// would hold for the peer could never be released, not even by Close
// (which releases them only once the end of the stream has been read).
func TestWindowsSendFilesAfterCorruptItem(t *testing.T) {
	for _, corrupt := range []struct {
		name  string
		bytes []byte
	}{
		{"count 0", handleItem(uint32(os.Getpid()), 0)},
		{"count 65535", handleItem(uint32(os.Getpid()), math.MaxUint16)},
		{"header -3", []byte{0xff, 0xff, 0xff, 0xfd}},
	} {
		t.Run(corrupt.name, func(t *testing.T) {
			a, b := pipe(t, nil)
			bounded(t, b)
			rawWriter(t, a)(corrupt.bytes)
			if _, err := b.RecvFiles(); err == nil {
				t.Fatal("RecvFiles of a corrupt item succeeded")
			}
			// RecvFiles leaves a header of -3 for RecvBytes, which
			// reports it; the call after says the stream is broken.
			for i := 0; ; i++ {
				_, err := b.RecvBytes()
				if errors.Is(err, procpipe.ErrBroken) {
					break
				}
				if i == 2 {
					t.Fatalf("RecvBytes after a corrupt item = %v; want ErrBroken", err)
				}
			}
			f := contentFile(t, "x")
			defer f.Close()
			before := fdCount(t)
			if err := b.SendFiles(f); !errors.Is(err, procpipe.ErrBroken) {
				t.Fatalf("SendFiles on a Conn whose receiving side is out of sync = %v; want ErrBroken", err)
			}
			raw := procpipe.FileForTest(a)
			raw.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, err := raw.Read(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("the peer read %d bytes, %v after the refused SendFiles; want nothing sent", n, err)
			}
			b.Close()
			if n := fdCount(t); n != before-1 {
				t.Fatalf("%d handles open after Close; want %d (b's end closed, no private duplicate held)", n, before-1)
			}
		})
	}
}

// TestWindowsHandleItemInHandshake has a client answer a keyed Listener's
// challenge with a handle item: the handshake fails, nothing is
// duplicated, and the Listener goes on serving.
func TestWindowsHandleItemInHandshake(t *testing.T) {
	addr := testAddr(t)
	l := listen(t, addr, &procpipe.Config{AuthKey: []byte("key"), HandshakeTimeout: patience})
	errs := make(chan error, 1)
	go serveEcho(l, errs)
	c, err := procpipe.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	good := contentFile(t, "good")
	defer good.Close()
	rawWriter(t, c)(handleItem(uint32(os.Getpid()), 1, handleOf(t, good)))
	if err := <-errs; !errors.Is(err, procpipe.ErrAuthentication) || strings.Contains(err.Error(), "RecvFiles") {
		t.Fatalf("Accept of a client answering with a handle item = %v; want an authentication error that does not point to RecvFiles", err)
	}
	d, err := procpipe.Dial(addr, &procpipe.Config{AuthKey: []byte("key")})
	if err != nil {
		t.Fatalf("Dial after the refused client: %v", err)
	}
	d.Close()
}

// outcome names the kind of a receiving call's result, for the log.
func outcome(err error) string {
	var (
		se *os.SyscallError
		pe *procpipe.ProtocolError
		tl *procpipe.TooLargeError
	)
	switch {
	case err == nil:
		return "ok"
	case err == io.EOF, err == io.ErrUnexpectedEOF:
		return err.Error()
	case errors.Is(err, procpipe.ErrBroken):
		return "ErrBroken"
	case errors.Is(err, procpipe.ErrFilesNext):
		return "ErrFilesNext"
	case errors.As(err, &se):
		return se.Syscall
	case errors.As(err, &pe):
		return "ProtocolError"
	case errors.As(err, &tl):
		return "TooLarge"
	}
	return err.Error()
}
