package ai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// ModelError is one model's failure. Its message names the model, the HTTP
// status and the provider's error code — never the provider's message, which
// may quote the prompt. Unwrap gives the underlying error for errors.Is
// (context.DeadlineExceeded, context.Canceled); don't log its text.
type ModelError struct {
	Model  string // model id
	Status int    // HTTP status, 0 when there was no HTTP answer
	Code   string // provider error code such as "context_length_exceeded", if any
	// Reason is "status", "timeout", "canceled", "network", "stream" (an
	// error event in a stream), "empty answer", "incomplete stream" (no
	// [DONE]) or "invalid response".
	Reason string
	Err    error
}

func (e *ModelError) Error() string {
	s := fmt.Sprintf("model %s: %s", e.Model, e.Reason)
	if e.Status != 0 {
		s = fmt.Sprintf("model %s: status %d", e.Model, e.Status)
	}
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	return s
}

func (e *ModelError) Unwrap() error { return e.Err }

// fallback reports whether the next model of the chain should be tried:
// yes for timeouts, network errors, 5xx and 429; no for other 4xx, which
// another model would most likely refuse too (bad request, bad key).
func (e *ModelError) fallback() bool {
	if e.Status != 0 {
		return e.Status == http.StatusTooManyRequests || e.Status >= 500
	}
	return e.Reason != "canceled"
}

// statusError is a non-2xx answer from an endpoint go-openai does not cover
// (ElevenLabs, image URLs).
type statusError struct{ status int }

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.status) }

// errStreamIdle is the cause when a stream sends no text for a whole timeout.
var errStreamIdle = fmt.Errorf("stream idle: %w", context.DeadlineExceeded)

// errAnswerDeadline is the cause when a streamed answer outlives
// Config.AnswerTimeout.
var errAnswerDeadline = fmt.Errorf("answer deadline: %w", context.DeadlineExceeded)

// modelError classifies err from a call to model id.
func modelError(id string, err error) *ModelError {
	e := &ModelError{Model: id, Err: err, Reason: "invalid response"}
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	var stErr *statusError
	var netErr net.Error
	switch {
	case errors.Is(err, ErrEmptyAnswer):
		e.Reason = "empty answer"
	case errors.Is(err, ErrIncompleteStream):
		e.Reason = "incomplete stream"
	case errors.As(err, &apiErr):
		e.Status = apiErr.HTTPStatusCode
		e.Code = safeCode(apiErr.Code)
		e.Reason = "status"
		if e.Status == 0 {
			e.Reason = "stream" // an error event inside an SSE stream
		}
	case errors.As(err, &reqErr):
		e.Status = reqErr.HTTPStatusCode
		e.Reason = "status"
	case errors.As(err, &stErr):
		e.Status = stErr.status
		e.Reason = "status"
	case errors.Is(err, context.DeadlineExceeded):
		e.Reason = "timeout"
	case errors.Is(err, context.Canceled):
		e.Reason = "canceled"
	case errors.As(err, &netErr), errors.Is(err, io.ErrUnexpectedEOF):
		e.Reason = "network" // includes a connection dropped mid-body
	}
	return e
}

// safeCode keeps a provider error code only when it looks like an identifier,
// so that no free text reaches our error strings.
func safeCode(code any) string {
	var s string
	switch c := code.(type) {
	case string:
		s = c
	case int:
		s = fmt.Sprint(c)
	default:
		return ""
	}
	if len(s) > 64 {
		return ""
	}
	for _, r := range s {
		ok := r == '_' || r == '-' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return ""
		}
	}
	return s
}

// attempt calls one model. final reports that the chain must stop even if
// the error would normally fall back (a stream that already delivered text).
type attempt func(ctx context.Context, m Model, p *provider) (final bool, err error)

// run tries id and then its fallbacks that have capability c, each once.
// It returns the models tried, in order; on success the last one answered.
func (r *Router) run(ctx context.Context, id string, c Capability, call attempt) ([]string, error) {
	m, ok := r.models[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoModel, id)
	}
	if !m.Can(c) {
		return nil, fmt.Errorf("%w: %q with capability %s", ErrNoModel, id, c)
	}
	var tried []string
	var errs []error
	for _, cid := range r.chains[id] {
		cm := r.models[cid]
		if !cm.Can(c) {
			continue // a fallback for another capability of this model
		}
		tried = append(tried, cid)
		final, err := call(ctx, cm, r.providers[cm.Provider])
		if err == nil {
			return tried, nil
		}
		me := modelError(cid, err)
		if ctx.Err() != nil {
			// The caller gave up (/cancel, shutdown): stop, and say so.
			return tried, fmt.Errorf("%w: %w", me, ctx.Err())
		}
		if final || !me.fallback() {
			return tried, me
		}
		errs = append(errs, me)
	}
	return tried, fmt.Errorf("%w: %w", ErrAllFailed, errors.Join(errs...))
}

// timeoutFor is how long one call to m may take.
func (r *Router) timeoutFor(m Model) time.Duration {
	if m.Timeout > 0 {
		return m.Timeout
	}
	return r.timeout
}

// withTimeout bounds one call to m.
func (r *Router) withTimeout(ctx context.Context, m Model) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.timeoutFor(m))
}
