package windows

// NewPairNamed is Pair with the pipe names drawn from name, so that tests can
// make Pair meet a name that is taken.
func NewPairNamed(duplex bool, name func() string) (*Conn, *Conn, error) {
	return newPair(duplex, name)
}

// RandomName is the generator Pair uses.
var RandomName = randomName

// ErrTaken is the error Pair gives for a name in use where the system did not
// refuse to create the instance (Wine).
var ErrTaken = errTaken
