package procpipe_test

import (
	"testing"

	"github.com/procpipe/procpipe"
)

// BenchmarkCodec compares the codecs on a small struct, a string and a large
// struct, encode plus decode, which is what chose Gob as the default (see
// README, "Codecs").
func BenchmarkCodec(b *testing.B) {
	small := record{Name: "job-42", Count: 42, Tags: []string{"a", "b"}}
	large := record{Name: "bulk", Data: make([]byte, 64<<10), Inner: map[string]float64{}}
	for i := range 200 {
		large.Tags = append(large.Tags, "tag")
		large.Inner[string(rune('a'+i%26))+string(rune('a'+i/26))] = float64(i)
	}
	values := []struct {
		name string
		v    any
		new  func() any
	}{
		{"string", "Welcome to TutorialsPoint", func() any { return new(string) }},
		{"small", small, func() any { return new(record) }},
		{"large", large, func() any { return new(record) }},
	}
	for _, c := range []struct {
		name  string
		codec procpipe.Codec
	}{{"gob", procpipe.Gob}, {"json", procpipe.JSON}} {
		for _, v := range values {
			b.Run(c.name+"/"+v.name, func(b *testing.B) {
				b.ReportAllocs()
				var buf []byte
				for b.Loop() {
					var err error
					buf, err = c.codec.AppendMarshal(buf[:0], v.v)
					if err != nil {
						b.Fatal(err)
					}
					if err := c.codec.Unmarshal(buf, v.new()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(buf)), "bytes/msg")
			})
		}
	}
}
