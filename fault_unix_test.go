//go:build unix

package procpipe_test

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/procpipe/procpipe"
)

// envFull asks for the full-size abuse test (1,000 children rather than
// 100); ci/matrix.sh sets it in a run without -race.
const envFull = "PROCPIPE_TEST_FULL"

// openFDs returns the descriptors this process holds, each with what it
// refers to (as "socket:[inode]"), leaving out the one used to list them.
// Only Linux has /proc/self/fd; /dev/fd elsewhere may show only the first
// three.
func openFDs(t *testing.T) map[string]string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("listing descriptors needs /proc/self/fd, which %s lacks", runtime.GOOS)
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(int(d.Fd()))
	fds := map[string]string{}
	for _, n := range names {
		if n != self {
			fds[n], _ = os.Readlink("/proc/self/fd/" + n)
		}
	}
	return fds
}

// newFDs returns the descriptors in now that were not in before (with the
// same target); one an earlier test left to a finalizer may close meanwhile
// without counting.
func newFDs(before, now map[string]string) []string {
	var added []string
	for fd, target := range now {
		if before[fd] != target {
			added = append(added, fd+" "+target)
		}
	}
	return added
}

// TestTenThousandPipes creates and closes 10,000 pipes of both kinds, up to
// 100 at a time, some closed with a message in flight, the receiving or the
// sending end first: afterwards the process holds no descriptor it did not
// hold before. (A Conn dropped unclosed is closed by its *os.File's
// finalizer; what this catches is a descriptor that no file owns, or one
// still referenced.)
func TestTenThousandPipes(t *testing.T) {
	// The runtime opens its poller's descriptors at first use, and keeps
	// them (a Conn's own, on Linux, joins the poller only to wait): look
	// after that, and after a first pipe.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	a, b, err := procpipe.Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	before := openFDs(t)
	peak := 0
	const total, batch = 10_000, 100
	for made := 0; made < total; made += batch {
		var conns []*procpipe.Conn
		for i := range batch {
			x, y, err := procpipe.Pipe(i%2 == 0)
			if err != nil {
				t.Fatalf("pipe %d: %v", made+i, err)
			}
			conns = append(conns, x, y)
			if i%3 == 0 {
				// a message left unread in the kernel's buffer
				if err := y.SendBytes([]byte("in flight")); err != nil {
					t.Fatal(err)
				}
			}
		}
		if n := len(newFDs(before, openFDs(t))); n != 2*batch {
			t.Fatalf("%d new descriptors with %d pipes open; want %d, two per pipe", n, batch, 2*batch)
		}
		peak = max(peak, len(openFDs(t)))
		for i := range conns {
			j := i
			if made%(2*batch) == 0 {
				j = len(conns) - 1 - i
			}
			if err := conns[j].Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
	}
	after := openFDs(t)
	t.Logf("10,000 pipes: %d descriptors before, %d at the peak (100 pipes open), %d after", len(before), peak, len(after))
	if added := newFDs(before, after); len(added) > 0 {
		t.Errorf("%d descriptors left after creating and closing 10,000 pipes: %q", len(added), added)
	}
}

// TestManyChildren starts children, several at once while this process
// holds the parent ends of the others, waits for all, and checks that each
// child held only stdio and its own end, and that no child is left, zombie
// or not. Set PROCPIPE_TEST_FULL=1 for 1,000 children; by default 100.
func TestManyChildren(t *testing.T) {
	skipWithoutChildren(t)
	n := 100
	if os.Getenv(envFull) != "" {
		n = 1000
	} else {
		t.Logf("starting %d children; set %s=1 for 1,000", n, envFull)
	}
	workers := 4 * runtime.GOMAXPROCS(0)
	var (
		mu      sync.Mutex
		pids    = map[int]bool{}
		strays  int
		started int
	)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held []*procpipe.Conn // kept open while later children start
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for i := range jobs {
				parent, child, err := procpipe.Pipe(i%2 == 0)
				if err != nil {
					t.Error(err)
					return
				}
				held = append(held, parent)
				p := procpipe.NewProcess("unused", child)
				p.Cmd.Env = append(p.Cmd.Env, envListFDs+"=1")
				var out bytes.Buffer
				p.Cmd.Stdout = &out
				if err := p.Start(); err != nil {
					t.Errorf("child %d: %v", i, err)
					return
				}
				mu.Lock()
				pids[p.Pid()] = true
				started++
				mu.Unlock()
				if err := p.Wait(); err != nil {
					t.Errorf("child %d: %v", i, err)
					return
				}
				if stray := strayFDs(out.String(), i%2 == 0); len(stray) > 0 {
					mu.Lock()
					strays++
					if strays <= 3 {
						t.Errorf("child %d holds descriptors besides stdio and its end: %q\nall:\n%s", i, stray, out.String())
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if strays > 0 {
		t.Errorf("%d of %d children held stray descriptors", strays, n)
	}
	if started != n {
		t.Fatalf("%d children started; want %d", started, n)
	}
	t.Logf("%d children started, %d at a time, and waited; %d held a stray descriptor", started, workers, strays)

	t.Run("no child left", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skipf("finding this process's children needs /proc, which %s lacks", runtime.GOOS)
		}
		zombies, alive := childrenOf(t, os.Getpid(), pids)
		if len(zombies)+len(alive) > 0 {
			t.Errorf("after Wait: zombie children %v, living children %v; want none", zombies, alive)
		}
		t.Logf("children of pid %d among the %d started: %d zombies, %d alive", os.Getpid(), len(pids), len(zombies), len(alive))
	})
}

// strayFDs returns the lines of a child's descriptor listing (see listFDs)
// that are neither stdio, its end at 3, the Go runtime's own, nor inherited
// by this test process from its parent.
func strayFDs(listing string, socket bool) []string {
	var stray []string
	sawEnd := false
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		fd, target, _ := strings.Cut(line, " ")
		switch {
		case fd == "3":
			sawEnd = true
			if runtime.GOOS == "linux" && socket != strings.HasPrefix(target, "socket:") {
				stray = append(stray, line+" (not the expected kind of end)")
			}
		case fd == "0" || fd == "1" || fd == "2" || runtimeOwned(target):
		case inherited[fd] != "" && inherited[fd] == target:
		default:
			stray = append(stray, line)
		}
	}
	if !sawEnd {
		stray = append(stray, "(no descriptor 3: the child's end is missing)")
	}
	return stray
}

// childrenOf lists, among pids, the processes whose parent is ppid, zombies
// and living ones apart, from /proc.
func childrenOf(t *testing.T, ppid int, pids map[int]bool) (zombies, alive []int) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(ppid) {
			continue
		}
		switch {
		case f[0] == "Z":
			zombies = append(zombies, pid) // any zombie child is a leak
		case pids[pid]:
			alive = append(alive, pid)
		}
	}
	return zombies, alive
}
