// Command parent_to_child is Go's version of the first example of Python's
// multiprocessing.Pipe documentation: the parent sends a message to a child
// process, which prints it.
//
//	go run ./examples/parent_to_child
package main

import (
	"fmt"
	"log"

	"github.com/procpipe/procpipe"
)

func child(conn *procpipe.Conn) error {
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
	if err := parentConn.Send("Welcome to TutorialsPoint"); err != nil {
		log.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		log.Fatal(err)
	}
}
