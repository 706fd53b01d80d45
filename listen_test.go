package procpipe_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procpipe/procpipe"
)

func listen(t *testing.T, addr string, cfg *procpipe.Config) *procpipe.Listener {
	t.Helper()
	l, err := procpipe.Listen(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// serveEcho accepts until the listener closes, echoing one message per
// connection; accept errors go to errs (if not nil).
func serveEcho(l *procpipe.Listener, errs chan<- error) {
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			if errs != nil {
				errs <- err
			}
			continue
		}
		go func() {
			defer c.Close()
			for {
				b, err := c.RecvBytes()
				if err != nil {
					return
				}
				c.SendBytes(b)
			}
		}()
	}
}

// TestListenAfterClientLeft has a client connect and hang up before Accept:
// the Listener must keep serving, and accept a later client. (On Windows
// the pipe instance the first client left is dead; on Unix, Accept returns
// its connection, at its end of stream.)
func TestListenAfterClientLeft(t *testing.T) {
	addr := testAddr(t)
	l := listen(t, addr, nil)
	c, err := procpipe.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	read := make(chan struct{})
	defer close(read)
	go func() {
		c, err := procpipe.Dial(addr, nil)
		if err != nil {
			t.Errorf("Dial of the later client: %v", err)
			l.Close()
			return
		}
		defer c.Close()
		c.SendBytes([]byte("later"))
		<-read
	}()
	for i := range 2 {
		c, err := l.Accept()
		if err != nil {
			t.Fatalf("Accept %d after a client left: %v", i, err)
		}
		msg, err := c.RecvBytes()
		c.Close()
		if err == nil && string(msg) == "later" {
			return
		}
	}
	t.Fatal("the later client was not accepted")
}

// TestListenManyClients has 200 clients at once, each exchanging checksummed
// messages through one authenticating listener.
func TestListenManyClients(t *testing.T) {
	path := testAddr(t)
	cfg := &procpipe.Config{AuthKey: []byte("many")}
	l := listen(t, path, cfg)
	errs := make(chan error, 200)
	go serveEcho(l, errs)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := procpipe.Dial(path, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for seq := range 5 {
				c.SendBytes(message(i, seq, 100*seq))
				b, err := c.RecvBytes()
				if err != nil {
					t.Error(err)
					return
				}
				if s, q, err := parseMessage(b); err != nil || s != i || q != seq {
					t.Errorf("client %d got message (%d, %d), %v", i, s, q, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("Accept: %v", err)
	default:
	}
}

// TestListenSilentClientHoldsUpNoOne has a client connect to a keyed
// Listener and say nothing: the next client must get through at once, not
// when the silent one's handshake runs out of time (an hour here).
func TestListenSilentClientHoldsUpNoOne(t *testing.T) {
	addr := testAddr(t)
	key := []byte("patient")
	l := listen(t, addr, &procpipe.Config{AuthKey: key, HandshakeTimeout: time.Hour})
	accepted := make(chan *procpipe.Conn, 1)
	go func() {
		for {
			c, err := l.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				accepted <- c
				return
			}
		}
	}()
	silent, err := procpipe.Dial(addr, nil) // no key: it never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Once the challenge is here, the Listener is in the silent handshake.
	if _, err := silent.RecvBytes(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := procpipe.DialContext(ctx, addr, &procpipe.Config{AuthKey: key})
	if err != nil {
		t.Fatalf("Dial while another client is silent in its handshake: %v", err)
	}
	defer c.Close()
	s := <-accepted
	defer s.Close()
	if err := c.SendBytes([]byte("through")); err != nil {
		t.Fatal(err)
	}
	if b, err := s.RecvBytes(); err != nil || string(b) != "through" {
		t.Fatalf("RecvBytes = %q, %v; want \"through\"", b, err)
	}
}

// TestListenerCloseDropsWaiting has a client finish its handshake while no
// Accept waits for it: Close must close its connection, which the client
// sees as the end of the stream, and leave no goroutine behind.
func TestListenerCloseDropsWaiting(t *testing.T) {
	base := runtime.NumGoroutine()
	addr := testAddr(t)
	cfg := &procpipe.Config{AuthKey: []byte("waiting")}
	l, err := procpipe.Listen(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	first := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		first <- err
	}()
	c, err := procpipe.Dial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-first; err != nil {
		t.Fatalf("Accept: %v", err)
	}
	waiting, err := procpipe.Dial(addr, cfg) // no Accept takes it
	if err != nil {
		t.Fatalf("Dial with no Accept waiting: %v", err)
	}
	defer waiting.Close()
	for procpipe.HandingForTest() == 0 { // its handshake ends on the Listener's side
		runtime.Gosched()
	}
	l.Close()
	if err := waiting.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := waiting.RecvBytes(); !errors.Is(err, io.EOF) {
		t.Errorf("RecvBytes of a client waiting for Accept when the Listener closed = %v; want io.EOF", err)
	}
	waiting.Close()
	goroutinesSettle(t, base)
}

func TestListenWrongKey(t *testing.T) {
	addr := testAddr(t)
	l := listen(t, addr, &procpipe.Config{AuthKey: []byte("right")})
	errs := make(chan error, 1)
	go serveEcho(l, errs)
	if _, err := procpipe.Dial(addr, &procpipe.Config{AuthKey: []byte("wrong")}); !errors.Is(err, procpipe.ErrAuthentication) {
		t.Errorf("Dial with a wrong key = %v; want ErrAuthentication", err)
	}
	if err := <-errs; !errors.Is(err, procpipe.ErrAuthentication) {
		t.Errorf("Accept of a client with a wrong key = %v; want ErrAuthentication", err)
	}
	c, err := procpipe.Dial(addr, &procpipe.Config{AuthKey: []byte("right")})
	if err != nil {
		t.Fatalf("Dial with the right key after a refused one: %v", err)
	}
	c.Close()
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v; want net.ErrClosed", err)
	}
}

// TestListenFilesInHandshake has a client pass files where its answer to a
// keyed Listener's challenge belongs: Accept must fail as an authentication
// failure, not point the server to RecvFiles, and go on serving.
func TestListenFilesInHandshake(t *testing.T) {
	addr := testAddr(t)
	l := listen(t, addr, &procpipe.Config{AuthKey: []byte("key")})
	errs := make(chan error, 1)
	go serveEcho(l, errs)
	c, err := procpipe.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sent := make(chan error, 1)
	go func() { sent <- c.SendFiles(f) }()
	if err := <-errs; !errors.Is(err, procpipe.ErrAuthentication) || strings.Contains(err.Error(), "RecvFiles") {
		t.Errorf("Accept of a client passing files = %v; want an authentication error that does not point to RecvFiles", err)
	}
	c.Close()
	<-sent // fails or not: the server dropped the connection either way
	d, err := procpipe.Dial(addr, &procpipe.Config{AuthKey: []byte("key")})
	if err != nil {
		t.Fatalf("Dial with the key after the refused client: %v", err)
	}
	d.Close()
}

// TestListenKeepsItsConfig changes and reuses the Config after Listen: the
// Listener must still require the key it was made with.
func TestListenKeepsItsConfig(t *testing.T) {
	addr := testAddr(t)
	key := []byte("secret")
	cfg := &procpipe.Config{AuthKey: key}
	l := listen(t, addr, cfg)
	cfg.AuthKey = nil
	copy(key, "XXXXXX") // the caller's bytes, wiped
	for _, clientKey := range [][]byte{[]byte("secret"), nil} {
		dialed := make(chan error, 1)
		go func() {
			c, err := procpipe.Dial(addr, &procpipe.Config{AuthKey: clientKey})
			if err == nil {
				// Without a key the client takes the challenge for its
				// first message; it hangs up.
				c.Close()
			}
			dialed <- err
		}()
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		derr := <-dialed
		switch {
		case clientKey != nil && (err != nil || derr != nil):
			t.Errorf("with the Listener's key: Accept = %v, Dial = %v", err, derr)
		case clientKey == nil && !errors.Is(err, procpipe.ErrAuthentication):
			t.Errorf("Accept of a client without the key = %v; want ErrAuthentication", err)
		}
	}
}

// TestListenSmallMaxMessageSize has both ends limit messages to less than a
// handshake message: the handshake must not count against the limit, which
// then applies to the user's messages.
func TestListenSmallMaxMessageSize(t *testing.T) {
	addr := testAddr(t)
	cfg := &procpipe.Config{AuthKey: []byte("secret"), MaxMessageSize: 32}
	l := listen(t, addr, cfg)
	errs := make(chan error, 1)
	go serveEcho(l, errs)
	c, err := procpipe.Dial(addr, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	var tl *procpipe.TooLargeError
	if err := c.SendBytes(make([]byte, 33)); !errors.As(err, &tl) {
		t.Errorf("SendBytes of 33 bytes after the handshake = %v; want a TooLargeError", err)
	}
	if err := c.SendBytes([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got, err := c.RecvBytes(); err != nil || string(got) != "ping" {
		t.Errorf("echo = %q, %v", got, err)
	}
	select {
	case err := <-errs:
		t.Errorf("Accept: %v", err)
	default:
	}
}

// TestAcceptClientHangsUp has clients hang up in the middle of a keyed
// Listener's handshake, before and after reading the challenge: Accept must
// report a failed authentication, the error a server expects from a bad
// client, and go on serving.
func TestAcceptClientHangsUp(t *testing.T) {
	addr := testAddr(t)
	l := listen(t, addr, &procpipe.Config{AuthKey: []byte("k")})
	for _, read := range []bool{false, true} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			c, err := procpipe.Dial(addr, nil)
			if err != nil {
				return
			}
			if read {
				c.RecvBytes()
			}
			c.Close()
		}()
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, procpipe.ErrAuthentication) {
			t.Errorf("Accept of a client that hung up (after reading the challenge: %v) = %v; want ErrAuthentication", read, err)
		}
		<-done
	}
}
