package procpipe

import (
	"context"

	"github.com/procpipe/procpipe/windows"
)

// pipeListener is a listening named pipe.
type pipeListener struct {
	l   *windows.Listener
	cfg *Config
}

func listen(address string, cfg *Config) (listener, error) {
	l, err := windows.Listen(address)
	if err != nil {
		return nil, err
	}
	return &pipeListener{l: l, cfg: cfg}, nil
}

func (l *pipeListener) accept() (*Conn, error) {
	c, err := l.l.Accept()
	if err != nil {
		return nil, err
	}
	return newConn(c, true, true, l.cfg), nil
}

func (l *pipeListener) close() error { return l.l.Close() }

func dial(ctx context.Context, address string, cfg *Config) (*Conn, error) {
	c, err := windows.Dial(ctx, address)
	if err != nil {
		return nil, err
	}
	return newConn(c, true, true, cfg), nil
}
