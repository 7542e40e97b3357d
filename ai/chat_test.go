package ai_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
)

func TestChat(t *testing.T) {
	m := chatModel("fast")
	r, srv := newRouter(t, m)

	req := ai.ChatRequest{Model: "fast", Messages: []ai.Message{
		{Role: "system", Text: "be brief"},
		{Role: "user", Text: "hello world"},
	}}
	res, err := r.Chat(context.Background(), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if res.Text != "echo: hello world" {
		t.Errorf("Text = %q", res.Text)
	}
	if !slices.Equal(res.Tried, []string{"fast"}) {
		t.Errorf("Tried = %v", res.Tried)
	}
	// Emulator usage: prompt = Σ(1 + words) = 3 + 3, completion = words of the answer.
	want := ai.Usage{Model: "fast", Capability: ai.CapChat, InputTokens: 6, OutputTokens: 3, At: testNow}
	want.Cost = r.Cost(m, want)
	if res.Usage != want {
		t.Errorf("Usage = %+v, want %+v", res.Usage, want)
	}
	if want.Cost != 15 { // (6×1000 + 3×3000) / 1000 micro-credits
		t.Errorf("Cost = %d, want 15", want.Cost)
	}

	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	got := reqs[0]
	if got.Path != "/v1/chat/completions" || got.Model != "fast-name" || !got.Auth || got.Stream {
		t.Errorf("request = %+v", got)
	}
	roles := []string{got.Messages[0].Role, got.Messages[1].Role}
	if !slices.Equal(roles, []string{"system", "user"}) || got.Messages[1].Text != "hello world" {
		t.Errorf("messages = %+v", got.Messages)
	}
}

func TestChatMaxTokens(t *testing.T) {
	// gpt-5 models reject max_tokens; go-openai refuses to send it, so this
	// only passes if the router uses max_completion_tokens for them.
	for _, name := range []string{"llama-3", "gpt-5-mini"} {
		t.Run(name, func(t *testing.T) {
			m := chatModel("m")
			m.Name = name
			r, srv := newRouter(t, m)
			req := userSays("one two three four")
			req.Model, req.MaxTokens = "m", 2
			res, err := r.Chat(context.Background(), req)
			if err != nil {
				t.Fatalf("Chat: %v", err)
			}
			if res.Text != "echo: one" {
				t.Errorf("Text = %q, want the answer cut at 2 tokens", res.Text)
			}
			if got := srv.Requests()[0].MaxTokens; got != 2 {
				t.Errorf("MaxTokens sent = %d", got)
			}
		})
	}
}

func TestChatVision(t *testing.T) {
	vision := chatModel("eye")
	vision.Caps = []ai.Capability{ai.CapChat, ai.CapVision}
	r, srv := newRouter(t, vision, chatModel("blind"))

	photo := []byte{0xFF, 0xD8, 0xFF, 0xE0, 'j', 'p', 'e', 'g'}
	req := ai.ChatRequest{Model: "eye", Messages: []ai.Message{{Role: "user", Text: "what is this", ImageJPEG: photo}}}
	res, err := r.Chat(context.Background(), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if res.Text != "echo: what is this [image]" || res.Usage.Capability != ai.CapVision {
		t.Errorf("Text = %q, capability %q", res.Text, res.Usage.Capability)
	}
	msg := srv.Requests()[0].Messages[0]
	if !msg.Image || !bytes.Equal(msg.ImageData, photo) || msg.Text != "what is this" {
		t.Errorf("message arrived as %+v", msg)
	}

	req.Model = "blind"
	if _, err := r.Chat(context.Background(), req); !errors.Is(err, ai.ErrNoModel) {
		t.Errorf("image to a chat-only model: err = %v, want ErrNoModel", err)
	}
	if srv.Count() != 1 {
		t.Errorf("a request reached the provider for a model without vision")
	}
}

func TestChatUnknownModel(t *testing.T) {
	r, srv := newRouter(t, chatModel("a"))
	req := userSays("hi")
	req.Model = "nope"
	if _, err := r.Chat(context.Background(), req); !errors.Is(err, ai.ErrNoModel) {
		t.Errorf("err = %v, want ErrNoModel", err)
	}
	if srv.Count() != 0 {
		t.Errorf("%d requests, want none", srv.Count())
	}
}

func TestChatStream(t *testing.T) {
	const answer = "Hello, streaming world! Привет."
	m := chatModel("s")
	r, srv := newRouter(t, m)
	srv.Script("s-name", aitest.Step{Text: answer, ChunkSize: 5, TokenDelay: time.Millisecond})

	var deltas []string
	req := userSays("hi")
	req.Model = "s"
	res, err := r.ChatStream(context.Background(), req, func(d string) { deltas = append(deltas, d) })
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	want := []string{"Hello", ", str", "eamin", "g wor", "ld! П", "ривет", "."}
	if !slices.Equal(deltas, want) {
		t.Errorf("deltas = %q, want %q", deltas, want)
	}
	if res.Text != answer {
		t.Errorf("Text = %q", res.Text)
	}
	// Usage from the stream's final chunk: prompt 1+1, completion 4 words.
	wantUsage := ai.Usage{Model: "s", Capability: ai.CapChat, InputTokens: 2, OutputTokens: 4, At: testNow}
	wantUsage.Cost = r.Cost(m, wantUsage)
	if res.Usage != wantUsage {
		t.Errorf("Usage = %+v, want %+v", res.Usage, wantUsage)
	}
	if got := srv.Requests()[0]; !got.Stream || !got.IncludeUsage {
		t.Errorf("request stream=%v include_usage=%v", got.Stream, got.IncludeUsage)
	}
}

func TestChatStreamEstimatesMissingUsage(t *testing.T) {
	const answer = "no usage from this server"
	r, srv := newRouter(t, chatModel("s"))
	srv.Script("s-name", aitest.Step{Text: answer, NoUsage: true})
	req := userSays("hi there")
	req.Model = "s"
	res, err := r.ChatStream(context.Background(), req, func(string) {})
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	if got, want := res.Usage.OutputTokens, ai.EstimateTokens(answer); got != want {
		t.Errorf("OutputTokens = %d, want estimate %d", got, want)
	}
	if res.Usage.InputTokens <= ai.EstimateTokens("hi there") || res.Usage.Cost <= 0 {
		t.Errorf("Usage = %+v, want an estimate with framing and a cost", res.Usage)
	}
}

func TestChatStreamFallsBackBeforeFirstDelta(t *testing.T) {
	r, srv := newRouter(t, chatModel("a", "b"), chatModel("b"))
	srv.Script("a-name", aitest.Step{Status: 503})
	var got strings.Builder
	req := userSays("hi")
	req.Model = "a"
	res, err := r.ChatStream(context.Background(), req, func(d string) { got.WriteString(d) })
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	if got.String() != "echo: hi" || res.Text != "echo: hi" {
		t.Errorf("delivered %q, Text %q", got.String(), res.Text)
	}
	if !slices.Equal(res.Tried, []string{"a", "b"}) || res.Usage.Model != "b" {
		t.Errorf("Tried = %v, Usage.Model = %q", res.Tried, res.Usage.Model)
	}
}

func TestChatStreamErrorAfterDeltaEndsCall(t *testing.T) {
	r, srv := newRouter(t, chatModel("a", "b"), chatModel("b"))
	srv.Script("a-name", aitest.Step{Text: "one two three four", ChunkSize: 4, FailAfter: 2})
	var deltas []string
	req := userSays("hi")
	req.Model = "a"
	res, err := r.ChatStream(context.Background(), req, func(d string) { deltas = append(deltas, d) })
	if err == nil || errors.Is(err, ai.ErrAllFailed) {
		t.Fatalf("err = %v, want the stream's own error", err)
	}
	if res.Text != "one two " || !slices.Equal(deltas, []string{"one ", "two "}) {
		t.Errorf("Text = %q, deltas = %q; want what arrived before the drop", res.Text, deltas)
	}
	if !slices.Equal(res.Tried, []string{"a"}) || res.Usage != (ai.Usage{}) {
		t.Errorf("Tried = %v, Usage = %+v; want no fallback and no usage", res.Tried, res.Usage)
	}
	if srv.Count() != 1 {
		t.Errorf("%d requests: fell back after text was delivered", srv.Count())
	}
}

func TestChatStreamIdleTimeout(t *testing.T) {
	t.Parallel()
	a := chatModel("a", "b")
	a.Timeout = 2 * time.Second
	r, srv := newRouter(t, a, chatModel("b"))
	// The first chunk comes at once, the second never within the timeout.
	srv.Script("a-name", aitest.Step{Text: "slow answer", ChunkSize: 5, TokenDelay: time.Minute})
	req := userSays("hi")
	req.Model = "a"
	res, err := r.ChatStream(context.Background(), req, func(string) {})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	var me *ai.ModelError
	if !errors.As(err, &me) || me.Reason != "timeout" || me.Model != "a" {
		t.Errorf("err = %#v, want a timeout of model a", err)
	}
	if res.Text != "slow " || !slices.Equal(res.Tried, []string{"a"}) {
		t.Errorf("Text = %q, Tried = %v", res.Text, res.Tried)
	}
}

func TestChatStreamLongAnswerOutlivesTimeout(t *testing.T) {
	t.Parallel()
	// Every gap is well under the timeout, the whole stream is longer:
	// the timeout is per gap, not per answer.
	a := chatModel("a")
	a.Timeout = time.Second
	r, srv := newRouter(t, a)
	srv.Script("a-name", aitest.Step{Text: "xxxxxx", ChunkSize: 1, TokenDelay: 250 * time.Millisecond})
	req := userSays("hi")
	req.Model = "a"
	res, err := r.ChatStream(context.Background(), req, func(string) {})
	if err != nil || res.Text != "xxxxxx" {
		t.Fatalf("Text = %q, err = %v", res.Text, err)
	}
}
