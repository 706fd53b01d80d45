//go:build unix

package procpipe_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/procpipe/procpipe"
)

// pythonFileConfig returns the settings a Go end needs to pass files with
// the python3 here: its multiprocessing.reduction acknowledges passed files
// on every system from 3.14 on, and before that only on macOS.
func pythonFileConfig(t *testing.T) *procpipe.Config {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		return nil // startPython skips or fails
	}
	out, err := exec.Command(python, "-c", "from multiprocessing import reduction; print(getattr(reduction, 'ACKNOWLEDGE', True))").Output()
	if err != nil {
		t.Fatalf("asking python3 whether it acknowledges passed files: %v", err)
	}
	return &procpipe.Config{NoFileAck: strings.TrimSpace(string(out)) != "True"}
}

// TestPythonRecvHandle passes a file between two messages to a Python child
// that takes it with multiprocessing.reduction.recv_handle.
func TestPythonRecvHandle(t *testing.T) {
	conn, p, _ := startPython(t, pythonFileConfig(t), "recvhandle")
	f := contentFile(t, "file from Go")
	defer f.Close()
	if err := conn.SendBytes([]byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := conn.SendFiles(f); err != nil {
		t.Fatal(err)
	}
	if err := conn.SendBytes([]byte("after")); err != nil {
		t.Fatal(err)
	}
	got, err := conn.RecvBytes()
	if err != nil || string(got) != "before|file from Go|after" {
		t.Fatalf("Python read %q, %v", got, err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Python child: %v", err)
	}
}

// TestPythonSendHandle receives a file a Python child passes with
// multiprocessing.reduction.send_handle between two messages.
func TestPythonSendHandle(t *testing.T) {
	conn, p, _ := startPython(t, pythonFileConfig(t), "sendhandle", "file from Python")
	if got, err := conn.RecvBytes(); err != nil || string(got) != "before" {
		t.Fatalf("first message from Python = %q, %v", got, err)
	}
	files, err := conn.RecvFiles()
	if err != nil {
		t.Fatal(err)
	}
	got, err := readFiles(files)
	if err != nil || !equalStrings(got, []string{"file from Python"}) {
		t.Fatalf("file from Python reads %q, %v", got, err)
	}
	if got, err := conn.RecvBytes(); err != nil || string(got) != "after" {
		t.Fatalf("message after the file = %q, %v", got, err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Python child: %v", err)
	}
}
