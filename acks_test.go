package procpipe

import "testing"

// TestAcksReleaseOutOfOrderHolds holds two tickets in the order two
// SendFiles racing past the send lock can hold them, the later one first:
// the first acknowledgement releases the earlier item at once, without
// waiting for the second.
func TestAcksReleaseOutOfOrderHolds(t *testing.T) {
	var a acks
	first, second := a.expect(), a.expect()
	var released [2]int
	a.hold(second, func() { released[1]++ })
	a.hold(first, func() { released[0]++ })
	a.consumed()
	if released != [2]int{1, 0} {
		t.Fatalf("after the first acknowledgement, releases = %v; want [1 0] (the first item's, not the second's)", released)
	}
	a.consumed()
	if released != [2]int{1, 1} {
		t.Fatalf("after the second acknowledgement, releases = %v; want [1 1]", released)
	}
}
