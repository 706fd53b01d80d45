package procpipe

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
)

// EnvFiles names the files a child inherits besides its connection: a
// comma-separated list of name=value pairs, the value being the descriptor
// number on Unix, as in PROCPIPE_FILES=listener=4,log=5. A name is one or
// more ASCII letters, digits, '_', '-' or '.'. [Process.AddFile] sets it and
// [InheritedFile] reads it; a parent in another language may set it too.
const EnvFiles = "PROCPIPE_FILES"

// ErrNoInheritedFile is wrapped by the error of [InheritedFile] for a name
// the parent did not hand over (or that was already taken).
var ErrNoInheritedFile = errors.New("procpipe: no such inherited file")

type namedFile struct {
	name string
	f    *os.File
}

// AddFile makes the child inherit f under name, besides its connection, as a
// listening socket is handed to the new server in a graceful restart. The
// child takes it with [InheritedFile](name); a program in another language
// finds it in [EnvFiles]. Call AddFile before Start.
//
// f stays the caller's: Start neither closes it nor keeps it, so the caller
// may close it once Start has returned. As with exec.Cmd.ExtraFiles, the child
// gets the descriptor in the blocking mode f has then. Start fails if name is
// not a valid name (see [EnvFiles]) or was added before, or f is nil.
func (p *Process) AddFile(name string, f *os.File) {
	p.files = append(p.files, namedFile{name, f})
}

// checkFiles reports the first file added that Start cannot hand over.
func (p *Process) checkFiles() error {
	seen := make(map[string]bool, len(p.files))
	for _, nf := range p.files {
		switch {
		case !validFileName(nf.name):
			return fmt.Errorf("procpipe: start: inherited file name %q: want one or more ASCII letters, digits, '_', '-' or '.'", nf.name)
		case seen[nf.name]:
			return fmt.Errorf("procpipe: start: inherited file name %q added twice", nf.name)
		case nf.f == nil:
			return fmt.Errorf("procpipe: start: inherited file %q is nil", nf.name)
		}
		seen[nf.name] = true
	}
	return nil
}

func validFileName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// attachFiles adds p's files to the child's and names them in its
// environment.
func (p *Process) attachFiles() error {
	if len(p.files) == 0 {
		return nil
	}
	if err := p.checkFiles(); err != nil {
		return err
	}
	pairs := make([]string, len(p.files))
	for i, nf := range p.files {
		v, err := attachFile(p.Cmd, nf.f)
		if err != nil {
			return fmt.Errorf("procpipe: start: inherited file %q: %w", nf.name, err)
		}
		pairs[i] = nf.name + "=" + v
	}
	p.Cmd.Env = append(dropEnv(p.Cmd.Environ(), EnvFiles), EnvFiles+"="+strings.Join(pairs, ","))
	return nil
}

var (
	inheritedMu  sync.Mutex
	inherited    map[string]string // name -> value from EnvFiles; nil until read
	inheritedErr error             // EnvFiles was malformed
)

// InheritedFile returns the file the parent handed this process under name
// (see [Process.AddFile] and [EnvFiles]). The first call (or [Dispatch], in
// a child started by [NewProcess]) reads [EnvFiles] and removes it from the
// environment, and makes every file it names close-on-exec, so that this
// process's own children see none of them. Each file can be taken once; it
// is the caller's to close. A name the parent did not hand over gives an
// error matching [ErrNoInheritedFile].
func InheritedFile(name string) (*os.File, error) {
	inheritedMu.Lock()
	defer inheritedMu.Unlock()
	readInherited()
	if inheritedErr != nil {
		return nil, inheritedErr
	}
	v, ok := inherited[name]
	if !ok {
		return nil, fmt.Errorf("procpipe: inherited file %q: %w (%s names %d others)", name, ErrNoInheritedFile, EnvFiles, len(inherited))
	}
	delete(inherited, name)
	f, err := inheritFile(name, v)
	if err != nil {
		return nil, fmt.Errorf("procpipe: inherited file %q (%s=%s): %w", name, EnvFiles, v, err)
	}
	return f, nil
}

// readInherited reads EnvFiles once. inheritedMu is held.
func readInherited() {
	if inherited != nil || inheritedErr != nil {
		return
	}
	inherited, inheritedErr = parseInherited()
	for _, v := range inherited {
		keepFromChildren(v)
	}
}

func parseInherited() (map[string]string, error) {
	m := map[string]string{}
	v, ok := os.LookupEnv(EnvFiles)
	if !ok || v == "" {
		return m, nil
	}
	os.Unsetenv(EnvFiles)
	for _, item := range strings.Split(v, ",") {
		name, val, ok := strings.Cut(item, "=")
		if !ok || !validFileName(name) || val == "" {
			return nil, fmt.Errorf("procpipe: %s=%q: %q is not name=value", EnvFiles, v, item)
		}
		m[name] = val
	}
	return m, nil
}
