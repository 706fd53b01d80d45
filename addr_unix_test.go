//go:build unix

package procpipe_test

import "testing"

func testAddr(t *testing.T) string { return sockPath(t) }
