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
		{"padded to the longest line kept", "data: [DONE]" + strings.Repeat(" ", maxTerminatorLine-12) + "\n", true},
		{"padded one past it", "data: [DONE]" + strings.Repeat(" ", maxTerminatorLine-11) + "\n", false},
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

// BenchmarkSSEBody is the watch's cost on a streamed answer of 200 chunks
// (go-openai's events are about 200 bytes each), read as the HTTP client
// hands it over; the floor reads the same body unwatched.
func BenchmarkSSEBody(b *testing.B) {
	var sb strings.Builder
	for range 200 {
		sb.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"some words "},"finish_reason":null}]}` + "\n\n")
	}
	sb.WriteString("data: [DONE]\n\n")
	body := sb.String()
	buf := make([]byte, 4096)
	readAll := func(r io.Reader) {
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}
	b.Run("floor", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			readAll(io.NopCloser(strings.NewReader(body)))
		}
	})
	b.Run("watched", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			d := &sseDone{}
			readAll(&sseBody{ReadCloser: io.NopCloser(strings.NewReader(body)), done: d})
			if !d.seen.Load() {
				b.Fatal("terminator not seen")
			}
		}
	})
}
