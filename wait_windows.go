package procpipe

import "context"

func waitReady(ctx context.Context, conns []*Conn, now bool) ([]*Conn, error) {
	return nil, errWindows
}
