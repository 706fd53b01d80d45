//go:build unix

package procpipe_test

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/procpipe/procpipe"
	"golang.org/x/sys/unix"
)

// TestParentWrongDescriptor points EnvConn at a descriptor that is neither
// a socket nor a pipe: Parent must fail and leave the descriptor open, as it
// belongs to someone else.
func TestParentWrongDescriptor(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd uintptr
	rc.Control(func(d uintptr) { fd = d })
	t.Setenv(procpipe.EnvConn, strconv.Itoa(int(fd)))
	if c, err := procpipe.Parent(); err == nil {
		c.Close()
		t.Fatalf("Parent() with %s naming %s succeeded", procpipe.EnvConn, os.DevNull)
	}
	if _, err := unix.FcntlInt(fd, unix.F_GETFD, 0); err != nil {
		t.Errorf("the descriptor Parent() refused was closed: %v", err)
	}
	if _, err := f.Stat(); err != nil {
		t.Errorf("the file Parent() refused: %v", err)
	}
}

// TestChildHoldsNoStrayFDs starts children, both ways, while this process
// holds other pipes, and checks that each child holds only stdio and its end.
func TestChildHoldsNoStrayFDs(t *testing.T) {
	for range 3 {
		a, b, err := procpipe.Pipe(true)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		defer b.Close()
		r, w, err := procpipe.Pipe(false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
	}
	starts := map[string]func(*procpipe.Conn) *procpipe.Process{
		"NewProcess": func(end *procpipe.Conn) *procpipe.Process {
			p := procpipe.NewProcess("unused", end)
			p.Cmd.Env = append(p.Cmd.Env, envListFDs+"=1")
			return p
		},
		"Attach": func(end *procpipe.Conn) *procpipe.Process {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), envListFDs+"=1")
			return procpipe.Attach(cmd, end)
		},
	}
	for name, start := range starts {
		_, child, err := procpipe.Pipe(true)
		if err != nil {
			t.Fatal(err)
		}
		p := start(child)
		var out bytes.Buffer
		p.Cmd.Stdout = &out
		if err := p.Run(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Files the child got from its environment rather than from
		// procpipe: stdio and what this process inherited without
		// close-on-exec. An emulator (qemu-user) may hold more copies of
		// them under other numbers; they are not procpipe's.
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		env := map[string]bool{}
		for _, target := range inherited {
			env[target] = true
		}
		for _, line := range lines {
			if fd, target, _ := strings.Cut(line, " "); fd == "0" || fd == "1" || fd == "2" {
				env[target] = true
			}
		}
		var stray []string
		for _, line := range lines {
			fd, target, _ := strings.Cut(line, " ")
			if fd == "0" || fd == "1" || fd == "2" || fd == "3" || runtimeOwned(target) || env[target] {
				continue
			}
			stray = append(stray, line)
		}
		if len(stray) > 0 {
			t.Errorf("%s: child holds descriptors besides stdio and its end: %q\nall:\n%s", name, stray, out.String())
		}
		if !strings.Contains(out.String(), "\n3 socket:") && runtime.GOOS == "linux" {
			t.Errorf("%s: descriptor 3 is not a socket:\n%s", name, out.String())
		}
	}
}

// runtimeOwned reports whether a descriptor's target is one the Go runtime
// opens for itself at start-up (its poller, its cgroup CPU limit reading).
func runtimeOwned(target string) bool {
	return strings.HasPrefix(target, "anon_inode:") || strings.HasPrefix(target, "/sys/fs/cgroup/")
}

// inherited maps the descriptors this test process was started with, and
// that a child inherits because they are not close-on-exec, to their
// targets: the test's own parent left them open, procpipe did not.
var inherited = map[string]string{}

func recordInherited() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		inherited[e.Name()], _ = os.Readlink("/proc/self/fd/" + e.Name())
	}
}
