package procpipe_test

// Fault and abuse tests with real processes: a peer killed in the middle of a
// message, a peer that stops reading, a peer that sends garbage, goroutines
// left behind, and a soak through a real child. The Unix-only ones (fd
// counts, zombies) are in fault_unix_test.go.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procpipe/procpipe"
	"github.com/procpipe/procpipe/frame"
)

// childMidFrame writes, bypassing the framing, the header of a frame of
// os.Args[1] bytes (in the long form if os.Args[3] is "long") and only
// os.Args[2] bytes of its payload, then says "written" on standard output and
// waits to be killed.
func childMidFrame(conn *procpipe.Conn) error {
	announce, err1 := strconv.ParseUint(os.Args[1], 10, 64)
	part, err2 := strconv.Atoi(os.Args[2])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	var b []byte
	if len(os.Args) > 3 && os.Args[3] == "long" {
		b = binary.BigEndian.AppendUint32(b, 0xffffffff)
		b = binary.BigEndian.AppendUint64(b, announce)
	} else {
		b = frame.AppendHeader(b, announce)
	}
	b = append(b, pattern(part)...)
	if _, err := procpipe.FileForTest(conn).Write(b); err != nil {
		return err
	}
	// The bytes are in the kernel's buffer before the parent hears this.
	if _, err := fmt.Println("written"); err != nil {
		return err
	}
	_, err := conn.RecvBytes() // the parent never sends: wait for SIGKILL
	return fmt.Errorf("still alive after waiting to be killed: %v", err)
}

// garbage returns size bytes of the kind mode names, the same for the same
// seed in parent and child: "raw" is random bytes; "long" starts with a long
// header announcing a random length; "frames" is three valid frames followed
// by random bytes.
func garbage(mode string, seed uint64, size int) []byte {
	rng := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'g'}))
	var b []byte
	switch mode {
	case "long":
		b = binary.BigEndian.AppendUint32(b, 0xffffffff)
		b = binary.BigEndian.AppendUint64(b, rng.Uint64())
	case "frames":
		for i := range 3 {
			b = frame.AppendHeader(b, uint64(i*100))
			b = append(b, pattern(i*100)...)
		}
	}
	r := make([]byte, size)
	for i := range r {
		r[i] = byte(rng.Uint32())
	}
	return append(b, r...)
}

// childGarbage writes garbage(os.Args[1], os.Args[2], os.Args[3]) to its end
// bypassing the framing, and exits.
func childGarbage(conn *procpipe.Conn) error {
	seed, err1 := strconv.ParseUint(os.Args[2], 10, 64)
	size, err2 := strconv.Atoi(os.Args[3])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	_, err := procpipe.FileForTest(conn).Write(garbage(os.Args[1], seed, size))
	return err
}

// TestKilledMidFrame kills a child that has written a header and part of
// its payload: the receiver must get io.ErrUnexpectedEOF, for a frame that
// fits the receive buffer and for one that does not, in both header forms.
func TestKilledMidFrame(t *testing.T) {
	skipWithoutChildren(t)
	tests := []struct {
		announce uint64 // beyond int on 32-bit platforms
		part     int
		form     string
	}{
		{1000, 0, "short"},
		{1000, 500, "short"},
		{1 << 20, 200 << 10, "short"}, // larger than the 64 KiB buffer
		{1 << 40, 300, "long"},
		{100, 99, "long"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d-of-%d-%s", tt.part, tt.announce, tt.form), func(t *testing.T) {
			parent, child, err := (&procpipe.Config{MaxMessageSize: -1}).Pipe(true)
			if err != nil {
				t.Fatal(err)
			}
			defer parent.Close()
			p := procpipe.NewProcess("midframe", child, strconv.FormatUint(tt.announce, 10), strconv.Itoa(tt.part), tt.form)
			p.Cmd.Stdout = nil // NewProcess shares ours; the test reads the child's
			stdout, err := p.Cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			defer p.Wait()
			defer p.Kill()
			// Receive while the child is still alive: the call holds a
			// partial frame when the child dies.
			got := make(chan error, 1)
			go func() { _, err := parent.RecvBytes(); got <- err }()
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if line != "written\n" {
				t.Fatalf("child said %q, %v; want \"written\"", line, err)
			}
			if err := p.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := <-got; err != io.ErrUnexpectedEOF {
				t.Fatalf("RecvBytes of a frame cut short by SIGKILL = %v; want io.ErrUnexpectedEOF", err)
			}
			if err := p.Wait(); err == nil {
				t.Fatal("Wait after Kill reports success")
			}
			// The stream stays failed rather than resynchronising on junk.
			if _, err := parent.RecvBytes(); err == nil {
				t.Fatal("RecvBytes after a cut frame succeeded")
			}
		})
	}
}

// startSink starts a child that says "ready" and then never reads, and
// returns the parent's end once it is ready.
func startSink(t *testing.T) *procpipe.Conn {
	t.Helper()
	parent, child, err := procpipe.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	p := procpipe.NewProcess("sink", child)
	stdin, err := p.Cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		parent.Close()
		stdin.Close() // ends the child
		if err := p.Wait(); err != nil {
			t.Errorf("sink child: %v", err)
		}
	})
	var s string
	if err := parent.Recv(&s); err != nil || s != "ready" {
		t.Fatalf("Recv = %q, %v", s, err)
	}
	return parent
}

// TestSendToStalledPeer: a child that stops reading makes Send block once
// the kernel's buffer is full, and the Send then fails at its deadline with
// os.ErrDeadlineExceeded (not as if the peer were gone); a message cut short
// breaks the sending side visibly.
func TestSendToStalledPeer(t *testing.T) {
	skipWithoutChildren(t)
	t.Run("whole messages", func(t *testing.T) {
		conn := startSink(t)
		// Small messages go through until the buffer is full, then one
		// blocks until the deadline. A Send that never blocked would
		// run into the bound on the loop instead. The deadline leaves
		// ample time for the few sends that fill the buffer.
		const msg = 16 << 10
		buf := make([]byte, msg)
		deadline := time.Now().Add(500 * time.Millisecond)
		conn.SetWriteDeadline(deadline)
		sent := 0
		var err error
		for ; sent < 64<<20/msg; sent++ {
			if err = conn.SendBytes(buf); err != nil {
				break
			}
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, procpipe.ErrPeerGone) {
			t.Fatalf("SendBytes to a peer that stopped reading, after %d messages = %v; want os.ErrDeadlineExceeded", sent, err)
		}
		if time.Now().Before(deadline) {
			t.Fatal("SendBytes gave up before its deadline")
		}
		if sent == 0 {
			t.Fatal("no message went through before the buffer filled")
		}
		t.Logf("%d messages of %d bytes (%d KiB) were buffered before Send blocked", sent, msg, sent*msg>>10)
		// Nothing of the last message was written: the side still works,
		// and blocks again, until a new deadline.
		conn.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		if err := conn.SendBytes(make([]byte, msg)); !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, procpipe.ErrBroken) {
			t.Fatalf("SendBytes to a full buffer again = %v; want os.ErrDeadlineExceeded alone", err)
		}
	})
	t.Run("message cut short", func(t *testing.T) {
		conn := startSink(t)
		// Much more than any socket buffer: part of it is written, then
		// the deadline cuts it; the side is then broken, and says so
		// at once rather than blocking. A deadline that passed before
		// the first byte went out (on a loaded machine) cuts nothing:
		// then the side still works, and the next try waits longer.
		big := make([]byte, 64<<20)
		for wait := 50 * time.Millisecond; ; wait *= 4 {
			conn.SetWriteDeadline(time.Now().Add(wait))
			err := conn.SendBytes(big)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("SendBytes of 64 MiB to a stalled peer = %v; want os.ErrDeadlineExceeded", err)
			}
			conn.SetWriteDeadline(time.Now().Add(wait))
			err = conn.SendBytes([]byte("x"))
			if errors.Is(err, procpipe.ErrBroken) {
				return
			}
			if err != nil || wait > 5*time.Second {
				t.Fatalf("SendBytes after a 64 MiB message met its deadline = %v; want ErrBroken", err)
			}
			t.Logf("the %v deadline passed before anything was written; trying again", wait)
		}
	})
}

// TestGarbageFromPeer has children write random bytes to their end: every
// receiving call must end in io.EOF, io.ErrUnexpectedEOF, a protocol error,
// a size error or a decoding error, never a panic, a hang or an allocation
// out of proportion to the bytes that arrived.
func TestGarbageFromPeer(t *testing.T) {
	skipWithoutChildren(t)
	type run struct {
		mode  string
		seed  uint64
		size  int
		limit int64
	}
	var runs []run
	for i, size := range []int{0, 1, 3, 4, 11, 100, 4 << 10, 64 << 10, 256 << 10} {
		for _, mode := range []string{"raw", "long", "frames"} {
			limit := int64(0) // the default
			if i%2 == 1 {
				limit = -1 // none
			}
			runs = append(runs, run{mode, uint64(i*10 + len(mode)), size, limit})
		}
	}
	// Seeds whose first header is a small positive length, so the random
	// bytes are read as payloads and the next headers come from garbage.
	for seed := uint64(100); len(runs) < 40 && seed < 10000; seed++ {
		if g := garbage("raw", seed, 8); g[0] == 0 {
			runs = append(runs, run{"raw", seed, 200 << 10, -1})
		}
	}
	var totalBytes, totalAlloc uint64
	outcomes := map[string]int{}
	// Children start in batches, as starting one is the slow part (under
	// -race especially); each stream is then received alone, so the
	// allocation measured is that stream's.
	type started struct {
		run
		parent *procpipe.Conn
		p      *procpipe.Process
		stderr *strings.Builder
	}
	const batch = 8
	for first := 0; first < len(runs); first += batch {
		var group []started
		for _, r := range runs[first:min(first+batch, len(runs))] {
			parent, child, err := (&procpipe.Config{MaxMessageSize: r.limit}).Pipe(true)
			if err != nil {
				t.Fatal(err)
			}
			p := procpipe.NewProcess("garbage", child, r.mode, strconv.FormatUint(r.seed, 10), strconv.Itoa(r.size))
			stderr := new(strings.Builder)
			p.Cmd.Stderr = stderr
			if err := p.Start(); err != nil {
				parent.Close()
				t.Fatal(err)
			}
			group = append(group, started{r, parent, p, stderr})
		}
		for _, g := range group {
			name := fmt.Sprintf("%s-%d-%d", g.mode, g.seed, g.size)
			sent := garbage(g.mode, g.seed, g.size)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			outcome, frames, err := drainGarbage(g.parent, len(sent))
			runtime.ReadMemStats(&after)
			// A receiver that stopped at a protocol error leaves the
			// child blocked writing the rest, or failing to once this
			// end closes.
			g.parent.Close()
			if werr := g.p.Wait(); werr != nil && outcome != "ProtocolError" {
				t.Errorf("%s: child: %v; stderr:\n%s", name, werr, g.stderr.String())
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if g.mode == "frames" && frames < 3 {
				t.Errorf("%s: %d messages before the garbage; want the 3 valid ones", name, frames)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			if limit := 8*uint64(len(sent)) + 1<<20; alloc > limit {
				t.Errorf("%s: receiving %d bytes of garbage allocated %d bytes; want <= %d", name, len(sent), alloc, limit)
			}
			totalBytes += uint64(len(sent))
			totalAlloc += alloc
			outcomes[outcome]++
		}
	}
	t.Logf("%d garbage streams, %d bytes in all, %d bytes allocated receiving them; outcomes %v", len(runs), totalBytes, totalAlloc, outcomes)
}

// drainGarbage receives from c, in turn with each receiving call, until the
// stream ends or breaks, and says how: the error class of the end, and the
// number of messages received. It returns an error for any outcome a
// correct Conn must not produce.
func drainGarbage(c *procpipe.Conn, size int) (outcome string, frames int, err error) {
	buf := make([]byte, 4<<10)
	// Each call consumes at least a 4-byte header, or ends the stream.
	for i := 0; i <= size/4+2; i++ {
		var err error
		switch i % 4 {
		case 0:
			_, err = c.RecvBytes()
		case 1:
			var v struct {
				A int
				B []string
			}
			err = c.Recv(&v)
			if err != nil && strings.Contains(err.Error(), "decoding") {
				frames++
				continue // a message arrived; it just was not a gob
			}
		case 2:
			_, err = c.RecvBytesInto(buf)
		case 3:
			_, err = c.RecvBytesMax(1000)
		}
		var (
			pe *procpipe.ProtocolError
			tl *procpipe.TooLargeError
			bs *procpipe.BufferTooShortError
		)
		switch {
		case err == nil:
			frames++
		case errors.As(err, &tl) || errors.As(err, &bs):
			frames++
		case err == io.EOF:
			return "EOF", frames, nil
		case err == io.ErrUnexpectedEOF:
			return "ErrUnexpectedEOF", frames, nil
		case errors.As(err, &pe):
			// The receiving side is now unusable, and says so.
			if _, err := c.RecvBytes(); !errors.Is(err, procpipe.ErrBroken) {
				return "", frames, fmt.Errorf("RecvBytes after %v = %v; want ErrBroken", pe, err)
			}
			return "ProtocolError", frames, nil
		default:
			return "", frames, fmt.Errorf("call %d: unexpected error %v", i, err)
		}
	}
	return "", frames, fmt.Errorf("%d calls on %d bytes did not reach the end of the stream", size/4+3, size)
}

// goroutinesSettle waits, without sleeping, until no more than base
// goroutines run, yielding the processor between looks; the bound is far
// beyond what goroutines that are merely finishing need. On failure it
// reports the goroutines still running.
func goroutinesSettle(t *testing.T, base int) bool {
	t.Helper()
	for range 1_000_000 {
		if runtime.NumGoroutine() <= base {
			return true
		}
		runtime.Gosched()
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	t.Errorf("%d goroutines running; want at most %d, as before the test:\n%s", runtime.NumGoroutine(), base, buf)
	return false
}

// TestNoGoroutineLeftAfterClose uses Conns in every way that can start or
// block a goroutine (blocked calls unblocked by Close, contexts, Poll, a
// child process) and checks that none is left once all is closed.
func TestNoGoroutineLeftAfterClose(t *testing.T) {
	base := runtime.NumGoroutine()

	// Plain traffic, both kinds of pipe.
	a, b, err := procpipe.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := procpipe.Pipe(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]*procpipe.Conn{{a, b}, {w, r}} {
		if err := pair[0].SendBytes([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := pair[1].RecvBytes(); err != nil {
			t.Fatal(err)
		}
		if _, err := pair[1].Poll(time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}

	// Calls blocked in the kernel, and a context-bound call, all ended by
	// Close.
	c, d, err := procpipe.Pipe(true) // c sends until blocked; d never reads
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 6)
	go func() { _, err := b.RecvBytes(); results <- err }()
	go func() { _, err := b.Poll(-1); results <- err }()
	go func() { _, err := r.RecvBytesInto(make([]byte, 10)); results <- err }()
	go func() {
		var err error
		for err == nil {
			err = c.SendBytes(make([]byte, 1<<20))
		}
		results <- err
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		var v int
		results <- r.RecvContext(ctx, &v)
	}()
	// And a context that ends a blocked call by itself.
	ctx2, cancel2 := context.WithCancel(context.Background())
	go cancel2()
	if _, err := a.RecvBytesContext(ctx2); !errors.Is(err, context.Canceled) {
		t.Fatalf("RecvBytesContext with a cancelled context = %v; want context.Canceled", err)
	}

	// A keyed Listener with a handshake under way and an Accept waiting.
	l, err := procpipe.Listen(testAddr(t), &procpipe.Config{AuthKey: []byte("k"), HandshakeTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	silent, err := procpipe.Dial(l.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, err := l.Accept(); results <- err }()
	if _, err := silent.RecvBytes(); err != nil { // the challenge
		t.Fatal(err)
	}

	// A child process, its conn closed after an exchange.
	conn, p := startChildNoCleanup(t, "echo")
	conn.SendBytes([]byte("ping"))
	if got, err := conn.RecvBytes(); err != nil || string(got) != "ping" {
		t.Fatalf("echo = %q, %v", got, err)
	}

	// The ends with blocked calls close first: were a peer closed first,
	// a blocked Recv could rightly see the end of the stream instead.
	for _, c := range []*procpipe.Conn{b, c, r, a, d, w, conn} {
		c.Close()
	}
	l.Close()
	silent.Close()
	if err := p.Wait(); err != nil {
		t.Fatalf("echo child: %v", err)
	}
	cancel()
	if !goroutinesSettle(t, base) {
		return // the results would never all arrive
	}
	for range 6 {
		if err := <-results; !errors.Is(err, net.ErrClosed) {
			t.Errorf("call blocked until Close = %v; want net.ErrClosed", err)
		}
	}
}

// soakMessage is like message, with random content: a sender, a sequence
// number, size random bytes and a SHA-256 of all that, which parseMessage
// checks.
func soakMessage(rng *rand.ChaCha8, sender, seq, size int) []byte {
	b := make([]byte, 16+size+sha256.Size)
	binary.BigEndian.PutUint64(b[0:], uint64(sender))
	binary.BigEndian.PutUint64(b[8:], uint64(seq))
	rng.Read(b[16 : 16+size])
	sum := sha256.Sum256(b[:16+size])
	copy(b[16+size:], sum[:])
	return b
}

// TestSoakEcho has 8 goroutines sending checksummed messages of random
// sizes from 0 B to 4 MiB through a real echo child while 8 goroutines
// receive the echoes: every message must come back once, intact, and each
// receiving goroutine must see each sender's messages in the order sent
// (the echo child keeps the order, and so must the Conn).
func TestSoakEcho(t *testing.T) {
	skipWithoutChildren(t)
	const workers = 8
	perSender := 12
	if testing.Short() {
		perSender = 3
	}
	conn, p := startChildNoCleanup(t, "echo")
	defer p.Kill()

	var sendWG sync.WaitGroup
	var sentBytes [workers]int64
	for s := range workers {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			rng := rand.NewChaCha8([32]byte{byte(s), 's'})
			sizes := rand.New(rand.NewPCG(uint64(s), 4))
			for seq := range perSender {
				size := sizes.IntN(4<<20 + 1)
				switch seq {
				case 0:
					size = 0
				case 1:
					size = 4 << 20
				}
				m := soakMessage(rng, s, seq, size)
				if err := conn.SendBytes(m); err != nil {
					t.Errorf("sender %d, message %d: %v", s, seq, err)
					return
				}
				sentBytes[s] += int64(len(m))
			}
		}()
	}

	// The end marker goes after every sender is done; the child echoes in
	// order, so every message is received before it. Whoever receives it
	// closes the Conn, which ends the other receivers' calls.
	end := []byte("end")
	var finished atomic.Bool
	type key struct{ sender, seq int }
	var mu sync.Mutex
	count := map[key]int{}
	var recvBytes int64
	var recvWG sync.WaitGroup
	for range workers {
		recvWG.Add(1)
		go func() {
			defer recvWG.Done()
			last := map[int]int{} // this receiver's last seq per sender
			for {
				b, err := conn.RecvBytes()
				if err != nil {
					if !finished.Load() || !errors.Is(err, net.ErrClosed) {
						t.Errorf("RecvBytes: %v", err)
					}
					return
				}
				if string(b) == string(end) {
					finished.Store(true)
					conn.Close()
					return
				}
				s, seq, err := parseMessage(b)
				if err != nil {
					t.Error(err)
					continue
				}
				if prev, seen := last[s]; seen && seq <= prev {
					t.Errorf("sender %d: message %d received after message %d", s, seq, prev)
				}
				last[s] = seq
				mu.Lock()
				count[key{s, seq}]++
				recvBytes += int64(len(b))
				mu.Unlock()
			}
		}()
	}
	sendWG.Wait()
	if err := conn.SendBytes(end); err != nil {
		t.Fatalf("sending the end marker: %v", err)
	}
	recvWG.Wait()
	if err := p.Wait(); err != nil {
		t.Errorf("echo child: %v", err)
	}

	var total int64
	for _, n := range sentBytes {
		total += n
	}
	for s := range workers {
		for seq := range perSender {
			if n := count[key{s, seq}]; n != 1 {
				t.Errorf("sender %d, message %d received %d times; want once", s, seq, n)
			}
		}
	}
	if len(count) != workers*perSender {
		t.Errorf("%d distinct messages received; want %d", len(count), workers*perSender)
	}
	if recvBytes != total {
		t.Errorf("received %d bytes; want the %d sent", recvBytes, total)
	}
	t.Logf("soak: %d senders x %d messages of 0 B..4 MiB: %d messages, %d bytes (%.1f MiB) each way, all back once, intact and in order per sender",
		workers, perSender, workers*perSender, total, float64(total)/(1<<20))
}
