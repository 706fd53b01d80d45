package procpipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/procpipe/procpipe/internal/testhook"
)

// A Listener accepts connections from processes that are not its children,
// like Python's multiprocessing.connection.Listener. Make one with [Listen],
// and Close it when done: with an AuthKey, its goroutines run handshakes from
// the first Accept until Close.
//
// Multiple goroutines may call Accept at once.
type Listener struct {
	cfg     *Config
	ln      listener
	address string

	// closing is cancelled by Close, which so stops handshakes.
	closing context.Context
	stop    context.CancelFunc

	// With an AuthKey, the first Accept starts a goroutine that accepts
	// connections, each handshaken in a goroutine of its own, at most
	// maxHandshakes at once (a slot in slots each); Accept takes what they
	// hand over from handshaken. Close waits for all of them (wg).
	mu         sync.Mutex // orders that start before or after Close's stop
	started    bool
	handshaken chan accepted
	slots      chan struct{}
	wg         sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// accepted is a handshake's result: a Conn, or the error Accept returns.
type accepted struct {
	c   *Conn
	err error
}

// maxHandshakes bounds the handshakes a Listener runs at once, and so the
// connections it holds that no Accept has returned yet; further clients
// wait in the kernel's backlog.
const maxHandshakes = 64

// Listen listens on address with the settings of cfg (nil for defaults):
//
//   - a path: a Unix domain socket, created with mode 0600 (owner only). A
//     stale socket file left by a dead listener is replaced; a live one, or
//     a file that is not a socket, is an error. Close removes the file.
//   - "@name" (or Python's "\x00name"): a Linux abstract socket. It has no
//     permissions: anyone in the network namespace can connect, so set
//     [Config.AuthKey].
//   - on Windows, a pipe name \\.\pipe\name: owner-only, no remote
//     clients, and Listen fails if the name is already in use.
//
// With cfg.AuthKey set, the Listener runs CPython's handshake on each
// connection (see Accept).
// The Listener keeps a copy of cfg, AuthKey's bytes included: changing cfg
// afterwards changes nothing.
func Listen(address string, cfg *Config) (*Listener, error) {
	cfg = cfg.clone()
	ln, err := listen(address, cfg)
	if err != nil {
		return nil, fmt.Errorf("procpipe: listen %s: %w", address, err)
	}
	l := &Listener{cfg: cfg, ln: ln, address: address}
	l.closing, l.stop = context.WithCancel(context.Background())
	return l, nil
}

// Addr returns the address the Listener listens on.
func (l *Listener) Addr() string { return l.address }

// Accept waits for the next connection and returns it as a Conn, after the
// handshake if the Listener has an AuthKey. A client that fails the handshake
// (an error matching [ErrAuthentication]) or is too slow with it (one
// matching [os.ErrDeadlineExceeded]) is disconnected and its error returned;
// the Listener stays open, so servers keep accepting. After Close, Accept
// returns an error matching [net.ErrClosed].
//
// Handshakes run in goroutines of the Listener, up to 64 at once, from the
// first Accept until Close: a slow or silent client holds up no other, and
// Accept returns connections in the order their handshakes end. So, as with
// a socket's backlog, a client's Dial may return before an Accept takes its
// connection: up to 64 wait so, and Close closes them. Close a keyed
// Listener when done with it: until then its goroutines run.
func (l *Listener) Accept() (*Conn, error) {
	if len(l.cfg.authKey()) == 0 {
		c, err := l.ln.accept()
		if err != nil {
			return nil, fmt.Errorf("procpipe: accept: %w", err)
		}
		return c, nil
	}
	if l.start() {
		select {
		case a := <-l.handshaken:
			if l.closing.Err() == nil {
				return a.c, a.err
			}
			// Close ran while a was handed over: even a handshake that
			// succeeded hands out nothing after it.
			if a.c != nil {
				a.c.Close()
			}
		case <-l.closing.Done():
		}
	}
	return nil, closedError("accept")
}

// start starts the goroutine that accepts and handshakes, unless it runs
// already, and reports whether it runs: false once Close ran.
func (l *Listener) start() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing.Err() != nil {
		return false
	}
	if !l.started {
		l.started = true
		l.handshaken = make(chan accepted)
		l.slots = make(chan struct{}, maxHandshakes)
		l.wg.Add(1)
		go l.acceptLoop()
	}
	return true
}

// acceptLoop accepts connections while a handshake slot is free, until
// Close, starting a handshake on each.
func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.closing.Done():
			return
		}
		c, err := l.ln.accept()
		if err != nil {
			<-l.slots
			if l.closing.Err() != nil || !l.hand(accepted{err: fmt.Errorf("procpipe: accept: %w", err)}) {
				return
			}
			continue
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

// handshake runs the handshake on c and hands the result to an Accept.
func (l *Listener) handshake(c *Conn) {
	defer l.wg.Done()
	defer func() { <-l.slots }()
	key := l.cfg.authKey()
	err := c.handshake(l.closing, l.cfg.handshakeTimeout(), func() error {
		if err := deliverChallenge(c, key); err != nil {
			return err
		}
		return answerChallenge(c, key)
	})
	if err != nil {
		c = nil // closed by c.handshake
		if !errors.Is(err, ErrAuthentication) && !errors.Is(err, os.ErrDeadlineExceeded) {
			// A client that hangs up or breaks the stream mid-handshake
			// does not speak it: the error a server expects from a bad
			// client, not one that looks like the Listener's own.
			err = fmt.Errorf("%w: the client broke off the handshake: %w", ErrAuthentication, err)
		}
	}
	if !l.hand(accepted{c, err}) && c != nil {
		c.Close()
	}
}

// hand passes a to an Accept, and reports whether it did: false once Close
// ran.
func (l *Listener) hand(a accepted) bool {
	if l.closing.Err() != nil {
		return false
	}
	testhook.Handing.Add(1)
	defer testhook.Handing.Add(-1)
	select {
	case l.handshaken <- a:
		return true
	case <-l.closing.Done():
		return false
	}
}

// Close stops listening and removes the socket file Listen created. Calls
// blocked in Accept return with an error matching [net.ErrClosed]; the
// handshakes under way end, their connections closed, before Close returns.
// Close may be called more than once.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.stop()
		l.mu.Unlock()
		l.closeErr = l.ln.close()
		l.wg.Wait()
	})
	return l.closeErr
}

// listener is what a platform's Listen returns.
type listener interface {
	accept() (*Conn, error)
	close() error
}

// Dial connects to a [Listener] (or a Python multiprocessing Listener) at
// address, with the settings of cfg (nil for defaults), like Python's
// multiprocessing.connection.Client. With cfg.AuthKey set it runs the
// handshake, bounded by cfg.HandshakeTimeout.
func Dial(address string, cfg *Config) (*Conn, error) {
	return DialContext(context.Background(), address, cfg)
}

// DialContext is like [Dial], giving up when ctx is done.
func DialContext(ctx context.Context, address string, cfg *Config) (*Conn, error) {
	c, err := dial(ctx, address, cfg)
	if err != nil {
		return nil, fmt.Errorf("procpipe: dial %s: %w", address, err)
	}
	if key := cfg.authKey(); len(key) > 0 {
		if err := c.handshake(ctx, cfg.handshakeTimeout(), func() error {
			if err := answerChallenge(c, key); err != nil {
				return err
			}
			return deliverChallenge(c, key)
		}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// handshake runs f with a deadline, closing c if it fails. ctx's end
// interrupts it through its own AfterFunc, not a deadline copied onto c,
// which could expire first and turn ctx's error into c's.
//
// The handshake's messages are bounded by the handshake itself (256 bytes,
// as in CPython), not by the Conn's MaxMessageSize, which is for the user's
// messages: c.limit is lifted while f runs, which is safe because nobody
// else has c yet.
func (c *Conn) handshake(ctx context.Context, timeout time.Duration, f func() error) error {
	limit := c.limit
	c.limit = -1
	c.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	err := f()
	stopped := stop()
	c.limit = limit
	if err == nil && !stopped {
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ErrAuthentication) {
			return fmt.Errorf("procpipe: handshake: %w", ctxErr)
		}
		return err
	}
	c.SetDeadline(time.Time{})
	return nil
}
