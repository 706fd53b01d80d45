//go:build ignore

// init is /init of the small Linux VM in which ci/vm386.sh runs the linux/386
// tests: it mounts what a test needs, runs the commands listed in /plan one
// after the other, and powers the VM off. Each /plan line is a directory, a
// program and its arguments, separated by tabs; a line "env NAME=value"
// adds to the environment of the commands after it. Before each command it
// prints "vm: run DIR PROGRAM", after it "vm: exit STATUS PROGRAM", which
// ci/vm386.sh reads from the console.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"unsafe"
)

func main() {
	for _, m := range []struct{ fs, dir string }{
		{"proc", "/proc"}, {"sysfs", "/sys"}, {"devtmpfs", "/dev"},
		{"tmpfs", "/dev/shm"}, {"tmpfs", "/tmp"}, {"tmpfs", "/run"},
	} {
		os.MkdirAll(m.dir, 0o755)
		if err := syscall.Mount(m.fs, m.dir, m.fs, 0, ""); err != nil {
			fmt.Printf("vm: mount %s: %v\n", m.dir, err)
		}
	}
	os.Chmod("/tmp", 0o1777)
	// What udev would add to /dev (tests list /dev/fd), and the files a
	// test that looks up localhost needs.
	os.Symlink("/proc/self/fd", "/dev/fd")
	for i, name := range []string{"stdin", "stdout", "stderr"} {
		os.Symlink(fmt.Sprintf("/proc/self/fd/%d", i), "/dev/"+name)
	}
	os.MkdirAll("/etc", 0o755)
	os.WriteFile("/etc/hosts", []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644)
	// The host's limit on open files, not the kernel's default 4096: the
	// fault tests open thousands.
	lim := syscall.Rlimit{Cur: 1 << 16, Max: 1 << 16}
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	if err := loopbackUp(); err != nil {
		fmt.Printf("vm: lo: %v\n", err)
	}
	env := []string{"PATH=/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp", "LANG=C.UTF-8"}
	f, err := os.Open("/plan")
	if err != nil {
		fmt.Printf("vm: %v\n", err)
		off()
	}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if v, ok := strings.CutPrefix(line, "env "); ok {
			env = append(env, v)
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) < 2 {
			continue
		}
		fmt.Printf("vm: run %s %s\n", fields[0], fields[1])
		cmd := exec.Command(fields[1], fields[2:]...)
		cmd.Dir, cmd.Env = fields[0], env
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		status := 0
		if err := cmd.Run(); err != nil {
			status = 1
			if e, ok := err.(*exec.ExitError); ok && e.ExitCode() > 0 {
				status = e.ExitCode()
			}
			fmt.Printf("vm: %v\n", err)
		}
		fmt.Printf("vm: exit %d %s\n", status, fields[1])
		// What the command left behind (a child of a test that timed
		// out, say) must not take CPU from the next one; as PID 1, init
		// also reaps every orphan.
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		reap()
	}
	if err := s.Err(); err != nil {
		fmt.Printf("vm: reading /plan: %v\n", err)
	}
	off()
}

// reap collects every exited child, orphans included.
func reap() {
	for {
		var st syscall.WaitStatus
		if pid, err := syscall.Wait4(-1, &st, syscall.WNOHANG, nil); pid <= 0 || err != nil {
			return
		}
	}
}

// loopbackUp brings up the loopback interface, for the tests that pass TCP
// listeners.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var req struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(req.name[:], "lo")
	req.flags = syscall.IFF_UP | syscall.IFF_LOOPBACK | syscall.IFF_RUNNING
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&req))); e != 0 {
		return e
	}
	return nil
}

// off powers the VM off; qemu then exits.
func off() {
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
