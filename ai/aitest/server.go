// Package aitest is an emulator of the AI providers' HTTP APIs: the
// OpenAI-compatible endpoints (chat with SSE streaming, images,
// transcription, speech, models) and ElevenLabs text-to-speech. It speaks the
// real JSON shapes so the real clients run against it, in tests and in
// `valex demo` alike.
//
// Answers are deterministic: chat echoes the last user message
// ("echo: <text>"), transcription names the file, images are small real
// PNGs, speech is real (silent) MP3, Ogg Opus or WAV. Script queues other
// behaviours per model: errors, delays, hangs, chunked streams, dropped
// connections, and the 200 answers that are still wrong (Fault).
package aitest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Step is one scripted behaviour, consumed by one request for its model.
type Step struct {
	Status int           // non-2xx: answer with an error in the provider's JSON shape; 429 adds Retry-After
	Delay  time.Duration // wait before answering, to emulate a slow provider or a timeout
	Text   string        // chat answer or transcript instead of the default
	// Reasoning is a reasoning model's thinking, sent before the answer:
	// streamed as "reasoning_content" deltas (DeepSeek's field, also
	// vLLM's), or as message.reasoning_content without streaming. Its
	// tokens count in completion_tokens, as providers bill them.
	Reasoning string
	// ReasoningField names the field the reasoning goes in: "" for
	// "reasoning_content", or "reasoning" (OpenRouter's).
	ReasoningField string
	TokenDelay     time.Duration // streaming: pause between chunks
	ChunkSize      int           // streaming: runes per chunk; DefaultChunkSize when 0
	Hang           bool          // never answer; give up only when the client goes away or the server closes
	FailAfter      int           // streaming: drop the connection after this many content chunks (0: never)
	NoUsage        bool          // chat: report no usage, like some compatible servers
	Fault          Fault         // chat: a 200 answer that is wrong all the same
}

// Fault is a way a chat endpoint answers 200 and still fails: what broken
// proxies, overloaded compatible servers and captive portals send.
type Fault string

const (
	// EmptyAnswer is a well-formed answer with no content: a stream of a
	// role chunk, a finish chunk, usage and [DONE], or a completion whose
	// content is "".
	EmptyAnswer Fault = "empty answer"
	// EmptyBody is a 200 with no body at all.
	EmptyBody Fault = "empty body"
	// JSONBody answers a streaming request with a whole JSON completion, as
	// a server that ignores "stream": true.
	JSONBody Fault = "json body"
	// HTMLBody is a 200 with an HTML page (a proxy's or a portal's).
	HTMLBody Fault = "html body"
	// NoDone ends a stream cleanly after its content and usage but without
	// the "data: [DONE]" terminator, as a connection cut between events.
	NoDone Fault = "no done"
	// KeepAlive streams chunks with an empty delta every TokenDelay (100ms
	// when unset) and never any content, until the client goes away.
	KeepAlive Fault = "keep-alive"
)

// DefaultChunkSize is the runes per streamed chunk when a Step sets none.
const DefaultChunkSize = 4

// Message is a chat message as it arrived.
type Message struct {
	Role      string
	Text      string // the text parts joined
	Image     bool   // an image_url part was present
	ImageData []byte // the decoded image when it was a base64 data: URL
}

// Request records what arrived.
type Request struct {
	Method, Path string
	Model        string // model (OpenAI) or model_id (ElevenLabs)
	Auth         bool   // Authorization: Bearer … (OpenAI) or xi-api-key (ElevenLabs) present
	Messages     []Message
	Stream       bool
	IncludeUsage bool   // stream_options.include_usage
	MaxTokens    int    // max_tokens or max_completion_tokens
	Prompt       string // image prompt
	Input        string // speech text
	Voice        string // speech voice, or ElevenLabs voice_id
	Format       string // response_format
	Filename     string // transcription: multipart file name
	FileSize     int    // transcription: bytes of the file
}

// Server is a running emulator. Its methods are safe for concurrent use.
type Server struct {
	url  string
	srv  *http.Server
	done chan struct{} // closed by Close: releases hanging handlers

	closeOnce sync.Once
	wg        sync.WaitGroup

	mu       sync.Mutex
	scripts  map[string][]Step
	fallback Step // SetDefault: what a request with no script queued gets
	reqs     []Request
	noLog    bool          // SetRecord(false): requests are counted, not kept
	count    int           // requests that arrived
	msgs     int           // chat messages in those requests, all together
	held     chan struct{} // Hold: chat requests wait until it is closed
	// inFlight is the chat requests being answered, maxInFlight the most
	// there ever were at once.
	inFlight, maxInFlight int
	files                 map[string][]byte // generated images served by URL
	seq                   int
}

// New starts an emulator on a free loopback port. Like httptest it panics
// when it cannot listen.
func New() *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("aitest: listen: %v", err))
	}
	s := &Server{
		url:     "http://" + ln.Addr().String(),
		done:    make(chan struct{}),
		scripts: make(map[string][]Step),
		files:   make(map[string][]byte),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("POST /v1/images/generations", s.images)
	mux.HandleFunc("GET /files/{name}", s.file)
	mux.HandleFunc("POST /v1/audio/transcriptions", s.transcriptions)
	mux.HandleFunc("POST /v1/audio/speech", s.speech)
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("POST /v1/text-to-speech/{voice_id}", s.elevenLabs)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln) // returns http.ErrServerClosed on Close
	}()
	return s
}

// URL is the server's root, e.g. http://127.0.0.1:34567. go-openai and the
// OpenAI provider config want URL()+"/v1"; ElevenLabs wants URL().
func (s *Server) URL() string { return s.url }

// Close stops the server and releases hanging requests.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		_ = s.srv.Close()
		s.wg.Wait()
	})
}

// Script queues behaviours for model; each request for model consumes one.
// When the queue is empty the default behaviour answers.
func (s *Server) Script(model string, steps ...Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[model] = append(s.scripts[model], steps...)
}

// SetDefault sets the behaviour of every request for which no script is
// queued (the zero Step, the default answer at once, until it is called): a
// load run's provider that takes time to answer, say.
func (s *Server) SetDefault(st Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = st
}

// SetRecord turns keeping requests on or off (on by default): a load run
// sends too many to keep. Count counts them all the same.
func (s *Server) SetRecord(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noLog = !on
}

// Hold makes chat requests wait, once they have arrived and been counted,
// until the returned release is called (release is idempotent). It is how a
// test keeps a provider busy without scripting each request.
func (s *Server) Hold() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.held = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.held == ch {
				s.held = nil
			}
			s.mu.Unlock()
			close(ch)
		})
	}
}

// InFlight is the number of chat requests being answered now, and the most
// there were at once since the server started.
func (s *Server) InFlight() (now, most int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight, s.maxInFlight
}

// enter counts a chat request in flight and waits while requests are held;
// leave must follow.
func (s *Server) enter(r *http.Request) {
	s.mu.Lock()
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	held := s.held
	s.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-r.Context().Done():
		case <-s.done:
		}
	}
}

func (s *Server) leave() {
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
}

// Requests returns a copy of what arrived, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// Count is the number of requests that arrived.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Messages is the number of chat messages (history included) in all the
// requests that arrived: divided by Count, what each request carried.
func (s *Server) Messages() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msgs
}

// record stores req and pops the next step for its model.
func (s *Server) record(req Request) Step {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	s.msgs += len(req.Messages)
	if !s.noLog {
		s.reqs = append(s.reqs, req)
	}
	q := s.scripts[req.Model]
	if len(q) == 0 {
		return s.fallback
	}
	s.scripts[req.Model] = q[1:]
	return q[0]
}

func (s *Server) nextID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.seq
}

// wait applies a step's Hang and Delay. It reports false when the client
// went away or the server is closing: the handler then writes nothing.
func (s *Server) wait(r *http.Request, st Step) bool {
	if st.Hang {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return false
	}
	return s.sleep(r.Context(), st.Delay)
}

func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// bearer reports whether an OpenAI-style Authorization header is present.
func bearer(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && strings.TrimSpace(token) != ""
}

// openAIError writes {"error":{"message","type","param","code"}} like OpenAI.
func openAIError(w http.ResponseWriter, status int, message string) {
	typ, code := "server_error", "server_error"
	switch {
	case status == http.StatusUnauthorized:
		typ, code = "invalid_request_error", "invalid_api_key"
	case status == http.StatusTooManyRequests:
		typ, code = "requests", "rate_limit_exceeded"
		w.Header().Set("Retry-After", "1")
	case status == http.StatusNotFound:
		typ, code = "invalid_request_error", "model_not_found"
	case status < 500:
		typ, code = "invalid_request_error", "invalid_request"
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"message": message, "type": typ, "param": nil, "code": code,
	}})
}

// stepError answers a scripted failure; it reports whether it did.
func stepError(w http.ResponseWriter, st Step) bool {
	if st.Status == 0 || (st.Status >= 200 && st.Status < 300) {
		return false
	}
	openAIError(w, st.Status, fmt.Sprintf("emulated status %d", st.Status))
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a JSON body, answering 400 itself when it is not JSON.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20)).Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			openAIError(w, http.StatusRequestEntityTooLarge, "request too large")
			return false
		}
		openAIError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.")
		return false
	}
	return true
}

// Tokens is the emulator's token count: whitespace-separated words. Chat
// usage reports prompt_tokens = Σ Tokens(message text) + 1 per message
// + 85 per image, and completion_tokens = Tokens(answer).
func Tokens(text string) int { return len(strings.Fields(text)) }
