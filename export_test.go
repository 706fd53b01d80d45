package procpipe

import (
	"os"

	"github.com/procpipe/procpipe/internal/testhook"
)

// FileForTest gives tests the file under c, to play a misbehaving peer.
func FileForTest(c *Conn) *os.File { return c.t.File() }

// Handshake pieces, for checking against vectors.
var (
	AnswerForTest = answer
	VerifyForTest = verify
)

// SetControlBufferSizeForTest makes the Unix socket Conns made from now on
// receive with a control buffer of n bytes (0: the default), to force
// truncated control messages, and returns a function that restores the
// previous size.
func SetControlBufferSizeForTest(n int) (restore func()) {
	old := testhook.ControlBufferSize.Swap(int64(n))
	return func() { testhook.ControlBufferSize.Store(old) }
}

// LockSendForTest takes c's send lock, as a send under way holds it, and
// returns the function that releases it.
func LockSendForTest(c *Conn) (unlock func()) {
	c.wlock.mu.Lock()
	return c.wlock.unlock
}

// HandingForTest reports how many handshakes have ended and wait in a
// Listener for an Accept.
func HandingForTest() int32 { return testhook.Handing.Load() }
