package ai

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// The terminator is seen as go-openai sees it: a whole line "data:" then
// "[DONE]", spaces trimmed, however the bytes are split between reads.
func TestSSEBodySeesTheTerminator(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"openai", "data: {\"choices\":[]}\n\ndata: [DONE]\n\n", true},
		{"no space, crlf", "data:{}\r\n\r\ndata:[DONE]\r\n\r\n", true},
		{"indented", "data: {}\n\n  data:   [DONE]  \n", true},
		{"cut before it", "data: {\"choices\":[]}\n\n", false},
		{"empty", "", false},
		{"json body", "{\"choices\":[{\"message\":{\"content\":\"data: [DONE]\"}}]}\n", false},
		{"html body", "<html>\n<body>data: [DONE]</body>\n</html>\n", false},
		{"no newline after it", "data: {}\n\ndata: [DONE]", false}, // go-openai ignores an unfinished line
		{"inside a long line", "data: {\"x\":\"" + strings.Repeat("a", 40) + "\"}data: [DONE]\n", false},
		{"a comment", ": data: [DONE]\n", false},
		{"other data", "data: [DONE]x\n", false},
	}
	for _, tc := range tests {
		for _, split := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.body)
			if split {
				r = iotest.OneByteReader(r)
			}
			d := &sseDone{}
			b := &sseBody{ReadCloser: io.NopCloser(r), done: d}
			got, err := io.ReadAll(b)
			if err != nil || string(got) != tc.body {
				t.Errorf("%s: read %q, %v; want the body unchanged", tc.name, got, err)
			}
			if d.seen.Load() != tc.want {
				t.Errorf("%s (one byte at a time: %v): seen = %v, want %v", tc.name, split, d.seen.Load(), tc.want)
			}
		}
	}
}
