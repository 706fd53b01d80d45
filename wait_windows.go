package procpipe

import (
	"context"
	"errors"
	"fmt"
)

var errWaitWindows = fmt.Errorf("procpipe: Wait is not supported on Windows yet: %w", errors.ErrUnsupported)

func waitReady(ctx context.Context, conns []*Conn, now bool) ([]*Conn, error) {
	return nil, errWaitWindows
}
