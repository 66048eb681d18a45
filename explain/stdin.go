package explain

import (
	"fmt"
	"io"
)

// MaxStdin is the most that `explain -` reads of stdin as one message.
const MaxStdin = 1 << 20

// ReadMessage reads one message from r, at most MaxStdin bytes; note is
// not empty when r held more, and says what was left out.
func ReadMessage(r io.Reader) (msg, note string, err error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxStdin+1))
	if err != nil {
		return "", "", err
	}
	if len(b) > MaxStdin {
		return string(b[:MaxStdin]), fmt.Sprintf("the input held more than %d MiB: only its first %d MiB were read", MaxStdin>>20, MaxStdin>>20), nil
	}
	return string(b), "", nil
}
