package procpipe_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/procpipe/procpipe"
)

func seq(from, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(from + i)
	}
	return b
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// The vectors were derived from CPython's specification of the handshake
// (the MAC covers the whole challenge after "#CHALLENGE#", digest prefix
// included) with Python's hmac module, independently of this code.
var handshakeKey = []byte("procpipe test key")

func TestHandshakeVectors(t *testing.T) {
	modern := append([]byte("{sha256}"), seq(0, 40)...)
	sha3 := append([]byte("{sha3_256}"), seq(0, 40)...)
	legacy := seq(100, 20)
	tests := []struct {
		name      string
		challenge []byte
		want      []byte
	}{
		{"sha256 (CPython >= 3.12)", modern, append([]byte("{sha256}"), unhex("bc89d5f28c7a7845cd65b46ae753526b1028c19adac45b9284c442555a3f0d11")...)},
		{"sha3_256", sha3, append([]byte("{sha3_256}"), unhex("9d1b43cbc34394a69718189b0617d7b7ebeacff7a24b551a676e4ed2377dfa0c")...)},
		{"legacy md5 (CPython <= 3.11)", legacy, unhex("a43000c07150ab24269063ed7953f112")},
	}
	for _, tt := range tests {
		got, err := procpipe.AnswerForTest(handshakeKey, tt.challenge)
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("%s: answer = %x, %v; want %x", tt.name, got, err, tt.want)
		}
		if err := procpipe.VerifyForTest(handshakeKey, tt.challenge, tt.want); err != nil {
			t.Errorf("%s: verify of the right answer: %v", tt.name, err)
		}
		if err := procpipe.VerifyForTest([]byte("other key"), tt.challenge, tt.want); !errors.Is(err, procpipe.ErrAuthentication) {
			t.Errorf("%s: verify with another key = %v; want ErrAuthentication", tt.name, err)
		}
	}
	// An old client answers a new challenge with bare HMAC-MD5 over all of
	// it; a new challenger accepts that, as CPython does.
	if err := procpipe.VerifyForTest(handshakeKey, modern, unhex("a364e9ae6c463a7773452b1fc5d36b64")); err != nil {
		t.Errorf("legacy answer to a modern challenge: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("{sha1}" + string(seq(0, 20))), []byte("{nonsense-digest-name}x"), seq(0, 17)} {
		if err := procpipe.VerifyForTest(handshakeKey, modern, bad); !errors.Is(err, procpipe.ErrAuthentication) {
			t.Errorf("verify of malformed answer %q = %v; want ErrAuthentication", bad, err)
		}
	}
}
