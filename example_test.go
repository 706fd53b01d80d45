package procpipe_test

import (
	"fmt"
	"log"
	"time"

	"github.com/procpipe/procpipe"
)

func ExamplePipe() {
	parentConn, childConn, err := procpipe.Pipe(true)
	if err != nil {
		log.Fatal(err)
	}
	defer parentConn.Close()
	defer childConn.Close()

	go parentConn.Send([]string{"hello", "world"})
	var msg []string
	if err := childConn.Recv(&msg); err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg)
	// Output: [hello world]
}

func ExamplePipe_oneWay() {
	r, w, err := procpipe.Pipe(false)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	w.SendBytes([]byte("raw bytes"))
	w.Close()
	for {
		b, err := r.RecvBytes()
		if err != nil {
			fmt.Println(err) // io.EOF once the sender has closed
			break
		}
		fmt.Printf("%s\n", b)
	}
	// Output:
	// raw bytes
	// EOF
}

// The child function would be registered in main (or init), and
// procpipe.Dispatch called first thing in main:
//
//	func main() {
//		procpipe.Register("greeter", greeter)
//		procpipe.Dispatch()
//		...
//	}
func ExampleNewProcess() {
	parentConn, childConn, err := procpipe.Pipe(true)
	if err != nil {
		log.Fatal(err)
	}
	p := procpipe.NewProcess("greeter", childConn) // see main_test.go
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	parentConn.Send("Welcome to TutorialsPoint")
	if err := p.Wait(); err != nil {
		log.Fatal(err)
	}
	// Output: Child received: Welcome to TutorialsPoint
}

func ExampleConn_Poll() {
	a, b, err := procpipe.Pipe(true)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	defer b.Close()

	ready, _ := b.Poll(10 * time.Millisecond)
	fmt.Println("before send:", ready)
	a.Send(42)
	ready, _ = b.Poll(-1) // wait as long as it takes
	fmt.Println("after send:", ready)
	// Output:
	// before send: false
	// after send: true
}

func ExampleConn_RecvBytesInto() {
	a, b, err := procpipe.Pipe(true)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	defer b.Close()

	a.SendBytes([]byte("fits"))
	a.SendBytes([]byte("does not fit"))
	buf := make([]byte, 8)
	n, _ := b.RecvBytesInto(buf)
	fmt.Printf("%q\n", buf[:n])
	_, err = b.RecvBytesInto(buf)
	if short, ok := err.(*procpipe.BufferTooShortError); ok {
		fmt.Printf("too short, message was %q\n", short.Msg)
	}
	// Output:
	// "fits"
	// too short, message was "does not fit"
}
