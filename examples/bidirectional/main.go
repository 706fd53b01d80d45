// Command bidirectional is Go's version of the second example of Python's
// multiprocessing.Pipe documentation: parent and child process each send a
// message and print the one they receive.
//
//	go run ./examples/bidirectional
package main

import (
	"fmt"
	"log"

	"github.com/procpipe/procpipe"
)

func child(conn *procpipe.Conn) error {
	if err := conn.Send("Have a nice day!"); err != nil {
		return err
	}
	var msg string
	if err := conn.Recv(&msg); err != nil {
		return err
	}
	fmt.Println("Child received:", msg)
	return conn.Close()
}

func main() {
	procpipe.Register("child", child)
	procpipe.Dispatch() // in the child process: runs child, then exits

	parentConn, childConn, err := procpipe.Pipe(true)
	if err != nil {
		log.Fatal(err)
	}
	p := procpipe.NewProcess("child", childConn)
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	var msg string
	if err := parentConn.Recv(&msg); err != nil {
		log.Fatal(err)
	}
	fmt.Println("Parent received:", msg)
	if err := parentConn.Send("Same to you!"); err != nil {
		log.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		log.Fatal(err)
	}
}
