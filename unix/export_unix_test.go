//go:build unix

package unix

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
