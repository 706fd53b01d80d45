package procpipe_test

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"testing"
	"unsafe"

	"github.com/procpipe/procpipe"
	xwindows "golang.org/x/sys/windows"
)

var (
	procGetHandleInformation = xwindows.NewLazySystemDLL("kernel32.dll").NewProc("GetHandleInformation")
	procNtQueryObject        = xwindows.NewLazySystemDLL("ntdll.dll").NewProc("NtQueryObject")
)

// objectType returns the type name of the object h refers to ("File",
// "Process", "Thread", ...), from NtQueryObject(ObjectTypeInformation), which
// needs no access right on h; "" if h is not open.
func objectType(h uintptr) string {
	const objectTypeInformation = 2
	var buf [512]uint64 // OBJECT_TYPE_INFORMATION, starting with its name
	var n uint32
	r, _, _ := procNtQueryObject.Call(h, objectTypeInformation, uintptr(unsafe.Pointer(&buf[0])), unsafe.Sizeof(buf), uintptr(unsafe.Pointer(&n)))
	if r != 0 {
		return ""
	}
	name := (*xwindows.NTUnicodeString)(unsafe.Pointer(&buf[0]))
	return name.String()
}

// openHandles returns the number of this process's open handles to files
// (pipes included) and processes: what passing handles opens. Wine 8's
// GetProcessHandleCount always says 0, so this asks GetHandleInformation
// about every value below 2^16 a handle can take (multiples of 4). Threads,
// events and the like are left out: the runtime makes them as it starts
// threads, which long system calls such as this scan's can make it do at
// any time.
func openHandles() int {
	n := 0
	for v := uintptr(4); v < 1<<16; v += 4 {
		var flags uint32
		if r, _, _ := procGetHandleInformation.Call(v, uintptr(unsafe.Pointer(&flags))); r == 0 {
			continue
		}
		if typ := objectType(v); typ == "File" || typ == "Process" {
			n++
		}
	}
	return n
}

// countFDs counts this process's open handles (Unix tests share the name,
// where it counts descriptors).
func countFDs() (int, error) { return openHandles(), nil }

// fdCount counts this process's open handles.
func fdCount(testing.TB) int { return openHandles() }

// handleOf returns the value of f's handle, which stays valid while f is
// open.
func handleOf(t *testing.T, f *os.File) uint64 {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var h uintptr
	if err := rc.Control(func(fd uintptr) { h = fd }); err != nil {
		t.Fatal(err)
	}
	return uint64(h)
}

// handleItem is a handle item as the wire form defines it.
func handleItem(pid uint32, count uint16, handles ...uint64) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0xfffffffe)
	b = binary.BigEndian.AppendUint32(b, pid)
	b = binary.BigEndian.AppendUint16(b, count)
	for _, h := range handles {
		b = binary.BigEndian.AppendUint64(b, h)
	}
	return b
}

func TestWindowsReceivedHandlesNotInheritable(t *testing.T) {
	a, b := pipe(t, nil)
	f := contentFile(t, "x")
	defer f.Close()
	wait := sendAsync(func() error { return a.SendFiles(f) })
	got, err := b.RecvFiles()
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	defer closeAll(got)
	h := handleOf(t, got[0])
	if h == handleOf(t, f) {
		t.Fatalf("received handle %#x is the sender's own", h)
	}
	var flags uint32
	if r, _, err := procGetHandleInformation.Call(uintptr(h), uintptr(unsafe.Pointer(&flags))); r == 0 {
		t.Fatal(err)
	}
	if flags&xwindows.HANDLE_FLAG_INHERIT != 0 {
		t.Fatalf("received handle flags = %#x; want it not inheritable", flags)
	}
}

// TestWindowsHandleItemOnTheWire reads what SendFiles writes, playing the
// receiver by hand: the item names this process and handles valid in it,
// and SendFiles waits for the acknowledgement even with NoFileAck, then
// closes its private duplicates.
func TestWindowsHandleItemOnTheWire(t *testing.T) {
	a, b := pipe(t, &procpipe.Config{NoFileAck: true})
	files, want := contentFiles(t, "wire", 2)
	defer closeAll(files)
	before := fdCount(t)
	done := make(chan error, 1)
	go func() { done <- a.SendFiles(files...) }()

	raw := procpipe.FileForTest(b)
	item := make([]byte, 10+2*8)
	if _, err := io.ReadFull(raw, item); err != nil {
		t.Fatal(err)
	}
	if mark := binary.BigEndian.Uint32(item); mark != 0xfffffffe {
		t.Fatalf("item starts %#x; want int32(-2)", mark)
	}
	if pid := binary.BigEndian.Uint32(item[4:]); pid != uint32(os.Getpid()) {
		t.Fatalf("item names process %d; want the sender, %d", pid, os.Getpid())
	}
	if n := binary.BigEndian.Uint16(item[8:]); n != 2 {
		t.Fatalf("item counts %d handles; want 2", n)
	}
	select {
	case err := <-done:
		t.Fatalf("SendFiles returned %v before the acknowledgement", err)
	default:
	}
	self := xwindows.CurrentProcess()
	for i := range 2 {
		v := xwindows.Handle(binary.BigEndian.Uint64(item[10+8*i:]))
		if uint64(v) == handleOf(t, files[i]) {
			t.Errorf("handle %d is the caller's own, not a private duplicate", i)
		}
		var dup xwindows.Handle
		if err := xwindows.DuplicateHandle(self, v, self, &dup, 0, false, xwindows.DUPLICATE_SAME_ACCESS); err != nil {
			t.Fatalf("handle %d (%#x) is not valid in the sender: %v", i, v, err)
		}
		got, err := readFiles([]*os.File{os.NewFile(uintptr(dup), "dup")})
		if err != nil || got[0] != want[i] {
			t.Fatalf("handle %d reads %q, %v; want %q", i, got, err, want[i])
		}
	}
	if _, err := raw.Write([]byte{'A'}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := fdCount(t); n != before {
		t.Fatalf("%d handles open after the acknowledgement; want %d (private duplicates closed)", n, before)
	}
}

// TestWindowsCorruptHandleItems feeds RecvFiles handle items no correct
// sender writes: each gives a clear error and leaves no handle open.
func TestWindowsCorruptHandleItems(t *testing.T) {
	good := contentFile(t, "good")
	defer good.Close()
	self := uint32(os.Getpid())
	h := handleOf(t, good)
	const bogus = 0x3ffffffc // far above any handle this test opens

	// Items after which the stream goes on: the receiver acknowledges.
	for _, c := range []struct {
		name    string
		item    []byte
		syscall string // the call the error names; "" for none
	}{
		{"valid", handleItem(self, 1, h), ""},
		{"no such process", handleItem(math.MaxUint32-3, 1, h), "OpenProcess"},
		{"invalid handle", handleItem(self, 1, bogus), "DuplicateHandle"},
		{"second handle invalid", handleItem(self, 2, h, bogus), "DuplicateHandle"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := pipe(t, &procpipe.Config{NoFileAck: true})
			before := fdCount(t)
			write := rawWriter(t, a)
			write(c.item)
			files, err := b.RecvFiles()
			var se *os.SyscallError
			switch {
			case c.syscall == "" && err != nil:
				t.Fatalf("RecvFiles: %v", err)
			case c.syscall == "":
				if got, err := readFiles(files); err != nil || !equalStrings(got, []string{"good"}) {
					t.Fatalf("received file reads %q, %v", got, err)
				}
			case !errors.As(err, &se) || se.Syscall != c.syscall || files != nil:
				t.Fatalf("RecvFiles = %v, %v; want an *os.SyscallError from %s", files, err, c.syscall)
			default:
				t.Logf("RecvFiles: %v", err)
			}
			// Acknowledged, even with NoFileAck and after an error.
			ack := make([]byte, 1)
			if _, err := io.ReadFull(procpipe.FileForTest(a), ack); err != nil || ack[0] != 'A' {
				t.Fatalf("read %q, %v from the receiver; want the acknowledgement", ack, err)
			}
			if n := fdCount(t); n != before {
				t.Fatalf("%d handles open after RecvFiles; want %d", n, before)
			}
			if err := a.Send("next"); err != nil {
				t.Fatal(err)
			}
			var s string
			if err := b.Recv(&s); err != nil || s != "next" {
				t.Fatalf("Recv after the item = %q, %v", s, err)
			}
		})
	}

	// Items that leave the stream out of sync.
	for _, c := range []struct {
		name string
		item []byte
	}{
		{"count 0", handleItem(self, 0)},
		{"count over MaxFiles", handleItem(self, procpipe.MaxFiles+1, h)},
		{"count 65535", handleItem(self, math.MaxUint16, h)},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := pipe(t, nil)
			before := fdCount(t)
			rawWriter(t, a)(c.item)
			if files, err := b.RecvFiles(); !errors.Is(err, procpipe.ErrBroken) || files != nil {
				t.Fatalf("RecvFiles = %v, %v; want ErrBroken", files, err)
			}
			if _, err := b.RecvBytes(); !errors.Is(err, procpipe.ErrBroken) {
				t.Fatalf("RecvBytes after = %v; want ErrBroken", err)
			}
			if n := fdCount(t); n != before {
				t.Fatalf("%d handles open after RecvFiles; want %d", n, before)
			}
		})
	}

	// A body cut short by the sender's end closing.
	for _, cut := range []int{6, 10, 10 + 8 + 3} {
		a, b := pipe(t, nil)
		before := fdCount(t)
		rawWriter(t, a)(handleItem(self, 2, h, h)[:cut])
		a.Close()
		if files, err := b.RecvFiles(); err != io.ErrUnexpectedEOF || files != nil {
			t.Fatalf("RecvFiles of an item cut at %d bytes = %v, %v; want io.ErrUnexpectedEOF", cut, files, err)
		}
		if n := fdCount(t); n != before-1 {
			t.Fatalf("item cut at %d: %d handles open; want %d (the sender's end closed)", cut, n, before-1)
		}
	}
}

// TestWindowsHandlesHeldUntilAck has the peer send a message before its
// acknowledgement: SendFiles stops waiting, as on Unix, but the handles it
// sent stay valid until a receiving call consumes the acknowledgement.
func TestWindowsHandlesHeldUntilAck(t *testing.T) {
	a, b := pipe(t, nil)
	f := contentFile(t, "held")
	defer f.Close()
	before := fdCount(t)
	wait := sendAsync(func() error { return a.SendFiles(f) })
	item := make([]byte, 10+8)
	if _, err := io.ReadFull(procpipe.FileForTest(b), item); err != nil {
		t.Fatal(err)
	}
	if err := b.Send("first"); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatalf("SendFiles when a message comes before the acknowledgement: %v", err)
	}
	self := xwindows.CurrentProcess()
	var dup xwindows.Handle
	v := xwindows.Handle(binary.BigEndian.Uint64(item[10:]))
	if err := xwindows.DuplicateHandle(self, v, self, &dup, 0, false, xwindows.DUPLICATE_SAME_ACCESS); err != nil {
		t.Fatalf("the handle sent is not valid after SendFiles returned: %v", err)
	}
	if got, err := readFiles([]*os.File{os.NewFile(uintptr(dup), "dup")}); err != nil || got[0] != "held" {
		t.Fatalf("the handle sent reads %q, %v", got, err)
	}
	if n := fdCount(t); n != before+1 {
		t.Fatalf("%d handles open before the acknowledgement; want %d (the private duplicate)", n, before+1)
	}
	if _, err := procpipe.FileForTest(b).Write([]byte{'A'}); err != nil {
		t.Fatal(err)
	}
	if err := b.Send("second"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"first", "second"} {
		var s string
		if err := a.Recv(&s); err != nil || s != want {
			t.Fatalf("Recv = %q, %v; want %q", s, err, want)
		}
	}
	if n := fdCount(t); n != before {
		t.Fatalf("%d handles open after the acknowledgement was consumed; want %d", n, before)
	}
}

// TestWindowsCloseReleasesHeldHandles closes a sender whose item was never
// acknowledged. The peer pulls the handles by value, and Windows reuses
// handle values at once, so the sender may close its private duplicates
// only when the peer can no longer duplicate them:
//
//   - peer gone: the peer's Conn closed after taking the item off the
//     stream without duplicating anything (a closed Conn never duplicates
//     again), and the sender met the end of the stream. Close releases the
//     private duplicate.
//   - peer alive: it holds the item and may duplicate its value at any
//     time. Close leaves the private duplicate open (a leak until the
//     process exits), so that the value still names the file sent and not
//     whatever handle this process opens next.
func TestWindowsCloseReleasesHeldHandles(t *testing.T) {
	// sendItem starts a SendFiles on a and reads its item off b's pipe
	// by hand, as a peer that has not yet duplicated anything; it returns
	// the value sent and the wait for SendFiles.
	sendItem := func(t *testing.T, a, b *procpipe.Conn, f *os.File) (xwindows.Handle, func() error) {
		t.Helper()
		wait := sendAsync(func() error { return a.SendFiles(f) })
		item := make([]byte, 10+8)
		if _, err := io.ReadFull(procpipe.FileForTest(b), item); err != nil {
			t.Fatal(err)
		}
		return xwindows.Handle(binary.BigEndian.Uint64(item[10:])), wait
	}

	t.Run("peer gone", func(t *testing.T) {
		a, b := pipe(t, nil)
		f := contentFile(t, "x")
		defer f.Close()
		before := fdCount(t)
		_, wait := sendItem(t, a, b, f)
		b.Close()
		// SendFiles, waiting for the acknowledgement, meets the end of
		// the stream: a has seen the peer's end gone.
		if err := wait(); !errors.Is(err, io.EOF) {
			t.Fatalf("SendFiles when the peer closes = %v; want io.EOF", err)
		}
		if n := fdCount(t); n != before {
			t.Fatalf("%d handles open before Close; want %d (the peer's end closed, the private duplicate held)", n, before)
		}
		a.Close()
		if n := fdCount(t); n != before-2 {
			t.Fatalf("%d handles open after Close; want %d (both ends and the private duplicate closed)", n, before-2)
		}
	})

	t.Run("peer alive", func(t *testing.T) {
		a, b := pipe(t, nil)
		f := contentFile(t, "x")
		defer f.Close()
		before := fdCount(t)
		v, wait := sendItem(t, a, b, f)
		a.Close()
		if err := wait(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("SendFiles when its Conn closes = %v; want net.ErrClosed", err)
		}
		if n := fdCount(t); n != before {
			t.Fatalf("%d handles open after Close; want %d (the sender's end closed, the private duplicate kept for the peer)", n, before)
		}
		// Open a file, as this process might after Close: it must not
		// take the value the peer holds.
		other := contentFile(t, "unrelated")
		defer other.Close()
		// The peer duplicates the value late, as b's RecvFiles would
		// (both ends are in this process): it still gets the file sent.
		self := xwindows.CurrentProcess()
		var dup xwindows.Handle
		if err := xwindows.DuplicateHandle(self, v, self, &dup, 0, false, xwindows.DUPLICATE_SAME_ACCESS); err != nil {
			t.Fatalf("the value sent (%#x) is not valid after the sender's Close: %v", v, err)
		}
		if got, err := readFiles([]*os.File{os.NewFile(uintptr(dup), "dup")}); err != nil || got[0] != "x" {
			t.Fatalf("the value sent (%#x), duplicated after the sender's Close, reads %q, %v; want the file sent", v, got, err)
		}
		// The private duplicate is left open until the process exits.
	})
}

func TestWindowsSendSocketRefused(t *testing.T) {
	a, b := pipe(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = a.SendConn(l.(*net.TCPListener))
	if !errors.Is(err, procpipe.ErrSocketHandle) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("SendConn of a TCP listener = %v; want ErrSocketHandle", err)
	}
	if ok, err := b.Poll(0); ok || err != nil {
		t.Fatalf("after a refused socket, Poll = %v, %v; want nothing sent", ok, err)
	}
}

// TestWindowsPassTempFileToChild passes a regular file, whose position the
// duplicate shares.
func TestWindowsPassTempFileToChild(t *testing.T) {
	// Not t.TempDir: under Wine 8, os.RemoveAll fails on the files in it
	// ("Invalid function"), while os.Remove works.
	f, err := os.CreateTemp("", "procpipe-passed-*.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.WriteString("temp file content"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	conn, p := startChild(t, "files-read")
	if err := conn.SendFiles(f); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := conn.Recv(&got); err != nil || !equalStrings(got, []string{"temp file content"}) {
		t.Fatalf("child read %q, %v", got, err)
	}
	conn.Close()
	if err := p.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// TestWindowsHandleCounter checks that the leak checks' counter sees the
// kinds of handle a leak would leave: files, pipes and processes.
func TestWindowsHandleCounter(t *testing.T) {
	before := openHandles()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	p, err := xwindows.OpenProcess(xwindows.PROCESS_DUP_HANDLE, false, uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if n := openHandles(); n != before+4 {
		t.Errorf("%d handles counted with a pipe, a file and a process open; want %d", n, before+4)
	}
	r.Close()
	w.Close()
	f.Close()
	xwindows.CloseHandle(p)
	if n := openHandles(); n != before {
		t.Errorf("%d handles counted after closing them; want %d", n, before)
	}
}
