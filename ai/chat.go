package ai

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// Message is one turn of a conversation.
type Message struct {
	Role      string // "system", "user", "assistant"
	Text      string
	ImageJPEG []byte // vision: a photo sent with the text
}

// ChatRequest asks model for the next assistant turn.
type ChatRequest struct {
	Model     string
	Messages  []Message
	MaxTokens int // at most the model's MaxTokens; 0: the model's
	// OnReasoning receives, in ChatStream, each piece of the model's
	// reasoning (the delta's reasoning_content) as it arrives, on the
	// calling goroutine; nil: reasoning is only collected in
	// ChatResult.Reasoning.
	OnReasoning func(delta string)
}

// Usage is what one successful call consumed, and its cost. A failed call
// has zero Usage.
type Usage struct {
	Model        string // id of the model that answered
	Capability   Capability
	InputTokens  int
	OutputTokens int
	Images       int
	AudioSeconds float64
	Chars        int
	Cost         int64 // micro-credits
	At           time.Time
}

// ChatResult is an answer.
type ChatResult struct {
	Text string
	// Reasoning is the text a reasoning model sent before (or beside) its
	// answer (reasoning_content). It is not part of Text, and usage is
	// estimated from Text alone: only a provider's own count includes it.
	Reasoning string
	Usage     Usage
	Tried     []string // model ids tried in order; on success the last one answered
}

// estimatedImageTokens is charged per image when a provider reports no usage:
// OpenAI bills a 1024×1024 high-detail image at 765 tokens.
const estimatedImageTokens = 765

// Chat sends the conversation and waits for the whole answer. A request with
// an image needs the vision capability, otherwise chat.
func (r *Router) Chat(ctx context.Context, req ChatRequest) (ChatResult, error) {
	c := chatCapability(req.Messages)
	var res ChatResult
	tried, err := r.run(ctx, req.Model, c, func(ctx context.Context, m Model, p *provider) (bool, error) {
		ctx, cancel := r.withTimeout(ctx, m)
		defer cancel()
		resp, err := p.openai.CreateChatCompletion(ctx, chatRequest(m, req))
		if err != nil {
			return false, err
		}
		if len(resp.Choices) == 0 {
			return false, errors.New("no choices")
		}
		text := resp.Choices[0].Message.Content
		if text == "" {
			return false, ErrEmptyAnswer
		}
		res.Text = text
		res.Reasoning = resp.Choices[0].Message.ReasoningContent
		res.Usage = r.chatUsage(m, c, req.Messages, text, resp.Usage)
		return false, nil
	})
	res.Tried = tried
	if err != nil {
		return ChatResult{Tried: tried}, err
	}
	return res, nil
}

// ChatStream is Chat with the answer streamed: onDelta receives each new
// piece of text as it arrives, in order, on the calling goroutine.
//
// A model that fails before its first delta falls back to the next one; once
// text was delivered an error ends the call, returning the text received so
// far with the error (and zero Usage: a failed request is not charged).
// Besides errors and timeouts a model fails when its stream ends without
// the "data: [DONE]" terminator (ErrIncompleteStream: cut off, or a JSON or
// HTML body where a stream was asked for) or with no content at all
// (ErrEmptyAnswer).
//
// Two clocks bound the call. The model's timeout applies to the wait for
// the first delta and then to every gap between deltas, so a long answer
// that keeps flowing is not cut off; chunks without text (keep-alives,
// empty deltas) do not count as flowing. The answer timeout bounds the
// whole call, fallbacks included; a fallback reached after it fails at once
// without a request, so the call ends as a timeout of every model.
func (r *Router) ChatStream(ctx context.Context, req ChatRequest, onDelta func(string)) (ChatResult, error) {
	c := chatCapability(req.Messages)
	var res ChatResult
	var text, reasoning strings.Builder
	// Detached from ctx: it only tells when the answer's time is up, and
	// the caller giving up must still read as a cancellation.
	deadline, stop := context.WithTimeoutCause(context.Background(), r.answer, errAnswerDeadline)
	defer stop()
	tried, err := r.run(ctx, req.Model, c, func(ctx context.Context, m Model, p *provider) (bool, error) {
		if deadline.Err() != nil {
			return false, errAnswerDeadline
		}
		reasoning.Reset() // a model that failed before answering: its reasoning goes with it
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		defer context.AfterFunc(deadline, func() { cancel(errAnswerDeadline) })()
		timeout := r.timeoutFor(m)
		idle := time.AfterFunc(timeout, func() { cancel(errStreamIdle) })
		defer idle.Stop()

		oreq := chatRequest(m, req)
		oreq.Stream = true
		oreq.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
		wctx, done := watchSSE(ctx)
		stream, err := p.openai.CreateChatCompletionStream(wctx, oreq)
		if err != nil {
			return false, streamErr(ctx, err)
		}
		defer stream.Close()

		var usage openai.Usage
		delivered := false
		for {
			raw, err := stream.RecvRaw()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return delivered, streamErr(ctx, err)
			}
			var chunk streamChunk
			if err := json.Unmarshal(raw, &chunk); err != nil {
				return delivered, fmt.Errorf("decode stream chunk: %w", err)
			}
			if chunk.Usage != nil {
				usage = *chunk.Usage
			}
			if len(chunk.Choices) == 0 {
				continue
			}
			d := chunk.Choices[0].Delta
			thought := d.ReasoningContent + d.Reasoning // one of them, whichever the provider names
			if d.Content == "" && thought == "" {
				continue // a keep-alive: the idle clock keeps running
			}
			// Reasoning is the model working on the answer: progress, kept
			// apart from the answer.
			idle.Reset(timeout)
			if thought != "" {
				reasoning.WriteString(thought)
				if req.OnReasoning != nil {
					req.OnReasoning(thought)
				}
			}
			if d.Content == "" {
				continue
			}
			text.WriteString(d.Content)
			delivered = true
			onDelta(d.Content)
		}
		if !done.seen.Load() {
			return delivered, ErrIncompleteStream
		}
		if !delivered {
			return false, ErrEmptyAnswer
		}
		res.Usage = r.chatUsage(m, c, req.Messages, text.String(), usage)
		return false, nil
	})
	res.Tried = tried
	res.Text = text.String()
	res.Reasoning = reasoning.String()
	if err != nil {
		res.Usage = Usage{}
		return res, err
	}
	return res, nil
}

// streamChunk is what ChatStream reads of a streamed chunk: the first
// choice's delta and the usage. Reasoning arrives as "reasoning_content"
// (DeepSeek, vLLM) or "reasoning" (OpenRouter); go-openai's own chunk type
// knows only the first, and decodes a dozen fields per chunk we never read.
type streamChunk struct {
	Choices []struct {
		Delta struct {
			Content          string `json:"content"`
			ReasoningContent string `json:"reasoning_content"`
			Reasoning        string `json:"reasoning"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *openai.Usage `json:"usage"`
}

// streamErr prefers our own timeout causes over the bare "context
// canceled" the HTTP client reports, so a stall or an answer past its
// deadline is classified as a timeout.
func streamErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errStreamIdle) || errors.Is(cause, errAnswerDeadline) {
		return cause
	}
	return err
}

func chatCapability(msgs []Message) Capability {
	for _, m := range msgs {
		if len(m.ImageJPEG) > 0 {
			return CapVision
		}
	}
	return CapChat
}

func chatRequest(m Model, req ChatRequest) openai.ChatCompletionRequest {
	out := openai.ChatCompletionRequest{Model: m.Name}
	limit := m.MaxTokens // New defaults it
	if req.MaxTokens > 0 {
		limit = min(limit, req.MaxTokens)
	}
	// OpenAI's reasoning models reject max_tokens (and go-openai refuses
	// to send it); many compatible servers only know max_tokens.
	if reasoningModel(m.Name) {
		out.MaxCompletionTokens = limit
	} else {
		//lint:ignore SA1019 compatible servers (Ollama, vLLM, OpenRouter) only know max_tokens
		out.MaxTokens = limit
	}
	out.Messages = make([]openai.ChatCompletionMessage, 0, len(req.Messages)) // a large struct: grown once
	for _, msg := range req.Messages {
		om := openai.ChatCompletionMessage{Role: msg.Role}
		if len(msg.ImageJPEG) == 0 {
			om.Content = msg.Text
		} else {
			url := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(msg.ImageJPEG)
			if msg.Text != "" {
				om.MultiContent = append(om.MultiContent, openai.ChatMessagePart{Type: openai.ChatMessagePartTypeText, Text: msg.Text})
			}
			om.MultiContent = append(om.MultiContent, openai.ChatMessagePart{
				Type:     openai.ChatMessagePartTypeImageURL,
				ImageURL: &openai.ChatMessageImageURL{URL: url, Detail: openai.ImageURLDetailAuto},
			})
		}
		out.Messages = append(out.Messages, om)
	}
	return out
}

// reasoningModel mirrors go-openai's own check for models that need
// max_completion_tokens.
func reasoningModel(name string) bool {
	for _, p := range []string{"o1", "o3", "o4", "gpt-5", "gpt-6"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// chatUsage uses the provider's token counts, or estimates them when the
// provider sent none (some compatible servers don't report usage).
func (r *Router) chatUsage(m Model, c Capability, msgs []Message, answer string, u openai.Usage) Usage {
	in, out := u.PromptTokens, u.CompletionTokens
	if in == 0 && out == 0 {
		in = estimateMessages(msgs)
		out = EstimateTokens(answer)
	}
	usage := Usage{Model: m.ID, Capability: c, InputTokens: in, OutputTokens: out, At: r.clock.Now()}
	usage.Cost = r.Cost(m, usage)
	return usage
}

// estimateMessages adds a few tokens per message for the role framing.
func estimateMessages(msgs []Message) int {
	n := 3
	for _, m := range msgs {
		n += 4 + EstimateTokens(m.Text)
		if len(m.ImageJPEG) > 0 {
			n += estimatedImageTokens
		}
	}
	return n
}
