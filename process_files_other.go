//go:build !unix

package procpipe

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
)

var errFilesUnsupported = fmt.Errorf("procpipe: inherited files are not supported on %s yet: %w", runtime.GOOS, errors.ErrUnsupported)

func attachFile(cmd *exec.Cmd, f *os.File) (string, error) { return "", errFilesUnsupported }

func inheritFile(name, v string) (*os.File, error) { return nil, errFilesUnsupported }

func keepFromChildren(v string) {}
