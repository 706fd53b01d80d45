package procpipe

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
)

// A Codec turns the values given to [Conn.Send] into message payloads and
// back for [Conn.Recv]. Each message is encoded on its own, so any receiver
// can decode any message. A Codec must be safe for concurrent use.
type Codec interface {
	// AppendMarshal appends the encoding of v to b and returns the result.
	AppendMarshal(b []byte, v any) ([]byte, error)
	// Unmarshal decodes data into v, which is a non-nil pointer. It must
	// not keep data.
	Unmarshal(data []byte, v any) error
}

var (
	// Gob encodes values with encoding/gob, which keeps Go types (ints stay
	// ints, []byte stays []byte, registered interface values keep their
	// dynamic type). It is the default.
	Gob Codec = gobCodec{}

	// JSON encodes values with encoding/json, for peers in other languages:
	// a Python peer reads a message with json.loads(conn.recv_bytes()).
	JSON Codec = jsonCodec{}
)

type gobCodec struct{}

func (gobCodec) AppendMarshal(b []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	err := gob.NewEncoder(buf).Encode(v)
	return buf.Bytes(), err
}

func (gobCodec) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

type jsonCodec struct{}

func (jsonCodec) AppendMarshal(b []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return b, err
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil // Encode ends the value with a newline
}

func (jsonCodec) Unmarshal(data []byte, v any) error {
	return json.Unmarshal(data, v)
}
