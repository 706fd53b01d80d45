package unix_test

import "testing"

// TestYieldFirst checks the bookkeeping behind yielding before a read (see
// yieldFirst): a read that returns less than it asked for marks the
// Conn drained and one that fills its buffer does not, and a read that
// yields first still returns what was written, whether before it or while
// it waits.
func TestYieldFirst(t *testing.T) {
	for _, kind := range []string{"pipe", "socket"} {
		t.Run(kind, func(t *testing.T) {
			r, w := newPair(t, kind)
			buf := make([]byte, 64)
			read := func(n int, want string, drained bool) {
				t.Helper()
				got, err := r.Read(buf[:n])
				if err != nil || string(buf[:got]) != want {
					t.Fatalf("Read(%d bytes) = %q, %v; want %q", n, buf[:got], err, want)
				}
				if r.DrainedForTest() != drained {
					t.Fatalf("after reading %q into %d bytes: drained = %v, want %v", want, n, !drained, drained)
				}
			}
			write := func(s string) {
				t.Helper()
				if _, err := w.Write([]byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			write("hello")
			read(64, "hello", true)
			write("hello world")
			read(5, "hello", false)
			read(64, " world", true)

			// The yielding read may find the data at once or park
			// until it comes; either way it gets it.
			werr := make(chan error, 1)
			go func() {
				_, err := w.Write([]byte("late"))
				werr <- err
			}()
			read(64, "late", true)
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
		})
	}
}
