package ai

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync/atomic"
)

// go-openai's stream reader returns io.EOF both after "data: [DONE]" and
// when the body simply ends: a connection cut between two events, or a JSON
// or HTML page where a stream was asked for. Only the terminator says the
// provider finished, so the router watches the bytes of a streamed
// response for it on their way to go-openai.

// sseDone records whether a response body carried the SSE terminator.
type sseDone struct{ seen atomic.Bool }

type sseDoneKey struct{}

// watchSSE returns ctx marked so that the response to a request made with
// it is watched for the terminator, and what the watch learns.
func watchSSE(ctx context.Context) (context.Context, *sseDone) {
	d := &sseDone{}
	return context.WithValue(ctx, sseDoneKey{}, d), d
}

// sseWatcher is the HTTP client go-openai uses: it wraps the body of a
// watched request's response and leaves every other request alone.
type sseWatcher struct{ c *http.Client }

func (w sseWatcher) Do(req *http.Request) (*http.Response, error) {
	resp, err := w.c.Do(req)
	if d, ok := req.Context().Value(sseDoneKey{}).(*sseDone); ok && err == nil {
		resp.Body = &sseBody{ReadCloser: resp.Body, done: d}
	}
	return resp, err
}

// maxTerminatorLine is longer than any spelling of the terminator line
// ("data: [DONE]" with spaces and \r); longer lines are not kept.
const maxTerminatorLine = 32

// sseBody passes the body through, looking at each line as go-openai will:
// "data:", optional spaces, "[DONE]", spaces trimmed, ended by a newline.
type sseBody struct {
	io.ReadCloser
	done *sseDone
	line []byte // the start of the current line
	long bool   // the current line is longer than maxTerminatorLine
}

func (b *sseBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	rest := p[:n]
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			b.keep(rest)
			break
		}
		b.keep(rest[:i])
		if !b.long && isTerminator(b.line) {
			b.done.seen.Store(true)
		}
		b.line, b.long = b.line[:0], false
		rest = rest[i+1:]
	}
	return n, err
}

// keep adds part to the current line unless the line grows past
// maxTerminatorLine (then it is no terminator, and nothing more is kept).
func (b *sseBody) keep(part []byte) {
	if b.long {
		return
	}
	if len(b.line)+len(part) > maxTerminatorLine {
		b.long = true
		return
	}
	b.line = append(b.line, part...)
}

func isTerminator(line []byte) bool {
	rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data:"))
	return ok && string(bytes.TrimSpace(rest)) == "[DONE]"
}
