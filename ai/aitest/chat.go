package aitest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// chatRequest is the part of OpenAI's chat completion request we read.
type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []chatMessage `json:"messages"`
	Stream              bool          `json:"stream"`
	MaxTokens           int           `json:"max_tokens"`
	MaxCompletionTokens int           `json:"max_completion_tokens"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"` // a string or an array of parts
}

type contentPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	ImageURL *struct {
		URL string `json:"url"`
	} `json:"image_url"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	s.enter(r)
	defer s.leave()
	rec := Request{Method: r.Method, Path: r.URL.Path, Auth: bearer(r)}
	if !rec.Auth {
		s.record(rec)
		openAIError(w, http.StatusUnauthorized, "You didn't provide an API key.")
		return
	}
	var req chatRequest
	if !decodeJSON(w, r, &req) {
		s.record(rec)
		return
	}
	rec.Model = req.Model
	rec.Stream = req.Stream
	rec.IncludeUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	rec.MaxTokens = max(req.MaxTokens, req.MaxCompletionTokens)
	for _, m := range req.Messages {
		msg, err := parseMessage(m)
		if err != nil {
			s.record(rec)
			openAIError(w, http.StatusBadRequest, "Invalid message content.")
			return
		}
		rec.Messages = append(rec.Messages, msg)
	}
	st := s.record(rec)
	if req.Model == "" || len(req.Messages) == 0 {
		openAIError(w, http.StatusBadRequest, "model and messages are required")
		return
	}
	if !s.wait(r, st) || stepError(w, st) {
		return
	}
	switch st.Fault {
	case EmptyBody:
		w.WriteHeader(http.StatusOK)
		return
	case HTMLBody:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, htmlPage)
		return
	case JSONBody:
		req.Stream = false
	}

	answer := st.Text
	if answer == "" {
		answer = echo(rec.Messages)
	}
	if st.Fault == EmptyAnswer {
		answer = ""
	}
	finish := "stop"
	if rec.MaxTokens > 0 && Tokens(answer) > rec.MaxTokens {
		answer = strings.Join(strings.Fields(answer)[:rec.MaxTokens], " ")
		finish = "length"
	}
	u := usage{PromptTokens: promptTokens(rec.Messages), CompletionTokens: Tokens(st.Reasoning) + Tokens(answer)}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	id := fmt.Sprintf("chatcmpl-aitest-%d", s.nextID())

	if req.Stream {
		s.stream(w, r, st, id, req.Model, answer, finish, u, rec.IncludeUsage && !st.NoUsage)
		return
	}
	message := map[string]any{"role": "assistant", "content": answer, "refusal": nil}
	if st.Reasoning != "" {
		message[reasoningField(st)] = st.Reasoning
	}
	resp := map[string]any{
		"id":      id,
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   req.Model,
		"choices": []any{map[string]any{
			"index":         0,
			"message":       message,
			"logprobs":      nil,
			"finish_reason": finish,
		}},
		"system_fingerprint": "fp_aitest",
	}
	if !st.NoUsage {
		resp["usage"] = u
	}
	writeJSON(w, http.StatusOK, resp)
}

// stream answers as OpenAI's server-sent events: a role chunk, reasoning
// chunks (Step.Reasoning), content chunks, a finish chunk, a usage chunk when asked for, then [DONE].
func (s *Server) stream(w http.ResponseWriter, r *http.Request, st Step, id, model, answer, finish string, u usage, withUsage bool) {
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	created := time.Now().Unix()
	send := func(choices []any, u *usage) {
		chunk := map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created,
			"model": model, "system_fingerprint": "fp_aitest", "choices": choices,
		}
		if withUsage {
			chunk["usage"] = u // null on every chunk but the last, like OpenAI
		}
		b, _ := json.Marshal(chunk)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	delta := func(d map[string]any, finish any) []any {
		return []any{map[string]any{"index": 0, "delta": d, "logprobs": nil, "finish_reason": finish}}
	}

	send(delta(map[string]any{"role": "assistant", "content": ""}, nil), nil)
	if st.Fault == KeepAlive {
		every := st.TokenDelay
		if every <= 0 {
			every = 100 * time.Millisecond
		}
		for s.sleep(r.Context(), every) {
			send(delta(map[string]any{}, nil), nil)
		}
		return
	}
	size := st.ChunkSize
	if size <= 0 {
		size = DefaultChunkSize
	}
	// A reasoning model thinks first: its reasoning arrives in deltas of
	// their own, with no content, before the answer.
	for _, piece := range chunks(st.Reasoning, size) {
		send(delta(map[string]any{reasoningField(st): piece}, nil), nil)
		if !s.sleep(r.Context(), st.TokenDelay) {
			return
		}
	}
	for i, piece := range chunks(answer, size) {
		if i > 0 && !s.sleep(r.Context(), st.TokenDelay) {
			return
		}
		if st.FailAfter > 0 && i == st.FailAfter {
			// Abort mid-body: the client sees the connection drop.
			panic(http.ErrAbortHandler)
		}
		send(delta(map[string]any{"content": piece}, nil), nil)
	}
	send(delta(map[string]any{}, finish), nil)
	if withUsage {
		send([]any{}, &u)
	}
	if st.Fault == NoDone {
		return
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}

// htmlPage is what a proxy in front of a provider sends instead of JSON.
const htmlPage = `<!DOCTYPE html>
<html>
<head><title>Just a moment...</title></head>
<body>
<h1>Checking your browser before accessing the API.</h1>
<p>This process is automatic.</p>
</body>
</html>
`

// chunks splits text into pieces of size runes, never inside a rune.
func chunks(text string, size int) []string {
	var out []string
	runes := []rune(text)
	for len(runes) > 0 {
		n := min(size, len(runes))
		out = append(out, string(runes[:n]))
		runes = runes[n:]
	}
	return out
}

func parseMessage(m chatMessage) (Message, error) {
	msg := Message{Role: m.Role}
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return msg, nil
	}
	if m.Content[0] == '"' {
		err := json.Unmarshal(m.Content, &msg.Text)
		return msg, err
	}
	var parts []contentPart
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return msg, err
	}
	var texts []string
	for _, p := range parts {
		switch p.Type {
		case "text":
			texts = append(texts, p.Text)
		case "image_url":
			msg.Image = true
			if p.ImageURL != nil {
				msg.ImageData = decodeDataURL(p.ImageURL.URL)
			}
		}
	}
	msg.Text = strings.Join(texts, "\n")
	return msg, nil
}

// decodeDataURL returns the bytes of a base64 data: URL, nil otherwise.
func decodeDataURL(u string) []byte {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return nil
	}
	_, payload, ok := strings.Cut(rest, ";base64,")
	if !ok {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return nil
	}
	return b
}

// echo is the default answer: "echo: " and the last user message, with
// " [image]" when that message carried an image.
func echo(msgs []Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role != "user" {
			continue
		}
		answer := "echo: " + msgs[i].Text
		if msgs[i].Image {
			answer += " [image]"
		}
		return answer
	}
	return "echo:"
}

func promptTokens(msgs []Message) int {
	n := 0
	for _, m := range msgs {
		n += 1 + Tokens(m.Text)
		if m.Image {
			n += 85
		}
	}
	return n
}

// reasoningField is the JSON field a step's reasoning goes in.
func reasoningField(st Step) string {
	if st.ReasoningField != "" {
		return st.ReasoningField
	}
	return "reasoning_content"
}
