//go:build !unix

package procpipe

import (
	"errors"
	"fmt"
	"runtime"
)

const filesAlwaysAcked = false

// passerOf returns nil: passing files is not implemented here yet.
func passerOf(t transport) filePasser { return nil }

func noPasserError() error {
	return fmt.Errorf("procpipe: passing files is not supported on %s yet: %w", runtime.GOOS, errors.ErrUnsupported)
}
