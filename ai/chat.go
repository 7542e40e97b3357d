package ai

import (
	"context"
	"encoding/base64"
	"errors"
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
	MaxTokens int // 0: the provider's default
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
	Text  string
	Usage Usage
	Tried []string // model ids tried in order; on success the last one answered
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
		res.Text = text
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
//
// The timeout applies to the wait for the first delta and then to every gap
// between deltas, so a long answer that keeps flowing is not cut off.
func (r *Router) ChatStream(ctx context.Context, req ChatRequest, onDelta func(string)) (ChatResult, error) {
	c := chatCapability(req.Messages)
	var res ChatResult
	var text strings.Builder
	tried, err := r.run(ctx, req.Model, c, func(ctx context.Context, m Model, p *provider) (bool, error) {
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		timeout := r.timeoutFor(m)
		idle := time.AfterFunc(timeout, func() { cancel(errStreamIdle) })
		defer idle.Stop()

		oreq := chatRequest(m, req)
		oreq.Stream = true
		oreq.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
		stream, err := p.openai.CreateChatCompletionStream(ctx, oreq)
		if err != nil {
			return false, streamErr(ctx, err)
		}
		defer stream.Close()

		var usage openai.Usage
		delivered := false
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return delivered, streamErr(ctx, err)
			}
			idle.Reset(timeout)
			if chunk.Usage != nil {
				usage = *chunk.Usage
			}
			if len(chunk.Choices) == 0 || chunk.Choices[0].Delta.Content == "" {
				continue
			}
			delta := chunk.Choices[0].Delta.Content
			text.WriteString(delta)
			delivered = true
			onDelta(delta)
		}
		res.Usage = r.chatUsage(m, c, req.Messages, text.String(), usage)
		return false, nil
	})
	res.Tried = tried
	res.Text = text.String()
	if err != nil {
		res.Usage = Usage{}
		return res, err
	}
	return res, nil
}

// streamErr prefers the idle-timeout cause over the bare "context canceled"
// the HTTP client reports, so the stall is classified as a timeout.
func streamErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errStreamIdle) {
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
	if req.MaxTokens > 0 {
		// OpenAI's reasoning models reject max_tokens (and go-openai refuses
		// to send it); many compatible servers only know max_tokens.
		if reasoningModel(m.Name) {
			out.MaxCompletionTokens = req.MaxTokens
		} else {
			//lint:ignore SA1019 compatible servers (Ollama, vLLM, OpenRouter) only know max_tokens
			out.MaxTokens = req.MaxTokens
		}
	}
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
