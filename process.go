package procpipe

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
)

// The environment contract between a parent and a child, which a program in
// any language can keep on either side.
const (
	// EnvConn names the child's end of its connection: on Unix the
	// descriptor number (3 for the first of exec.Cmd.ExtraFiles), on
	// Windows the handle value in decimal (an inherited handle, listed in
	// SysProcAttr.AdditionalInheritedHandles). [Parent]
	// reads it and removes it from the environment. A Python child does
	// multiprocessing.connection.Connection(int(os.environ["PROCPIPE_CONN"])).
	EnvConn = "PROCPIPE_CONN"

	// EnvFunc names the registered function a child of the same program
	// runs from [Dispatch].
	EnvFunc = "PROCPIPE_FUNC"
)

var (
	parentMu sync.Mutex
	regMu    sync.Mutex
	registry = map[string]registered{}
	// dispatched says Dispatch has been called: a function registered
	// since is one that a child, whose Dispatch runs first, cannot find.
	dispatched bool
)

// A registered function, and whether it was registered after Dispatch ran,
// too late for a child's Dispatch to find it.
type registered struct {
	f    func(*Conn) error
	late bool
}

// Parent returns the end of the connection the parent process handed this
// one (named by [EnvConn]) and removes the variable from the environment, so
// the end is taken once and is not passed on to this process's own children.
// It returns [ErrNoParent] if there is none.
func Parent() (*Conn, error) { return (*Config)(nil).Parent() }

// Parent is like the package-level [Parent] with the settings of cfg.
func (cfg *Config) Parent() (*Conn, error) {
	parentMu.Lock()
	defer parentMu.Unlock()
	v, ok := os.LookupEnv(EnvConn)
	if !ok {
		return nil, ErrNoParent
	}
	os.Unsetenv(EnvConn)
	t, canRead, canWrite, err := envTransport(v)
	if err != nil {
		return nil, err
	}
	return newConn(t, canRead, canWrite, cfg), nil
}

// Register makes f runnable in a child process started with [NewProcess],
// under name. Call it before [Dispatch], from an init function or at the top
// of main, in the parent as in the child: [Process.Start] refuses a name this
// process has not registered by then. It panics if name is empty or already
// registered, or f is nil: those are programming errors found at start-up.
func Register(name string, f func(conn *Conn) error) {
	regMu.Lock()
	defer regMu.Unlock()
	switch {
	case name == "":
		panic("procpipe: Register with an empty name")
	case f == nil:
		panic("procpipe: Register of " + name + " with a nil function")
	case registry[name].f != nil:
		panic("procpipe: Register called twice for " + name)
	}
	registry[name] = registered{f: f, late: dispatched}
}

// Dispatch runs the registered function a child started by [NewProcess] was
// started for, and exits; in any other process it returns at once. Call it
// at the top of main (or of TestMain), after [Register] and before anything
// else: everything before it runs in the child too.
//
// The function gets the connection end its parent handed over (nil if none).
// The child exits with status 0 if the function returns nil; otherwise it
// prints the error to standard error and exits with status 1. A child asked
// to run a name that is not registered, or handed an end it cannot use,
// prints why and exits with status 2, as does a Go program that panics; the
// parent's [Process.Wait] reports only the status.
func Dispatch() {
	regMu.Lock()
	dispatched = true
	regMu.Unlock()
	name, ok := os.LookupEnv(EnvFunc)
	if !ok {
		return
	}
	os.Unsetenv(EnvFunc)
	regMu.Lock()
	f := registry[name].f
	regMu.Unlock()
	if f == nil {
		fmt.Fprintf(os.Stderr, "procpipe: this child was started to run %q, which this program did not register before calling Dispatch\n", name)
		os.Exit(2)
	}
	// The files the parent handed over are this child's alone, taken or
	// not: none reaches a child of its own.
	inheritedMu.Lock()
	readInherited()
	inheritedMu.Unlock()
	conn, err := Parent()
	if err != nil && !errors.Is(err, ErrNoParent) {
		fmt.Fprintf(os.Stderr, "procpipe: child %s: %v\n", name, err)
		os.Exit(2)
	}
	err = f(conn)
	if conn != nil {
		conn.Close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "procpipe: child %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// A Process is a child process that owns one end of a connection, like
// Python's multiprocessing.Process. Make one with [NewProcess] or [Attach],
// then Start it and Wait for it.
type Process struct {
	// Cmd is the command that runs the child. Its fields (Stdout, Env,
	// SysProcAttr, ...) may be changed before Start.
	Cmd *exec.Cmd

	end    *Conn
	target string
	viaNew bool        // made by NewProcess: target is a registered name
	self   string      // this program, which NewProcess set as Cmd.Path
	files  []namedFile // see AddFile
}

// NewProcess returns a Process that runs the function registered under
// target (see [Register]) in a new process of this same program, with end as
// its connection, like Python's Process(target=f, args=(end,)). args become
// the child's os.Args[1:]. The child shares this process's standard output
// and error. end may be nil.
func NewProcess(target string, end *Conn, args ...string) *Process {
	exe, err := os.Executable()
	cmd := exec.Command(exe, args...)
	if err != nil {
		cmd.Err = fmt.Errorf("procpipe: finding this program to run a child: %w", err)
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// A child never inherits an end or a function meant for this process.
	cmd.Env = append(dropEnv(cmd.Environ(), EnvConn, EnvFunc, EnvFiles), EnvFunc+"="+target)
	return &Process{Cmd: cmd, end: end, target: target, viaNew: true, self: cmd.Path}
}

// Attach returns a Process that runs cmd, any program, with end as its
// connection: the child finds it through [EnvConn] (with [Parent] in Go).
func Attach(cmd *exec.Cmd, end *Conn) *Process {
	return &Process{Cmd: cmd, end: end}
}

// Start starts the child and closes this process's copy of the child's end,
// whether or not the start succeeded, so that Recv on the other end returns
// io.EOF once the child exits or dies. For a Process made by [NewProcess]
// it starts nothing and returns an error if this program has no function
// registered under the target's name, or registered it only after
// [Dispatch]: the child would not find it. (If Cmd.Path was changed to run
// another program, whose registry this one cannot see, it does not check.)
func (p *Process) Start() error {
	if p.end != nil {
		defer p.end.Close()
	}
	if p.viaNew {
		if os.Getenv(EnvFunc) != "" {
			return fmt.Errorf("procpipe: this process is a child started to run %q but never called Dispatch; refusing to start %q, which would run this program again", os.Getenv(EnvFunc), p.target)
		}
		if err := p.checkTarget(); err != nil {
			return err
		}
		// Again, in case Cmd.Env was replaced since NewProcess: a child
		// without EnvFunc would run this program's main again.
		p.Cmd.Env = append(dropEnv(p.Cmd.Environ(), EnvConn, EnvFunc, EnvFiles), EnvFunc+"="+p.target)
	}
	if p.end != nil {
		if p.end.closed.Load() {
			return fmt.Errorf("procpipe: start: the child's end is closed")
		}
		v, release, err := attachEnd(p.Cmd, p.end.t.File())
		if err != nil {
			return err
		}
		defer release()
		p.Cmd.Env = append(dropEnv(p.Cmd.Environ(), EnvConn), EnvConn+"="+v)
	}
	if err := p.attachFiles(); err != nil {
		return err
	}
	return p.Cmd.Start()
}

// checkTarget reports a target that a child running this same program would
// not find, so that a misspelt name fails Start rather than the child. A
// Cmd.Path changed since NewProcess runs another program, whose registry
// this process cannot see.
func (p *Process) checkTarget() error {
	if p.Cmd.Path != p.self {
		return nil
	}
	regMu.Lock()
	r := registry[p.target]
	regMu.Unlock()
	switch {
	case r.f == nil:
		return fmt.Errorf("procpipe: start: no function is registered as %q in this program", p.target)
	case r.late:
		return fmt.Errorf("procpipe: start: %q was registered after Dispatch, which a child runs before it gets that far; register it in an init function or before Dispatch", p.target)
	}
	return nil
}

// Wait waits for the child to exit, like Python's join(); see
// [exec.Cmd.Wait].
func (p *Process) Wait() error { return p.Cmd.Wait() }

// Run starts the child and waits for it.
func (p *Process) Run() error {
	if err := p.Start(); err != nil {
		return err
	}
	return p.Wait()
}

// Kill kills the child at once.
func (p *Process) Kill() error {
	if p.Cmd.Process == nil {
		return errors.New("procpipe: kill: process not started")
	}
	return p.Cmd.Process.Kill()
}

// Pid returns the child's process ID, or -1 before Start.
func (p *Process) Pid() int {
	if p.Cmd.Process == nil {
		return -1
	}
	return p.Cmd.Process.Pid
}

// ExitCode returns the child's exit status after Wait, or -1 if it has not
// exited or was killed by a signal.
func (p *Process) ExitCode() int {
	if p.Cmd.ProcessState == nil {
		return -1
	}
	return p.Cmd.ProcessState.ExitCode()
}

// dropEnv returns env without the variables named.
func dropEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}
