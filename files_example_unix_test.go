//go:build unix

package procpipe_test

import (
	"fmt"
	"io"
	"log"
	"os"

	"github.com/procpipe/procpipe"
)

func ExampleConn_SendFiles() {
	a, b, err := procpipe.Pipe(true)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	defer b.Close()

	r, w, err := os.Pipe()
	if err != nil {
		log.Fatal(err)
	}
	io.WriteString(w, "hello through a passed file\n")
	w.Close()

	// SendFiles waits for the receiver's acknowledgement, so it runs
	// while this goroutine receives.
	sent := make(chan error, 1)
	go func() { sent <- a.SendFiles(r) }()
	files, err := b.RecvFiles()
	if err != nil {
		log.Fatal(err)
	}
	if err := <-sent; err != nil {
		log.Fatal(err)
	}
	r.Close() // the sender's file stays its own

	data, err := io.ReadAll(files[0])
	files[0].Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(data))
	// Output: hello through a passed file
}
