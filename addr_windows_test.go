package procpipe_test

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
)

func testAddr(t *testing.T) string {
	b := make([]byte, 8)
	rand.Read(b)
	return `\\.\pipe\procpipe-test-` + hex.EncodeToString(b)
}
