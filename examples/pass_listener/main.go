// Command pass_listener hands a listening TCP socket to a child process over
// a procpipe connection, as Python's multiprocessing.reduction.send_handle
// does: the parent opens the listener, the child serves one request on it,
// and the parent prints the answer.
//
//	go run ./examples/pass_listener
package main

import (
	"bufio"
	"fmt"
	"log"
	"net"
	"strings"

	"github.com/procpipe/procpipe"
)

// child receives the listener, serves one line on one connection and exits.
func child(conn *procpipe.Conn) error {
	files, err := conn.RecvFiles()
	if err != nil {
		return err
	}
	l, err := net.FileListener(files[0]) // a duplicate of the file
	files[0].Close()
	if err != nil {
		return err
	}
	defer l.Close()
	c, err := l.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c, "child served: %s", strings.ToUpper(line))
	return err
}

func main() {
	procpipe.Register("child", child)
	procpipe.Dispatch() // in the child process: runs child, then exits

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	parentConn, childConn, err := procpipe.Pipe(true)
	if err != nil {
		log.Fatal(err)
	}
	p := procpipe.NewProcess("child", childConn)
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	if err := parentConn.SendConn(l.(*net.TCPListener)); err != nil {
		log.Fatal(err)
	}
	// The child has its own copy now. Connections made from here on queue
	// on the shared socket until the child accepts them.
	addr := l.Addr().String()
	l.Close()

	c, err := net.Dial("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(c, "hello, listener\n")
	answer, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	c.Close()
	fmt.Print("Parent received: ", answer)
	if err := p.Wait(); err != nil {
		log.Fatal(err)
	}
}
