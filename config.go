package procpipe

import "time"

// DefaultMaxMessageSize is the largest message a Conn sends or receives when
// its [Config] does not say.
const DefaultMaxMessageSize = 1 << 30

// A Config holds the settings of the Conns made with its methods. The zero
// Config, and a nil *Config, give the defaults. The package-level functions
// [Pipe], [Parent] and [NewConn] use the defaults.
type Config struct {
	// Codec encodes the values of Send and decodes those of Recv. The
	// default is [Gob]; use [JSON] with peers in other languages.
	Codec Codec

	// MaxMessageSize is the largest message, in bytes, the Conn sends or
	// receives. A larger incoming message is read, discarded and reported
	// as a [*TooLargeError]; a larger outgoing one is refused before
	// anything is written. 0 means [DefaultMaxMessageSize]; a negative value
	// means no limit but memory.
	MaxMessageSize int64

	// ReadBufferSize is the size of the receive buffer, which lets many
	// small messages cost one system call. A message that fits the buffer
	// is consumed only once it has fully arrived, so a deadline can expire
	// while it is in flight without breaking the stream. 0 (or less) means
	// 64 KiB; sizes below 12 bytes (the longest frame header) are raised to
	// 12, and sizes above 64 MiB lowered to 64 MiB.
	ReadBufferSize int

	// AuthKey, if not empty, makes [Listen] and [Dial] run CPython's
	// mutual HMAC handshake on each new connection, so that only peers with
	// the same key get a Conn (Python: Listener(address, authkey=key) and
	// Client(address, authkey=key)).
	AuthKey []byte

	// HandshakeTimeout bounds the handshake of each connection accepted by
	// a [Listener] or made by [Dial]. 0 means 10 seconds.
	HandshakeTimeout time.Duration

	// NoFileAck turns off the acknowledgement of passed files: by default
	// the receiver of files (see [Conn.SendFiles]) answers with one byte,
	// 'A', and the sender waits for it, as CPython 3.14 and later do on
	// every system. CPython 3.13 and earlier acknowledge only on macOS:
	// set NoFileAck on a Conn whose peer is such a Python on any other
	// system (Linux, the BSDs). Both ends must agree. It has no effect on
	// Windows, where the receiver always acknowledges: the sender must keep
	// its handles open until the receiver has duplicated them.
	NoFileAck bool
}

func (cfg *Config) codec() Codec {
	if cfg == nil || cfg.Codec == nil {
		return Gob
	}
	return cfg.Codec
}

func (cfg *Config) limit() int64 {
	switch {
	case cfg == nil || cfg.MaxMessageSize == 0:
		return DefaultMaxMessageSize
	case cfg.MaxMessageSize < 0:
		return -1
	}
	return cfg.MaxMessageSize
}

func (cfg *Config) bufferSize() int {
	if cfg == nil {
		return 0
	}
	return cfg.ReadBufferSize
}

func (cfg *Config) authKey() []byte {
	if cfg == nil {
		return nil
	}
	return cfg.AuthKey
}

func (cfg *Config) handshakeTimeout() time.Duration {
	if cfg == nil || cfg.HandshakeTimeout <= 0 {
		return 10 * time.Second
	}
	return cfg.HandshakeTimeout
}

func (cfg *Config) noFileAck() bool { return cfg != nil && cfg.NoFileAck }

// clone returns a copy of cfg, AuthKey's bytes included, for what keeps its
// settings beyond the call it was given to (a Listener): a caller changing
// or reusing its Config later must not change them.
func (cfg *Config) clone() *Config {
	if cfg == nil {
		return nil
	}
	c := *cfg
	c.AuthKey = append([]byte(nil), cfg.AuthKey...)
	return &c
}
