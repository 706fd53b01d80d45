//go:build unix

package unix

import "os"

// WriteKeepsForTest reports how many of the buffers of Writes that have
// returned the Conn still holds.
func (c *Conn) WriteKeepsForTest() int {
	n := 0
	for _, b := range c.wop.rest[:cap(c.wop.rest)] {
		if b != nil {
			n++
		}
	}
	return n
}

// MaxWaitingForTest is the most descriptors a Conn holds for its user.
const MaxWaitingForTest = maxWaiting

// FdForTest returns c's descriptor number.
func (c *Conn) FdForTest() int { return c.fd }

// OwnFileForTest returns the file c reads and writes, which File hands out
// only where c does not own it (see ownFile).
func (c *Conn) OwnFileForTest() *os.File { return c.f }
