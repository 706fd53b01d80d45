package procpipe

import (
	"context"
	"net"
)

func listen(address string) (net.Listener, func(), error) { return nil, nil, errWindows }

func dial(ctx context.Context, address string) (net.Conn, error) { return nil, errWindows }

func (cfg *Config) netConn(nc net.Conn) (*Conn, error) {
	nc.Close()
	return nil, errWindows
}
