//go:build unix

package procpipe

import (
	"os"
	"os/exec"
	"strconv"
)

// attachEnd adds f to the files cmd's child inherits and returns the value of
// EnvConn that names it there.
func attachEnd(cmd *exec.Cmd, f *os.File) (string, error) {
	cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	return strconv.Itoa(2 + len(cmd.ExtraFiles)), nil
}
