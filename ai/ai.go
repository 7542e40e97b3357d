// Package ai reaches the AI providers: chat (plain and streamed), vision,
// image generation, transcription and text-to-speech, with a model catalogue,
// per-model fallback chains, pricing and usage. It is the only importer of
// go-openai.
//
// The package never logs. Its errors carry model ids, HTTP status codes and
// provider error codes only — never a prompt, an answer or an API key — so a
// caller may log them as they are.
package ai

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/valex-ai/valex"
)

// Capability is something a model can do.
type Capability string

const (
	CapChat       Capability = "chat"
	CapVision     Capability = "vision"
	CapImage      Capability = "image"
	CapTranscribe Capability = "transcribe"
	CapSpeech     Capability = "speech"
)

// Provider kinds.
const (
	KindOpenAI     = "openai"     // OpenAI or any OpenAI-compatible endpoint
	KindElevenLabs = "elevenlabs" // ElevenLabs text-to-speech
)

// Default base URLs when ProviderConfig.BaseURL is empty.
const (
	DefaultOpenAIBaseURL     = "https://api.openai.com/v1"
	DefaultElevenLabsBaseURL = "https://api.elevenlabs.io"
)

// DefaultTimeout bounds one call to one model when Config.Timeout is zero.
const DefaultTimeout = 60 * time.Second

// DefaultAnswerTimeout bounds a whole streamed answer when
// Config.AnswerTimeout is zero.
const DefaultAnswerTimeout = 120 * time.Second

// DefaultMaxTokens is the max_tokens sent with a chat request when the
// model sets none: without it a provider may answer with megabytes.
const DefaultMaxTokens = 4096

// MicroCredits is the number of micro-credits in one credit. Prices and costs
// are int64 micro-credits so that summing many small charges never drifts.
const MicroCredits = 1_000_000

// maxBody caps what we read from a provider (images, audio): a misbehaving
// endpoint must not exhaust memory.
const maxBody = 32 << 20

// ProviderConfig names an endpoint and its key.
//
// For Kind "openai" BaseURL is used as-is by go-openai, so it includes the
// version path: "https://api.openai.com/v1" (the default),
// "https://openrouter.ai/api/v1", "http://localhost:11434/v1".
// For Kind "elevenlabs" BaseURL is the host root ("https://api.elevenlabs.io",
// the default); the package appends "/v1/text-to-speech/{voice_id}".
type ProviderConfig struct {
	Name    string
	Kind    string
	BaseURL string
	APIKey  string
}

// Price is what a model costs, in micro-credits (see MicroCredits).
type Price struct {
	InputPer1K     int64 // per 1000 input tokens
	OutputPer1K    int64 // per 1000 output tokens
	PerImage       int64 // per generated image
	PerAudioMinute int64 // per minute of transcribed audio
	Per1KChars     int64 // per 1000 characters of synthesized speech
}

// Model is one entry of the catalogue.
type Model struct {
	ID            string // shown to users and used in configuration
	Provider      string // ProviderConfig.Name
	Name          string // the provider's model name; defaults to ID
	Caps          []Capability
	Price         Price
	Plans         []string // plans that may use it; empty means all
	Fallback      []string // model ids tried in order when this one fails
	ContextTokens int      // context window, for budgeting by the caller
	MaxTokens     int      // chat: most tokens of an answer, sent as max_tokens; DefaultMaxTokens when zero
	Voice         string   // speech: OpenAI voice ("alloy" by default) or ElevenLabs voice_id (required)
	// Timeout overrides Config.Timeout for this model: image generation
	// and long transcriptions take far longer than a chat answer.
	Timeout time.Duration
	// Description is the operator's one line about the model, shown in
	// /model; Descriptions holds it in other languages, by language code.
	Description  string
	Descriptions map[string]string
}

// DescriptionIn is the model's description in lang, or the default one.
func (m Model) DescriptionIn(lang string) string {
	if d, ok := m.Descriptions[lang]; ok && d != "" {
		return d
	}
	return m.Description
}

// Can reports whether m has capability c.
func (m Model) Can(c Capability) bool { return slices.Contains(m.Caps, c) }

// AllowedOn reports whether a user on plan may use m.
func (m Model) AllowedOn(plan string) bool {
	return len(m.Plans) == 0 || slices.Contains(m.Plans, plan)
}

// Config configures a Router.
type Config struct {
	Providers []ProviderConfig
	Models    []Model
	// Timeout bounds one call to one model; for a streamed answer, the
	// wait for text: the first delta and every gap between two.
	// DefaultTimeout when zero.
	Timeout time.Duration
	// AnswerTimeout bounds a whole streamed answer, fallbacks included:
	// a provider trickling text must not hold the caller for ever.
	// DefaultAnswerTimeout when zero.
	AnswerTimeout time.Duration
	// MaxConns bounds the connections to each provider, open and idle: a
	// caller running at most N calls at once sets N (handlers'
	// MaxConcurrent). DefaultMaxConns when zero.
	MaxConns int
	// HTTPClient, when set, is shared by every provider (tests); when nil
	// each provider gets its own pooled client bounded by MaxConns.
	HTTPClient *http.Client
}

// DefaultMaxConns is Config.MaxConns when zero.
const DefaultMaxConns = 16

// Sentinel errors.
var (
	// ErrAllFailed is returned, wrapped together with every model's cause,
	// when each model of the chain failed. Nothing is charged.
	ErrAllFailed = errors.New("ai: all models failed")
	// ErrNoModel is returned for an unknown model id or a model that lacks
	// the capability a call needs.
	ErrNoModel = errors.New("ai: no such model")

	// Answers that came with a 200 and are failures all the same: like a
	// 5xx they fall back to the next model, and nothing is charged.

	// ErrEmptyAnswer: the provider finished without any content.
	ErrEmptyAnswer = errors.New("ai: empty answer")
	// ErrIncompleteStream: a stream ended without its "data: [DONE]"
	// terminator: cut off, or not a stream at all (a JSON or HTML body).
	ErrIncompleteStream = errors.New("ai: stream ended without [DONE]")
)

// Router sends each call to a model and falls back along its chain. It is
// safe for concurrent use.
type Router struct {
	clock     valex.Clock
	timeout   time.Duration
	answer    time.Duration // Config.AnswerTimeout
	http      *http.Client  // Config.HTTPClient; nil: each provider has its own
	maxConns  int
	providers map[string]*provider
	models    map[string]Model
	order     []string            // model ids in configuration order
	chains    map[string][]string // model id → itself, then its fallbacks, depth first
}

type provider struct {
	cfg    ProviderConfig
	http   *http.Client   // one pool per provider, reused by every call
	openai *openai.Client // nil for ElevenLabs
}

// New validates cfg and builds a Router. Every problem found is reported in
// one joined error so an operator fixes the configuration in one pass. A nil
// clock means the wall clock.
func New(cfg Config, clock valex.Clock) (*Router, error) {
	if clock == nil {
		clock = valex.SystemClock{}
	}
	r := &Router{
		clock:     clock,
		timeout:   cfg.Timeout,
		answer:    cfg.AnswerTimeout,
		http:      cfg.HTTPClient,
		maxConns:  cfg.MaxConns,
		providers: make(map[string]*provider),
		models:    make(map[string]Model),
		chains:    make(map[string][]string),
	}
	if r.timeout == 0 {
		r.timeout = DefaultTimeout
	}
	if r.answer == 0 {
		r.answer = DefaultAnswerTimeout
	}
	if r.maxConns == 0 {
		r.maxConns = DefaultMaxConns
	}

	var errs []error
	if r.timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v is negative", cfg.Timeout))
	}
	if r.maxConns < 0 {
		errs = append(errs, fmt.Errorf("max conns %d is negative", cfg.MaxConns))
	}
	if r.answer < 0 {
		errs = append(errs, fmt.Errorf("answer timeout %v is negative", cfg.AnswerTimeout))
	}
	for i, p := range cfg.Providers {
		if p.Name == "" {
			errs = append(errs, fmt.Errorf("provider #%d: empty name", i+1))
			continue
		}
		if _, dup := r.providers[p.Name]; dup {
			errs = append(errs, fmt.Errorf("provider %q: defined twice", p.Name))
			continue
		}
		hc := r.http
		if hc == nil {
			hc = pooledClient(max(r.maxConns, 1))
		}
		switch p.Kind {
		case KindOpenAI:
			if p.BaseURL == "" {
				p.BaseURL = DefaultOpenAIBaseURL
			}
			oc := openai.DefaultConfig(p.APIKey)
			oc.BaseURL = strings.TrimRight(p.BaseURL, "/")
			oc.HTTPClient = sseWatcher{hc} // go-openai cannot tell a finished stream from a cut one
			r.providers[p.Name] = &provider{cfg: p, http: hc, openai: openai.NewClientWithConfig(oc)}
		case KindElevenLabs:
			if p.BaseURL == "" {
				p.BaseURL = DefaultElevenLabsBaseURL
			}
			p.BaseURL = strings.TrimRight(p.BaseURL, "/")
			r.providers[p.Name] = &provider{cfg: p, http: hc}
		default:
			errs = append(errs, fmt.Errorf("provider %q: unknown kind %q (want %q or %q)", p.Name, p.Kind, KindOpenAI, KindElevenLabs))
		}
	}

	for i, m := range cfg.Models {
		if m.ID == "" {
			errs = append(errs, fmt.Errorf("model #%d: empty id", i+1))
			continue
		}
		if _, dup := r.models[m.ID]; dup {
			errs = append(errs, fmt.Errorf("model %q: defined twice", m.ID))
			continue
		}
		if m.Name == "" {
			m.Name = m.ID
		}
		if m.MaxTokens == 0 {
			m.MaxTokens = DefaultMaxTokens
		}
		// Copy the slices: the caller's config must not alias the catalogue.
		m.Caps = slices.Clone(m.Caps)
		m.Plans = slices.Clone(m.Plans)
		m.Fallback = slices.Clone(m.Fallback)
		errs = append(errs, checkModel(m, r.providers, cfg.Providers)...)
		r.models[m.ID] = m
		r.order = append(r.order, m.ID)
	}

	for _, id := range r.order {
		for _, fb := range r.models[id].Fallback {
			if _, ok := r.models[fb]; !ok {
				errs = append(errs, fmt.Errorf("model %q: unknown fallback %q", id, fb))
			}
		}
	}
	errs = append(errs, findCycles(r.order, r.models)...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("ai config: %w", errors.Join(errs...))
	}

	for _, id := range r.order {
		r.chains[id] = chain(id, r.models)
	}
	return r, nil
}

// checkModel reports what is wrong with one model on its own.
func checkModel(m Model, providers map[string]*provider, declared []ProviderConfig) []error {
	var errs []error
	if len(m.Caps) == 0 {
		errs = append(errs, fmt.Errorf("model %q: no capabilities", m.ID))
	}
	for _, c := range m.Caps {
		switch c {
		case CapChat, CapVision, CapImage, CapTranscribe, CapSpeech:
		default:
			errs = append(errs, fmt.Errorf("model %q: unknown capability %q", m.ID, c))
		}
	}
	if m.Timeout < 0 {
		errs = append(errs, fmt.Errorf("model %q: negative timeout", m.ID))
	}
	if m.MaxTokens < 0 {
		errs = append(errs, fmt.Errorf("model %q: negative max tokens", m.ID))
	}
	if m.Price.InputPer1K < 0 || m.Price.OutputPer1K < 0 || m.Price.PerImage < 0 ||
		m.Price.PerAudioMinute < 0 || m.Price.Per1KChars < 0 {
		errs = append(errs, fmt.Errorf("model %q: negative price", m.ID))
	}
	p, ok := providers[m.Provider]
	if !ok {
		// A provider rejected for its own reasons is already reported.
		if !slices.ContainsFunc(declared, func(pc ProviderConfig) bool { return pc.Name == m.Provider }) {
			errs = append(errs, fmt.Errorf("model %q: unknown provider %q", m.ID, m.Provider))
		}
		return errs
	}
	if p.cfg.Kind == KindElevenLabs {
		for _, c := range m.Caps {
			if c != CapSpeech {
				errs = append(errs, fmt.Errorf("model %q: provider %q (elevenlabs) cannot do %q", m.ID, m.Provider, c))
			}
		}
		if m.Voice == "" {
			errs = append(errs, fmt.Errorf("model %q: elevenlabs needs a voice id", m.ID))
		}
	}
	return errs
}

// findCycles reports every fallback cycle once, as "a → b → a".
func findCycles(order []string, models map[string]Model) []error {
	const (
		unseen = iota
		active // on the current DFS path
		done
	)
	state := make(map[string]int)
	var errs []error
	var path []string
	var visit func(id string)
	visit = func(id string) {
		state[id] = active
		path = append(path, id)
		for _, fb := range models[id].Fallback {
			if _, ok := models[fb]; !ok {
				continue // reported as unknown
			}
			switch state[fb] {
			case active:
				start := slices.Index(path, fb)
				loop := append(slices.Clone(path[start:]), fb)
				errs = append(errs, fmt.Errorf("fallback cycle: %s", strings.Join(loop, " → ")))
			case unseen:
				visit(fb)
			}
		}
		path = path[:len(path)-1]
		state[id] = done
	}
	for _, id := range order {
		if state[id] == unseen {
			visit(id)
		}
	}
	return errs
}

// chain is id followed by its fallbacks, each followed by its own fallbacks,
// depth first, every model once. The config has no cycles at this point.
func chain(id string, models map[string]Model) []string {
	var out []string
	var walk func(string)
	walk = func(id string) {
		if slices.Contains(out, id) {
			return
		}
		out = append(out, id)
		for _, fb := range models[id].Fallback {
			walk(fb)
		}
	}
	walk(id)
	return out
}

// pooledClient is one provider's client: at most n connections to its host
// (a call past that waits for one instead of opening more sockets), and all
// of them kept idle between calls (net/http keeps two by default, so a
// busy provider would be re-dialled all the time).
func pooledClient(n int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxConnsPerHost = n
	t.MaxIdleConnsPerHost = n
	t.MaxIdleConns = 2 * n            // the provider's host, and where its images are downloaded from
	return &http.Client{Transport: t} // no client timeout: every call has its own context deadline
}

// Models returns the models with capability c that a user on plan may use, in
// configuration order.
func (r *Router) Models(c Capability, plan string) []Model {
	var out []Model
	for _, id := range r.order {
		m := r.models[id]
		if m.Can(c) && m.AllowedOn(plan) {
			out = append(out, cloneModel(m))
		}
	}
	return out
}

// FirstModel is Models(c, plan)[0] without copying the others: the model a
// user who chose none gets, looked up on every turn.
func (r *Router) FirstModel(c Capability, plan string) (Model, bool) {
	for _, id := range r.order {
		if m := r.models[id]; m.Can(c) && m.AllowedOn(plan) {
			return cloneModel(m), true
		}
	}
	return Model{}, false
}

// CountModels is len(Models(c, plan)) without copying them.
func (r *Router) CountModels(c Capability, plan string) int {
	n := 0
	for _, id := range r.order {
		if m := r.models[id]; m.Can(c) && m.AllowedOn(plan) {
			n++
		}
	}
	return n
}

// Model returns the model with id.
func (r *Router) Model(id string) (Model, bool) {
	m, ok := r.models[id]
	if !ok {
		return Model{}, false
	}
	return cloneModel(m), true
}

func cloneModel(m Model) Model {
	m.Caps = slices.Clone(m.Caps)
	m.Plans = slices.Clone(m.Plans)
	m.Fallback = slices.Clone(m.Fallback)
	return m
}
