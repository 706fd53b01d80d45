package procpipe

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/procpipe/procpipe/frame"
)

// The handshake is CPython's multiprocessing.connection deliver_challenge and
// answer_challenge, in both of its forms:
//
//   - since CPython 3.12 the challenger sends "#CHALLENGE#{sha256}" and 40
//     random bytes, and the answer is "{sha256}" and the HMAC of everything
//     after "#CHALLENGE#", prefix included;
//   - before that the challenge is 20 random bytes with no prefix, and the
//     answer the bare HMAC-MD5.
//
// A challenger accepts either kind of answer (an old client answers a new
// challenge with HMAC-MD5 over all of it); an answerer answers in the form it
// was asked. The listener challenges first, then the client does.
var (
	challengePrefix = []byte("#CHALLENGE#")
	welcome         = []byte("#WELCOME#")
	failure         = []byte("#FAILURE#")
)

const (
	// maxHandshakeMessage bounds every handshake read, as CPython's
	// recv_bytes(256) does.
	maxHandshakeMessage = 256
	challengeRandom     = 40
	legacyChallengeLen  = 20 // a legacy challenge's length, and md5's digest is 16
)

// ErrAuthentication is matched by the error of a handshake that failed: a
// wrong key on either side, or a peer that does not speak the handshake.
var ErrAuthentication = errors.New("procpipe: authentication failed")

func authError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrAuthentication, fmt.Sprintf(format, args...))
}

var digests = map[string]func() hash.Hash{
	"md5":      md5.New,
	"sha256":   sha256.New,
	"sha384":   sha512.New384,
	"sha3_256": func() hash.Hash { return sha3.New256() },
	"sha3_384": func() hash.Hash { return sha3.New384() },
}

// maxDigestName is the length of the longest name in digests.
const maxDigestName = len("sha3_256")

// splitDigest splits a challenge or an answer into its digest name and
// payload. The name is empty for the legacy form, recognised by its length.
func splitDigest(msg []byte) (name string, payload []byte, err error) {
	if len(msg) == legacyChallengeLen || len(msg) == md5.Size {
		return "", msg, nil
	}
	if len(msg) > 0 && msg[0] == '{' {
		if end := bytes.IndexByte(msg[1:min(len(msg), maxDigestName+2)], '}'); end > 0 {
			name := string(msg[1 : 1+end])
			if digests[name] != nil {
				return name, msg[end+2:], nil
			}
		}
	}
	return "", nil, authError("message of %d bytes has an unsupported length, no digest prefix, or an unsupported digest", len(msg))
}

func mac(name string, key, msg []byte) []byte {
	m := hmac.New(digests[name], key)
	m.Write(msg)
	return m.Sum(nil)
}

// answer is what the answerer sends for challenge (the bytes after
// "#CHALLENGE#").
func answer(key, challenge []byte) ([]byte, error) {
	name, _, err := splitDigest(challenge)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return mac("md5", key, challenge), nil
	}
	return append([]byte("{"+name+"}"), mac(name, key, challenge)...), nil
}

// verify checks an answer to challenge.
func verify(key, challenge, response []byte) error {
	name, got, err := splitDigest(response)
	if err != nil {
		return err
	}
	if name == "" {
		name = "md5"
	}
	want := mac(name, key, challenge)
	if len(got) != len(want) || subtle.ConstantTimeCompare(got, want) != 1 {
		return authError("the peer's %s answer to our challenge is wrong (different keys?)", name)
	}
	return nil
}

// deliverChallenge challenges the peer to prove it has key.
func deliverChallenge(c *Conn, key []byte) error {
	challenge := make([]byte, 0, 8+challengeRandom)
	challenge = append(challenge, "{sha256}"...)
	challenge = append(challenge, make([]byte, challengeRandom)...)
	rand.Read(challenge[len(challenge)-challengeRandom:])
	if err := c.SendBytes(append(append([]byte{}, challengePrefix...), challenge...)); err != nil {
		return err
	}
	resp, err := recvHandshake(c)
	if err != nil {
		return handshakeRecvError(err)
	}
	if err := verify(key, challenge, resp); err != nil {
		c.SendBytes(failure)
		return err
	}
	return c.SendBytes(welcome)
}

// answerChallenge proves to the peer that this side has key.
func answerChallenge(c *Conn, key []byte) error {
	msg, err := recvHandshake(c)
	if err != nil {
		return handshakeRecvError(err)
	}
	challenge, ok := bytes.CutPrefix(msg, challengePrefix)
	if !ok {
		return authError("expected a challenge, got %q", truncate(msg))
	}
	if len(challenge) < legacyChallengeLen {
		return authError("challenge too short: %d bytes", len(challenge))
	}
	resp, err := answer(key, challenge)
	if err != nil {
		return err
	}
	if err := c.SendBytes(resp); err != nil {
		return err
	}
	verdict, err := recvHandshake(c)
	if err != nil {
		return handshakeRecvError(err)
	}
	if !bytes.Equal(verdict, welcome) {
		return authError("the peer rejected our answer (different keys?)")
	}
	return nil
}

// recvHandshake receives one handshake message. A header that announces
// more than maxHandshakeMessage bytes fails at once, as in CPython's
// recv_bytes(256), rather than being drained as a receive limit's excess
// is to keep the stream in step: the connection is closed anyway, and a
// claim of 2^62 bytes would hold the handshake until its time limit. It
// peeks at c.rd without the receive lock: that is safe only because a Conn
// in its handshake has not been handed to anyone yet, so nothing else reads.
func recvHandshake(c *Conn) ([]byte, error) {
	// Files first: on Unix their item is one byte, and a header's Peek
	// would wait for three more until the handshake's time limit.
	if err := c.filesAhead(); err != nil {
		return nil, err
	}
	head, err := c.rd.Peek(frame.HeaderSize)
	if err == nil {
		n, size, perr := frame.ParseHeader(head)
		if perr == nil && size == 0 { // the long form: its length follows
			if head, err = c.rd.Peek(frame.LongHeaderSize); err == nil {
				n, _, perr = frame.ParseHeader(head)
			}
		}
		if err == nil && perr == nil && n > maxHandshakeMessage {
			return nil, &TooLargeError{Size: n, Limit: maxHandshakeMessage}
		}
	}
	if err != nil {
		return nil, err
	}
	return c.RecvBytesMax(maxHandshakeMessage)
}

func handshakeRecvError(err error) error {
	var tl *TooLargeError
	if errors.As(err, &tl) {
		return authError("handshake message of %d bytes exceeds %d", tl.Size, maxHandshakeMessage)
	}
	if errors.Is(err, ErrFilesNext) {
		// Not "receive them with RecvFiles": nobody can, mid-handshake.
		return authError("the peer passed files where a handshake message belongs")
	}
	return fmt.Errorf("procpipe: handshake: %w", err)
}

func truncate(b []byte) string {
	s := string(b)
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
