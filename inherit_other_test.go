//go:build !unix

package procpipe_test

func recordInherited() {}
