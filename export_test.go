package procpipe

import "os"

// FileForTest gives tests the file under c, to play a misbehaving peer.
func FileForTest(c *Conn) *os.File { return c.t.File() }

// Handshake pieces, for checking against vectors.
var (
	AnswerForTest = answer
	VerifyForTest = verify
)
