// Command listener runs a server that authenticates its clients with a
// shared key, as Python's multiprocessing.connection.Listener(authkey=...)
// does, and answers each one. The clients are child processes (any process
// that knows the address and the key could be one, a Python
// multiprocessing.connection.Client included); one of them has the wrong key
// and is refused.
//
//	go run ./examples/listener
package main

import (
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/procpipe/procpipe"
)

// client dials the server named in its arguments and asks it one question.
func client(*procpipe.Conn) error {
	addr, key, name := os.Args[1], os.Args[2], os.Args[3]
	conn, err := procpipe.Dial(addr, &procpipe.Config{AuthKey: []byte(key), Codec: procpipe.JSON})
	if errors.Is(err, procpipe.ErrAuthentication) {
		fmt.Printf("%s: refused: wrong key\n", name)
		return nil
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Send(name); err != nil {
		return err
	}
	var answer string
	if err := conn.Recv(&answer); err != nil {
		return err
	}
	fmt.Printf("%s: %s\n", name, answer)
	return nil
}

func main() {
	procpipe.Register("client", client)
	procpipe.Dispatch()

	dir, err := os.MkdirTemp("", "procpipe-listener")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	addr := filepath.Join(dir, "server.sock")
	const key = "correct horse battery staple"
	l, err := procpipe.Listen(addr, &procpipe.Config{AuthKey: []byte(key), Codec: procpipe.JSON})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	go func() {
		for {
			conn, err := l.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue // a client failed the handshake; keep serving
			}
			var name string
			if err := conn.Recv(&name); err == nil {
				conn.Send("hello " + strings.ToUpper(name) + ", you are authenticated")
			}
			conn.Close()
		}
	}()

	clients := []struct{ name, key string }{{"alice", key}, {"mallory", "guess"}, {"bob", key}}
	for _, c := range clients {
		// One at a time, so the output has a fixed order.
		if err := procpipe.NewProcess("client", nil, addr, c.key, c.name).Run(); err != nil {
			log.Fatal(err)
		}
	}
}
