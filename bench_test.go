package procpipe_test

// Two-process benchmarks: the parent (this benchmark) and a real child
// started with procpipe.NewProcess. Each runs on a duplex end (a socketpair)
// and on one-way ends (pipes; a second pipe carries replies back). ci/bench.sh
// runs them next to a C and a Python program doing the same.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procpipe/procpipe"
)

// envBack names, in a benchmark child on one-way ends, the descriptor of the
// pipe end it replies on.
const envBack = "PROCPIPE_BENCH_BACK"

// envChildProfile names, for the benchmarks, a file prefix: each benchmark
// child then writes a CPU profile of its run to <prefix>-<child>-<pid>.prof
// (the parent's comes from -test.cpuprofile), e.g.
//
//	PROCPIPE_BENCH_CHILD_PROFILE=/tmp/p go test -run '^$' -bench Bulk -cpuprofile /tmp/p-parent.prof
const envChildProfile = "PROCPIPE_BENCH_CHILD_PROFILE"

// benchProfiled runs a benchmark child under the CPU profiler if
// envChildProfile asks for it.
func benchProfiled(name string, f func(*procpipe.Conn) error) func(*procpipe.Conn) error {
	return func(conn *procpipe.Conn) error {
		prefix := os.Getenv(envChildProfile)
		if prefix == "" {
			return f(conn)
		}
		out, err := os.Create(fmt.Sprintf("%s-%s-%d.prof", prefix, name, os.Getpid()))
		if err != nil {
			return err
		}
		defer out.Close()
		if err := pprof.StartCPUProfile(out); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
		return f(conn)
	}
}

// benchBack returns the end a benchmark child replies on.
func benchBack(conn *procpipe.Conn) (*procpipe.Conn, error) {
	v := os.Getenv(envBack)
	if v == "" {
		return conn, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil {
		return nil, err
	}
	return procpipe.NewConn(os.NewFile(uintptr(fd), "bench-back"))
}

// benchEcho sends back every message until the parent closes its end.
func benchEcho(conn *procpipe.Conn) error {
	back, err := benchBack(conn)
	if err != nil {
		return err
	}
	defer back.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := conn.RecvBytesInto(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := back.SendBytes(buf[:n]); err != nil {
			return err
		}
	}
}

// benchSink counts the messages and bytes it receives until an empty
// message, and answers with both counts (two big-endian uint64s); then it
// starts over, until the parent closes its end.
func benchSink(conn *procpipe.Conn) error {
	back, err := benchBack(conn)
	if err != nil {
		return err
	}
	defer back.Close()
	buf := make([]byte, 1<<20)
	var msgs, bytes uint64
	for {
		n, err := conn.RecvBytesInto(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if n > 0 {
			msgs++
			bytes += uint64(n)
			continue
		}
		var ack [16]byte
		binary.BigEndian.PutUint64(ack[:], msgs)
		binary.BigEndian.PutUint64(ack[8:], bytes)
		if err := back.SendBytes(ack[:]); err != nil {
			return err
		}
		msgs, bytes = 0, 0
	}
}

// benchBig receives one message with RecvBytes and answers with its length
// and this process's peak resident set size (VmHWM), both in bytes.
func benchBig(conn *procpipe.Conn) error {
	back, err := benchBack(conn)
	if err != nil {
		return err
	}
	defer back.Close()
	msg, err := conn.RecvBytes()
	if err != nil {
		return err
	}
	hwm, err := peakRSS()
	if err != nil {
		return err
	}
	var ack [16]byte
	binary.BigEndian.PutUint64(ack[:], uint64(len(msg)))
	binary.BigEndian.PutUint64(ack[8:], hwm)
	if err := back.SendBytes(ack[:]); err != nil {
		return err
	}
	_, err = conn.RecvBytes() // wait for the parent to close
	if err == io.EOF {
		err = nil
	}
	return err
}

// peakRSS reads VmHWM from /proc/self/status.
func peakRSS() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

// A benchLink is the parent's side of a benchmark child: it sends on send
// and receives the child's replies on recv (the same Conn when duplex).
type benchLink struct {
	send, recv *procpipe.Conn
	p          *procpipe.Process
}

func startBench(b *testing.B, name string, duplex bool) *benchLink {
	b.Helper()
	skipWithoutChildren(b)
	l := &benchLink{}
	var child *procpipe.Conn
	var extra []*procpipe.Conn // the child's other end, closed once it started
	if duplex {
		parent, c, err := procpipe.Pipe(true)
		if err != nil {
			b.Fatal(err)
		}
		l.send, l.recv, child = parent, parent, c
	} else {
		r, w, err := procpipe.Pipe(false)
		if err != nil {
			b.Fatal(err)
		}
		br, bw, err := procpipe.Pipe(false)
		if err != nil {
			b.Fatal(err)
		}
		l.send, l.recv, child = w, br, r
		extra = append(extra, bw)
	}
	l.p = procpipe.NewProcess(name, child)
	for _, c := range extra {
		l.p.Cmd.ExtraFiles = append(l.p.Cmd.ExtraFiles, procpipe.FileForTest(c))
		l.p.Cmd.Env = append(l.p.Cmd.Env, envBack+"="+strconv.Itoa(2+len(l.p.Cmd.ExtraFiles)))
	}
	err := l.p.Start()
	for _, c := range extra {
		c.Close()
	}
	if err != nil {
		l.send.Close()
		l.recv.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		l.send.Close()
		l.recv.Close()
		if err := l.p.Wait(); err != nil {
			b.Errorf("child %s: %v", name, err)
		}
	})
	return l
}

// ack ends a stream to bench-sink and returns the counts it answers with.
func (l *benchLink) ack(b *testing.B) (msgs, bytes uint64) {
	if err := l.send.SendBytes(nil); err != nil {
		b.Fatal(err)
	}
	var ack [16]byte
	if n, err := l.recv.RecvBytesInto(ack[:]); err != nil || n != len(ack) {
		b.Fatalf("ack: %d bytes, %v", n, err)
	}
	return binary.BigEndian.Uint64(ack[:]), binary.BigEndian.Uint64(ack[8:])
}

var benchEnds = []struct {
	name   string
	duplex bool
}{{"duplex", true}, {"oneway", false}}

// BenchmarkRTT measures round trips of a 64-byte message the child echoes.
func BenchmarkRTT(b *testing.B) {
	for _, e := range benchEnds {
		b.Run(e.name, func(b *testing.B) {
			l := startBench(b, "bench-echo", e.duplex)
			msg := make([]byte, 64)
			buf := make([]byte, 64)
			rtt := func() {
				if err := l.send.SendBytes(msg); err != nil {
					b.Fatal(err)
				}
				if n, err := l.recv.RecvBytesInto(buf); err != nil || n != len(msg) {
					b.Fatalf("echo: %d bytes, %v", n, err)
				}
			}
			for range 1000 {
				rtt()
			}
			times := make([]time.Duration, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			// One clock read per round trip (time.Since reads only the
			// monotonic clock, time.Now both clocks), as in the C and
			// Python benchmarks: each time runs from the end of the last.
			start := time.Now()
			var last time.Duration
			for i := range b.N {
				rtt()
				end := time.Since(start)
				times[i] = end - last
				last = end
			}
			b.StopTimer()
			slices.Sort(times)
			var sum time.Duration
			for _, t := range times {
				sum += t
			}
			us := func(d time.Duration) float64 { return float64(d) / 1e3 }
			b.ReportMetric(us(sum)/float64(b.N), "us-mean")
			b.ReportMetric(us(times[b.N/2]), "us-p50")
			b.ReportMetric(us(times[b.N*99/100]), "us-p99")
		})
	}
}

// BenchmarkSmall streams 16-byte messages, one SendBytes each.
func BenchmarkSmall(b *testing.B) {
	for _, e := range benchEnds {
		b.Run(e.name, func(b *testing.B) {
			l := startBench(b, "bench-sink", e.duplex)
			msg := make([]byte, 16)
			for range 1000 {
				l.send.SendBytes(msg)
			}
			l.ack(b)
			b.ReportAllocs()
			b.ResetTimer()
			t0 := time.Now()
			for range b.N {
				if err := l.send.SendBytes(msg); err != nil {
					b.Fatal(err)
				}
			}
			msgs, _ := l.ack(b)
			d := time.Since(t0)
			b.StopTimer()
			if msgs != uint64(b.N) {
				b.Fatalf("child counted %d messages; sent %d", msgs, b.N)
			}
			b.ReportMetric(float64(b.N)/d.Seconds(), "msgs/s")
		})
	}
}

// batchLen is how many messages BenchmarkBatched hands SendBytesBatch at once.
const batchLen = 256

// BenchmarkBatched streams 16-byte messages through SendBytesBatch.
func BenchmarkBatched(b *testing.B) {
	for _, e := range benchEnds {
		b.Run(e.name, func(b *testing.B) {
			l := startBench(b, "bench-sink", e.duplex)
			batch := make([][]byte, batchLen)
			for i := range batch {
				batch[i] = make([]byte, 16)
			}
			if _, err := l.send.SendBytesBatch(batch); err != nil {
				b.Fatal(err)
			}
			l.ack(b)
			b.ReportAllocs()
			b.ResetTimer()
			t0 := time.Now()
			for i := 0; i < b.N; i += batchLen {
				if _, err := l.send.SendBytesBatch(batch[:min(batchLen, b.N-i)]); err != nil {
					b.Fatal(err)
				}
			}
			msgs, _ := l.ack(b)
			d := time.Since(t0)
			b.StopTimer()
			if msgs != uint64(b.N) {
				b.Fatalf("child counted %d messages; sent %d", msgs, b.N)
			}
			b.ReportMetric(float64(b.N)/d.Seconds(), "msgs/s")
		})
	}
}

// BenchmarkBulk streams 64 KiB and 1 MiB messages; the child receives them
// with RecvBytesInto.
func BenchmarkBulk(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		for _, e := range benchEnds {
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, e.name), func(b *testing.B) {
				l := startBench(b, "bench-sink", e.duplex)
				msg := pattern(size)
				for range 10 {
					l.send.SendBytes(msg)
				}
				l.ack(b)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				t0 := time.Now()
				for range b.N {
					if err := l.send.SendBytes(msg); err != nil {
						b.Fatal(err)
					}
				}
				msgs, n := l.ack(b)
				d := time.Since(t0)
				b.StopTimer()
				if msgs != uint64(b.N) || n != uint64(b.N*size) {
					b.Fatalf("child counted %d messages, %d bytes; sent %d", msgs, n, b.N)
				}
				b.ReportMetric(float64(n)/d.Seconds()/1e9, "GB/s")
			})
		}
	}
}

// BenchmarkBig sends one 256 MiB message, which the child receives with
// RecvBytes, and reports the child's peak resident set size.
func BenchmarkBig(b *testing.B) {
	const size = 256 << 20
	msg := bytes.Repeat([]byte{0x5a}, size)
	for _, e := range benchEnds {
		b.Run(e.name, func(b *testing.B) {
			var peak uint64
			b.SetBytes(size)
			for range b.N {
				b.StopTimer()
				l := startBench(b, "bench-big", e.duplex)
				b.StartTimer()
				if err := l.send.SendBytes(msg); err != nil {
					b.Fatal(err)
				}
				var ack [16]byte
				if n, err := l.recv.RecvBytesInto(ack[:]); err != nil || n != len(ack) {
					b.Fatalf("ack: %d bytes, %v", n, err)
				}
				if got := binary.BigEndian.Uint64(ack[:]); got != size {
					b.Fatalf("child received %d bytes; sent %d", got, size)
				}
				peak = max(peak, binary.BigEndian.Uint64(ack[8:]))
				b.StopTimer()
				l.send.Close()
				l.recv.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(peak)/(1<<20), "MiB-peak-RSS")
			b.ReportMetric(float64(peak)/size, "peak/size")
		})
	}
}
