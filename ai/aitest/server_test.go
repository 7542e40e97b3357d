package aitest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// post sends body to path with an OpenAI bearer key unless key is empty.
func post(t *testing.T, s *Server, path, contentType, key string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func postJSON(t *testing.T, s *Server, path string, v any) *http.Response {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return post(t, s, path, "application/json", "sk-test", b)
}

func decode(t *testing.T, r io.Reader) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.NewDecoder(r).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

var hello = map[string]any{"model": "m", "messages": []any{map[string]any{"role": "user", "content": "hello there"}}}

func TestMissingAuthorizationIs401(t *testing.T) {
	s := New()
	defer s.Close()
	for _, path := range []string{"/v1/chat/completions", "/v1/images/generations", "/v1/audio/speech", "/v1/audio/transcriptions"} {
		resp := post(t, s, path, "application/json", "", []byte(`{}`))
		if resp.StatusCode != 401 {
			t.Errorf("%s: status %d", path, resp.StatusCode)
			continue
		}
		e, _ := decode(t, resp.Body)["error"].(map[string]any)
		if e["code"] != "invalid_api_key" || e["type"] == nil || e["message"] == nil {
			t.Errorf("%s: error = %v", path, e)
		}
	}
	if got := s.Requests(); len(got) != 4 || got[0].Auth {
		t.Errorf("requests = %+v", got)
	}
}

func TestChatCompletionShape(t *testing.T) {
	s := New()
	defer s.Close()
	v := decode(t, postJSON(t, s, "/v1/chat/completions", hello).Body)
	choice := v["choices"].([]any)[0].(map[string]any)
	msg := choice["message"].(map[string]any)
	usage := v["usage"].(map[string]any)
	if v["object"] != "chat.completion" || msg["role"] != "assistant" || msg["content"] != "echo: hello there" || choice["finish_reason"] != "stop" {
		t.Errorf("response = %v", v)
	}
	// prompt: 1 message + 2 words; completion: 3 words.
	if usage["prompt_tokens"] != 3.0 || usage["completion_tokens"] != 3.0 || usage["total_tokens"] != 6.0 {
		t.Errorf("usage = %v", usage)
	}
}

// events reads an SSE body into its data payloads.
func events(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %q is not an SSE data line", line)
		}
		out = append(out, data)
	}
	return out
}

func TestStreamWireFormat(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script("m", Step{Text: "abcdefg", ChunkSize: 3})
	req := map[string]any{"model": "m", "messages": hello["messages"], "stream": true, "stream_options": map[string]any{"include_usage": true}}
	resp := postJSON(t, s, "/v1/chat/completions", req)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	evs := events(t, resp.Body)
	if len(evs) == 0 || evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("events = %q, want [DONE] last", evs)
	}
	var text strings.Builder
	var usage map[string]any
	var finish any
	for _, e := range evs[:len(evs)-1] {
		var c struct {
			Object  string
			Choices []struct {
				Delta        struct{ Content string }
				FinishReason any `json:"finish_reason"`
			}
			Usage map[string]any
		}
		if err := json.Unmarshal([]byte(e), &c); err != nil {
			t.Fatalf("chunk %q: %v", e, err)
		}
		if c.Object != "chat.completion.chunk" {
			t.Errorf("object = %q", c.Object)
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Delta.Content)
			if ch.FinishReason != nil {
				finish = ch.FinishReason
			}
		}
		if c.Usage != nil {
			if len(c.Choices) != 0 {
				t.Errorf("usage chunk has choices: %s", e)
			}
			usage = c.Usage
		}
	}
	if text.String() != "abcdefg" || finish != "stop" {
		t.Errorf("text %q, finish %v", text.String(), finish)
	}
	if usage["completion_tokens"] != 1.0 {
		t.Errorf("usage = %v", usage)
	}
	// role chunk, 3 content chunks, finish chunk, usage chunk, [DONE]
	if len(evs) != 7 {
		t.Errorf("%d events, want 7: %q", len(evs), evs)
	}

	// Without include_usage no chunk carries a usage key.
	req["stream_options"] = nil
	for _, e := range events(t, postJSON(t, s, "/v1/chat/completions", req).Body) {
		if strings.Contains(e, `"usage"`) {
			t.Errorf("usage without include_usage: %s", e)
		}
	}
}

func TestScriptIsAQueuePerModel(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script("m", Step{Status: 500}, Step{Status: 429}, Step{Text: "third"})
	other := map[string]any{"model": "other", "messages": hello["messages"]}
	if resp := postJSON(t, s, "/v1/chat/completions", other); resp.StatusCode != 200 {
		t.Errorf("other model: status %d", resp.StatusCode)
	}
	if resp := postJSON(t, s, "/v1/chat/completions", hello); resp.StatusCode != 500 {
		t.Errorf("first: status %d", resp.StatusCode)
	}
	resp := postJSON(t, s, "/v1/chat/completions", hello)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second: status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if e := decode(t, resp.Body)["error"].(map[string]any); e["code"] != "rate_limit_exceeded" {
		t.Errorf("429 error = %v", e)
	}
	v := decode(t, postJSON(t, s, "/v1/chat/completions", hello).Body)
	if v["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"] != "third" {
		t.Errorf("third = %v", v)
	}
	v = decode(t, postJSON(t, s, "/v1/chat/completions", hello).Body)
	if v["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"] != "echo: hello there" {
		t.Errorf("after the queue: %v", v)
	}
	if s.Count() != 5 {
		t.Errorf("Count = %d", s.Count())
	}
	if want := 5 * len(hello["messages"].([]any)); s.Messages() != want {
		t.Errorf("Messages = %d, want %d", s.Messages(), want)
	}
}

// SetDefault answers every request no script claims; a script still goes
// first.
func TestSetDefaultAnswersWhatNoScriptClaims(t *testing.T) {
	s := New()
	defer s.Close()
	s.SetDefault(Step{Text: "slow", Delay: 50 * time.Millisecond})
	s.Script("m", Step{Text: "scripted"})
	content := func() (string, time.Duration) {
		start := time.Now()
		v := decode(t, postJSON(t, s, "/v1/chat/completions", hello).Body)
		return v["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"].(string), time.Since(start)
	}
	if got, _ := content(); got != "scripted" {
		t.Errorf("first = %q, want the script's", got)
	}
	for i := range 2 {
		got, took := content()
		if got != "slow" || took < 50*time.Millisecond {
			t.Errorf("request %d after the script = %q in %s, want the default's answer after its delay", i+2, got, took)
		}
	}
	s.SetDefault(Step{})
	if got, _ := content(); got != "echo: hello there" {
		t.Errorf("after SetDefault(Step{}) = %q, want the echo", got)
	}
}

func TestCloseReleasesHangingRequests(t *testing.T) {
	s := New()
	s.Script("m", Step{Hang: true})
	done := make(chan error, 1)
	go func() {
		b, _ := json.Marshal(hello)
		resp, err := http.Post(s.URL()+"/v1/chat/completions", "application/json", bytes.NewReader(b))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	for s.Count() == 0 {
		time.Sleep(time.Millisecond)
	}
	s.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a hanging request outlived Close")
	}
}

func TestImagesURLIsServed(t *testing.T) {
	s := New()
	defer s.Close()
	v := decode(t, postJSON(t, s, "/v1/images/generations", map[string]any{"model": "dall-e-3", "prompt": "fox"}).Body)
	url := v["data"].([]any)[0].(map[string]any)["url"].(string)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	img, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(img, PNG("fox#0")) {
		t.Errorf("served %q, %d bytes", resp.Header.Get("Content-Type"), len(img))
	}
	v = decode(t, postJSON(t, s, "/v1/images/generations", map[string]any{"model": "dall-e-3", "prompt": "fox", "response_format": "b64_json", "n": 2}).Body)
	if n := len(v["data"].([]any)); n != 2 {
		t.Errorf("%d images for n=2", n)
	}
}

func TestTranscriptionMultipart(t *testing.T) {
	s := New()
	defer s.Close()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "note.ogg")
	fw.Write([]byte("12345"))
	mw.WriteField("model", "whisper-1")
	mw.Close()
	resp := post(t, s, "/v1/audio/transcriptions", mw.FormDataContentType(), "sk", body.Bytes())
	if v := decode(t, resp.Body); v["text"] != "transcript of note.ogg (5 bytes)" {
		t.Errorf("response = %v", v)
	}
	if q := s.Requests()[0]; q.Model != "whisper-1" || q.Filename != "note.ogg" || q.FileSize != 5 {
		t.Errorf("request = %+v", q)
	}
}

func TestSpeechFormats(t *testing.T) {
	s := New()
	defer s.Close()
	tests := []struct {
		format, mime string
		magic        []byte
	}{
		{"", "audio/mpeg", []byte{0xFF, 0xFB}},
		{"mp3", "audio/mpeg", []byte{0xFF, 0xFB}},
		{"opus", "audio/ogg", []byte("OggS")},
		{"wav", "audio/wav", []byte("RIFF")},
		{"pcm", "audio/pcm", []byte{0, 0}},
	}
	for _, tc := range tests {
		resp := postJSON(t, s, "/v1/audio/speech", map[string]any{"model": "tts-1", "input": "hi", "voice": "alloy", "response_format": tc.format})
		audio, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.mime || !bytes.HasPrefix(audio, tc.magic) {
			t.Errorf("format %q: status %d, type %q, starts % x", tc.format, resp.StatusCode, resp.Header.Get("Content-Type"), audio[:min(4, len(audio))])
		}
	}
	if resp := postJSON(t, s, "/v1/audio/speech", map[string]any{"model": "tts-1", "input": "hi", "voice": "alloy", "response_format": "flac"}); resp.StatusCode != 400 {
		t.Errorf("flac: status %d, want 400", resp.StatusCode)
	}
}

func TestElevenLabs(t *testing.T) {
	s := New()
	defer s.Close()
	send := func(key string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/v1/text-to-speech/voice1", strings.NewReader(`{"text":"hi","model_id":"eleven_v2"}`))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("xi-api-key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := send("")
	if resp.StatusCode != 401 {
		t.Fatalf("no key: status %d", resp.StatusCode)
	}
	if d := decode(t, resp.Body)["detail"].(map[string]any); d["status"] != "invalid_api_key" {
		t.Errorf("detail = %v", d)
	}
	resp = send("xi-key")
	audio, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "audio/mpeg" || !bytes.HasPrefix(audio, []byte{0xFF, 0xFB}) {
		t.Errorf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if q := s.Requests()[1]; q.Voice != "voice1" || q.Model != "eleven_v2" || q.Input != "hi" || !q.Auth {
		t.Errorf("request = %+v", q)
	}
}

func TestModelsList(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script("b-model")
	postJSON(t, s, "/v1/chat/completions", hello)
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Object string
		Data   []struct{ ID string }
	}
	json.NewDecoder(resp.Body).Decode(&list)
	if list.Object != "list" || len(list.Data) != 2 || list.Data[0].ID != "b-model" || list.Data[1].ID != "m" {
		t.Errorf("list = %+v", list)
	}
}

func TestOggCRC(t *testing.T) {
	// Ogg's CRC is CRC-32/POSIX without the final inversion; its check
	// value for "123456789" is 0x765E7680 after inverting.
	if got := oggCRC([]byte("123456789")) ^ 0xFFFFFFFF; got != 0x765E7680 {
		t.Errorf("check value = %#x", got)
	}
}

func TestSilentOggOpusPages(t *testing.T) {
	b := SilentOggOpus(6 * time.Second) // more than 255 packets: two audio pages
	pages := 0
	var last []byte
	for len(b) > 0 {
		if !bytes.HasPrefix(b, []byte("OggS")) {
			t.Fatalf("page %d does not start with OggS", pages)
		}
		n := 27 + int(b[26])
		for _, l := range b[27:n] {
			n += int(l)
		}
		page := bytes.Clone(b[:n])
		want := binary.LittleEndian.Uint32(page[22:])
		binary.LittleEndian.PutUint32(page[22:], 0)
		if got := oggCRC(page); got != want {
			t.Errorf("page %d: CRC %#x, stored %#x", pages, got, want)
		}
		last, b = b[:n], b[n:]
		pages++
	}
	if pages != 4 {
		t.Errorf("%d pages, want 4", pages)
	}
	granule := binary.LittleEndian.Uint64(last[6:])
	if got := float64(granule-opusPreSkip) / 48000; got != 6 || last[5] != 0x04 {
		t.Errorf("last page: %v s, flags %#x", got, last[5])
	}
}

func TestFaultsOnTheWire(t *testing.T) {
	s := New()
	defer s.Close()
	streamReq := map[string]any{"model": "m", "messages": hello["messages"], "stream": true}
	content := func(t *testing.T, evs []string) string {
		t.Helper()
		var b strings.Builder
		for _, e := range evs {
			if e == "[DONE]" {
				continue
			}
			var c struct {
				Choices []struct{ Delta struct{ Content string } }
			}
			if err := json.Unmarshal([]byte(e), &c); err != nil {
				t.Fatalf("chunk %q: %v", e, err)
			}
			for _, ch := range c.Choices {
				b.WriteString(ch.Delta.Content)
			}
		}
		return b.String()
	}
	body := func(t *testing.T, resp *http.Response) string {
		t.Helper()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("empty answer", func(t *testing.T) {
		s.Script("m", Step{Fault: EmptyAnswer})
		evs := events(t, postJSON(t, s, "/v1/chat/completions", streamReq).Body)
		if len(evs) < 3 || evs[len(evs)-1] != "[DONE]" || content(t, evs) != "" {
			t.Errorf("events = %q, want a well-formed stream without content", evs)
		}
		s.Script("m", Step{Fault: EmptyAnswer})
		v := decode(t, postJSON(t, s, "/v1/chat/completions", hello).Body)
		if c := v["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"]; c != "" {
			t.Errorf("content = %v, want empty", c)
		}
	})
	t.Run("empty body", func(t *testing.T) {
		s.Script("m", Step{Fault: EmptyBody})
		resp := postJSON(t, s, "/v1/chat/completions", streamReq)
		if b := body(t, resp); resp.StatusCode != 200 || b != "" {
			t.Errorf("status %d, body %q", resp.StatusCode, b)
		}
	})
	t.Run("json body", func(t *testing.T) {
		s.Script("m", Step{Fault: JSONBody})
		resp := postJSON(t, s, "/v1/chat/completions", streamReq)
		v := decode(t, resp.Body)
		if resp.Header.Get("Content-Type") != "application/json" || v["object"] != "chat.completion" {
			t.Errorf("Content-Type %q, body %v; want a whole completion", resp.Header.Get("Content-Type"), v)
		}
	})
	t.Run("html body", func(t *testing.T) {
		s.Script("m", Step{Fault: HTMLBody})
		resp := postJSON(t, s, "/v1/chat/completions", streamReq)
		b := body(t, resp)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.HasPrefix(b, "<!DOCTYPE html>") {
			t.Errorf("status %d, Content-Type %q, body %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	})
	t.Run("no done", func(t *testing.T) {
		s.Script("m", Step{Fault: NoDone, Text: "abc"})
		evs := events(t, postJSON(t, s, "/v1/chat/completions", streamReq).Body)
		if len(evs) == 0 || evs[len(evs)-1] == "[DONE]" || content(t, evs) != "abc" {
			t.Errorf("events = %q, want the content without [DONE]", evs)
		}
	})
	t.Run("keep-alive", func(t *testing.T) {
		s.Script("m", Step{Fault: KeepAlive, TokenDelay: 10 * time.Millisecond})
		resp := postJSON(t, s, "/v1/chat/completions", streamReq)
		sc := bufio.NewScanner(resp.Body)
		var evs []string
		for len(evs) < 5 && sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				evs = append(evs, data)
			}
		}
		if len(evs) != 5 || content(t, evs) != "" || slices.Contains(evs, "[DONE]") {
			t.Errorf("events = %q, want empty chunks without end", evs)
		}
	})
}
