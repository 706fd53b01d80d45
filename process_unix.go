//go:build unix

package procpipe

import (
	"os"
	"os/exec"
	"strconv"
)

// attachEnd adds f to the files cmd's child inherits and returns the value of
// EnvConn that names it there, with a function to call once the child has
// started (or failed to): nothing to release on Unix, where the child gets a
// copy of f itself.
func attachEnd(cmd *exec.Cmd, f *os.File) (string, func(), error) {
	cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	return strconv.Itoa(2 + len(cmd.ExtraFiles)), func() {}, nil
}
