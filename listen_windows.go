package procpipe

import (
	"context"
	"errors"
	"fmt"
	"net"
)

var errListenWindows = fmt.Errorf("procpipe: Listen and Dial are not supported on Windows yet: %w", errors.ErrUnsupported)

func listen(address string) (net.Listener, func(), error) { return nil, nil, errListenWindows }

func dial(ctx context.Context, address string) (net.Conn, error) { return nil, errListenWindows }

func (cfg *Config) netConn(nc net.Conn) (*Conn, error) {
	nc.Close()
	return nil, errListenWindows
}
