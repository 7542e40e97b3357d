package main

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/handlers"
	"github.com/valex-ai/valex/store"
)

// AIConfig is the [ai] section: the providers, the model catalogue and the
// system-prompt presets. An empty catalogue (no [[ai.models]]) means the
// default one (DefaultAIConfig); a file that lists models replaces it whole.
//
// Prices are in credits (the defaults price one credit at one US cent of
// provider cost); the AI router keeps them as micro-credits.
type AIConfig struct {
	Timeout           Duration              `toml:"timeout"`             // per call to one model, default 60s
	AnswerTimeout     Duration              `toml:"answer_timeout"`      // a whole streamed answer, fallbacks included, default 120s
	MaxMessages       int                   `toml:"max_messages"`        // most Telegram messages of one answer, default 8
	ImageConfirmAbove *float64              `toml:"image_confirm_above"` // credits; pricier images ask first; default 3
	HistoryTokens     int                   `toml:"history_tokens"`      // most history tokens sent with a turn, default 8000
	HistoryTurns      int                   `toml:"history_turns"`       // most earlier messages sent with a turn, default 40
	AnswerTokens      int                   `toml:"answer_tokens"`       // context kept free for the answer, default 1024
	EditInterval      Duration              `toml:"edit_interval"`       // least time between edits of a streamed answer, default 1s
	DraftInterval     Duration              `toml:"draft_interval"`      // least time between drafts of an answer in a private chat, default 300ms
	ConsentHold       Duration              `toml:"consent_hold"`        // how long a message waits for the AI consent it asked for, default 10m
	StoreReasoning    bool                  `toml:"store_reasoning"`     // keep a reasoning model's reasoning in the history; default false: only shown
	MaxConcurrent     int                   `toml:"max_concurrent"`      // most AI calls at once across all users, and connections per provider; default 16
	Providers         map[string]AIProvider `toml:"providers"`
	Models            []AIModel             `toml:"models"`
	Modes             []AIMode              `toml:"modes"`

	// Documents sent as context (handlers/documents.go).
	DocumentMaxMB    int      `toml:"document_max_mb"`    // largest document read, default 10 (Telegram lets bots download 20)
	DocumentMaxPages int      `toml:"document_max_pages"` // most PDF pages, default 50
	DocumentKeep     Duration `toml:"document_keep"`      // how long a document sent without a question waits, default 1h
}

// AIProvider is one endpoint: [ai.providers.NAME].
type AIProvider struct {
	Kind    string `toml:"kind"`     // openai (any OpenAI-compatible endpoint) or elevenlabs
	BaseURL string `toml:"base_url"` // OpenAI-compatible: with the version path, e.g. https://openrouter.ai/api/v1
	// APIKeyEnv names the environment variable holding the key (defaults:
	// OPENAI_API_KEY for "openai", ELEVENLABS_API_KEY for "elevenlabs").
	APIKeyEnv string `toml:"api_key_env"`
	APIKey    string `toml:"api_key"` // better: api_key_env
}

// AIModel is one catalogue entry: [[ai.models]].
type AIModel struct {
	ID            string   `toml:"id"`
	Provider      string   `toml:"provider"`
	Name          string   `toml:"name"` // the provider's model name, default id
	Caps          []string `toml:"caps"` // chat, vision, image, transcribe, speech
	Prices        AIPrices `toml:"prices"`
	Plans         []string `toml:"plans"`    // plans that may use it; empty: all
	Fallback      []string `toml:"fallback"` // model ids tried in order when it fails
	ContextTokens int      `toml:"context_tokens"`
	Voice         string   `toml:"voice"`   // speech: OpenAI voice or ElevenLabs voice_id
	Timeout       Duration `toml:"timeout"` // overrides [ai] timeout
	// MaxTokens is the most tokens of an answer (max_tokens), default 4096.
	MaxTokens int `toml:"max_tokens"`
	// Description is one line shown in /model; Descriptions has it in
	// other languages by language code: descriptions = { ru = "..." }.
	Description  string            `toml:"description"`
	Descriptions map[string]string `toml:"descriptions"`
}

// maxModelDescription is the longest description of a model: one line of
// the /model screen.
const maxModelDescription = 120

// AIPrices are in credits.
type AIPrices struct {
	InputPer1K     float64 `toml:"input_per_1k"`
	OutputPer1K    float64 `toml:"output_per_1k"`
	PerImage       float64 `toml:"per_image"`
	PerAudioMinute float64 `toml:"per_audio_minute"`
	Per1KChars     float64 `toml:"per_1k_chars"`
}

// AIMode is a system-prompt preset: [[ai.modes]]. The first is the default.
type AIMode struct {
	ID     string `toml:"id"`    // a-z, 0-9, _ and -; named by the locale key ai.mode.ID when there is one
	Title  string `toml:"title"` // shown when the locales have no name for the id
	Prompt string `toml:"prompt"`
}

var modeID = regexp.MustCompile(`^[a-z0-9_-]{1,24}$`)

// DefaultAIConfig is the catalogue used when the configuration lists no
// models: OpenAI chat, vision, images, transcription and speech, a DeepSeek
// model through OpenRouter, and an ElevenLabs voice.
func DefaultAIConfig() AIConfig {
	confirm := 3.0
	return AIConfig{
		Timeout:           Duration{60 * time.Second},
		AnswerTimeout:     Duration{2 * time.Minute},
		MaxMessages:       8,
		ImageConfirmAbove: &confirm,
		HistoryTokens:     8000,
		HistoryTurns:      40,
		AnswerTokens:      1024,
		EditInterval:      Duration{time.Second},
		DocumentMaxMB:     10,
		DocumentMaxPages:  50,
		DocumentKeep:      Duration{time.Hour},
		DraftInterval:     Duration{300 * time.Millisecond},
		ConsentHold:       Duration{10 * time.Minute},
		MaxConcurrent:     handlers.DefaultMaxConcurrent,
		Providers: map[string]AIProvider{
			"openai":     {Kind: ai.KindOpenAI, BaseURL: ai.DefaultOpenAIBaseURL, APIKeyEnv: "OPENAI_API_KEY"},
			"openrouter": {Kind: ai.KindOpenAI, BaseURL: "https://openrouter.ai/api/v1", APIKeyEnv: "OPENROUTER_API_KEY"},
			"elevenlabs": {Kind: ai.KindElevenLabs, BaseURL: ai.DefaultElevenLabsBaseURL, APIKeyEnv: "ELEVENLABS_API_KEY"},
		},
		Models: []AIModel{
			{ID: "gpt-4o-mini", Provider: "openai", Caps: []string{"chat", "vision"}, ContextTokens: 128000,
				Prices: AIPrices{InputPer1K: 0.015, OutputPer1K: 0.06}, Fallback: []string{"deepseek-chat"}},
			{ID: "gpt-4o", Provider: "openai", Caps: []string{"chat", "vision"}, ContextTokens: 128000,
				Prices: AIPrices{InputPer1K: 0.25, OutputPer1K: 1}, Plans: []string{"pro"}, Fallback: []string{"gpt-4o-mini"}},
			{ID: "deepseek-chat", Provider: "openrouter", Name: "deepseek/deepseek-chat", Caps: []string{"chat"}, ContextTokens: 64000,
				Prices: AIPrices{InputPer1K: 0.027, OutputPer1K: 0.11}},
			{ID: "gpt-image-1", Provider: "openai", Caps: []string{"image"}, Prices: AIPrices{PerImage: 4.2, InputPer1K: 0.5},
				Plans: []string{"pro"}, Fallback: []string{"dall-e-3"}, Timeout: Duration{3 * time.Minute}},
			{ID: "dall-e-3", Provider: "openai", Caps: []string{"image"}, Prices: AIPrices{PerImage: 4}, Timeout: Duration{2 * time.Minute}},
			{ID: "whisper-1", Provider: "openai", Caps: []string{"transcribe"}, Prices: AIPrices{PerAudioMinute: 0.6}, Timeout: Duration{2 * time.Minute}},
			{ID: "elevenlabs-rachel", Provider: "elevenlabs", Name: "eleven_multilingual_v2", Caps: []string{"speech"},
				Voice: "21m00Tcm4TlvDq8ikWAM", Prices: AIPrices{Per1KChars: 30}, Plans: []string{"pro"}, Fallback: []string{"tts-1"}},
			{ID: "tts-1", Provider: "openai", Caps: []string{"speech"}, Voice: "alloy", Prices: AIPrices{Per1KChars: 1.5}},
		},
		Modes: []AIMode{
			{ID: "assistant", Prompt: "You are a helpful, concise assistant. Answer in the language the user writes in. Use Markdown for structure and code."},
			{ID: "translator", Prompt: "You are a professional translator. Translate the user's text into English if it is in another language, otherwise into Russian. Reply with the translation only, keeping the meaning, tone and formatting."},
			{ID: "coder", Prompt: "You are a senior software engineer. Give correct, idiomatic code in fenced code blocks with the language named, and explain briefly. Answer in the language the user writes in."},
			{ID: "writer", Prompt: "You are an editor. Improve the user's text for clarity, grammar and style without changing its meaning, and reply with the improved text. Answer in the language the user writes in."},
		},
	}
}

// demoAIConfig points every provider of the default catalogue at an AI
// emulator (ai/aitest) at url, with placeholder keys.
func demoAIConfig(url string) AIConfig {
	c := DefaultAIConfig()
	url = strings.TrimRight(url, "/")
	for name, p := range c.Providers {
		p.APIKeyEnv = ""
		if p.Kind == ai.KindElevenLabs {
			p.BaseURL, p.APIKey = url, "xi-demo"
		} else {
			p.BaseURL, p.APIKey = url+"/v1", "sk-demo"
		}
		c.Providers[name] = p
	}
	return c
}

// withDefaults fills what the file left out. Lists are defaulted whole: a
// file that lists models or modes replaces the default ones.
func (c AIConfig) withDefaults() AIConfig {
	d := DefaultAIConfig()
	c.Timeout = cmp.Or(c.Timeout, d.Timeout)
	c.AnswerTimeout = cmp.Or(c.AnswerTimeout, d.AnswerTimeout)
	c.MaxMessages = cmp.Or(c.MaxMessages, d.MaxMessages)
	c.ImageConfirmAbove = cmp.Or(c.ImageConfirmAbove, d.ImageConfirmAbove)
	c.HistoryTokens = cmp.Or(c.HistoryTokens, d.HistoryTokens)
	c.HistoryTurns = cmp.Or(c.HistoryTurns, d.HistoryTurns)
	c.AnswerTokens = cmp.Or(c.AnswerTokens, d.AnswerTokens)
	c.EditInterval = cmp.Or(c.EditInterval, d.EditInterval)
	c.DocumentMaxMB = cmp.Or(c.DocumentMaxMB, d.DocumentMaxMB)
	c.DocumentMaxPages = cmp.Or(c.DocumentMaxPages, d.DocumentMaxPages)
	c.DocumentKeep = cmp.Or(c.DocumentKeep, d.DocumentKeep)
	c.ConsentHold = cmp.Or(c.ConsentHold, d.ConsentHold)
	c.DraftInterval = cmp.Or(c.DraftInterval, d.DraftInterval)
	c.MaxConcurrent = cmp.Or(c.MaxConcurrent, d.MaxConcurrent)
	if len(c.Models) == 0 {
		c.Models = d.Models
		providers := d.Providers
		for name, p := range c.Providers { // the file may still set endpoints and keys
			providers[name] = p
		}
		c.Providers = providers
	}
	if len(c.Modes) == 0 {
		c.Modes = d.Modes
	}
	providers := make(map[string]AIProvider, len(c.Providers))
	for name, p := range c.Providers {
		if p.APIKeyEnv == "" && p.APIKey == "" {
			switch name {
			case "openai":
				p.APIKeyEnv = "OPENAI_API_KEY"
			case "elevenlabs":
				p.APIKeyEnv = "ELEVENLABS_API_KEY"
			}
		}
		providers[name] = p
	}
	c.Providers = providers
	return c
}

// load completes the section after the file was read: defaults, keys and
// base URLs from the environment, then every problem found. Call it from
// LoadConfig.
func (c *AIConfig) load(getenv func(string) string) []error {
	*c = c.withDefaults()
	overrides := map[string][2]string{ // provider → base URL variable, key variable
		"openai":     {"OPENAI_BASE_URL", "OPENAI_API_KEY"},
		"elevenlabs": {"ELEVENLABS_BASE_URL", "ELEVENLABS_API_KEY"},
	}
	for name, p := range c.Providers {
		if o, ok := overrides[name]; ok {
			if v := getenv(o[0]); v != "" {
				p.BaseURL = v
			}
			if p.APIKey == "" && p.APIKeyEnv == "" {
				p.APIKeyEnv = o[1]
			}
		}
		if p.APIKeyEnv != "" {
			if v := getenv(p.APIKeyEnv); v != "" {
				p.APIKey = v
			}
		}
		c.Providers[name] = p
	}
	return c.validate()
}

// validate reports every problem of a completed section.
func (c AIConfig) validate() []error {
	var p []error
	if c.Timeout.Duration < 0 || c.EditInterval.Duration < 0 {
		p = append(p, errors.New("ai: timeout and edit_interval must not be negative"))
	}
	if c.ImageConfirmAbove != nil && *c.ImageConfirmAbove < 0 {
		p = append(p, errors.New("ai image_confirm_above: must not be negative"))
	}
	if c.HistoryTokens < 0 || c.AnswerTokens < 0 {
		p = append(p, errors.New("ai: history_tokens and answer_tokens must not be negative"))
	}
	if d := c.AnswerTimeout.Duration; d < 10*time.Second || d > 30*time.Minute {
		p = append(p, fmt.Errorf("ai answer_timeout %s: must be between 10s and 30m", c.AnswerTimeout))
	}
	intRange(&p, "ai max_messages", c.MaxMessages, 1, 50)
	intRange(&p, "ai history_turns", c.HistoryTurns, 2, 10_000)
	intRange(&p, "ai document_max_mb", c.DocumentMaxMB, 1, 20) // 20 MB: the most a bot may download
	intRange(&p, "ai document_max_pages", c.DocumentMaxPages, 1, 2000)
	if d := c.DocumentKeep.Duration; d < time.Minute || d > 24*time.Hour {
		p = append(p, fmt.Errorf("ai document_keep %s: must be between 1m and 24h", c.DocumentKeep))
	}
	// Drafts cost no message budget, but each is a call: faster than 50ms
	// only burns CPU, slower than 10s is no longer streaming.
	if d := c.ConsentHold.Duration; d < time.Minute || d > 24*time.Hour {
		p = append(p, fmt.Errorf("ai consent_hold %s: must be between 1m and 24h", c.ConsentHold))
	}
	if d := c.DraftInterval.Duration; d < 50*time.Millisecond || d > 10*time.Second {
		p = append(p, fmt.Errorf("ai draft_interval %s: must be between 50ms and 10s", c.DraftInterval))
	}
	intRange(&p, "ai max_concurrent", c.MaxConcurrent, 1, 10_000)
	for _, m := range c.Models {
		intRange(&p, fmt.Sprintf("ai model %s max_tokens", m.ID), m.MaxTokens, 0, 1_000_000) // 0: the router's default
		descs := map[string]string{"": m.Description}
		for lang, d := range m.Descriptions {
			descs[lang] = d
		}
		for lang, d := range descs {
			if n := utf8.RuneCountInString(d); n > maxModelDescription || strings.ContainsAny(d, "\r\n") {
				p = append(p, fmt.Errorf("ai model %s description %s: one line of at most %d characters (has %d)", m.ID, lang, maxModelDescription, n))
			}
		}
	}
	for name, pr := range c.Providers {
		if pr.BaseURL != "" && !strings.HasPrefix(pr.BaseURL, "http://") && !strings.HasPrefix(pr.BaseURL, "https://") {
			p = append(p, fmt.Errorf("ai provider %q base_url %q: must start with http:// or https://", name, pr.BaseURL))
		}
	}
	seen := map[string]bool{}
	for i, m := range c.Modes {
		switch {
		case !modeID.MatchString(m.ID):
			p = append(p, fmt.Errorf("ai mode #%d: id %q must be 1-24 of a-z, 0-9, _ and -", i+1, m.ID))
		case seen[m.ID]:
			p = append(p, fmt.Errorf("ai mode %q: defined twice", m.ID))
		case strings.TrimSpace(m.Prompt) == "":
			p = append(p, fmt.Errorf("ai mode %q: empty prompt", m.ID))
		}
		seen[m.ID] = true
	}
	if _, err := ai.New(c.routerConfig(), nil); err != nil {
		p = append(p, err)
	}
	return p
}

func microCredits(credits float64) int64 { return int64(math.Round(credits * ai.MicroCredits)) }

// routerConfig is the section as the AI router takes it.
func (c AIConfig) routerConfig() ai.Config {
	var rc ai.Config
	rc.Timeout = c.Timeout.Duration
	rc.AnswerTimeout = c.AnswerTimeout.Duration
	rc.MaxConns = c.MaxConcurrent // a job makes one call at a time
	names := make([]string, 0, len(c.Providers))
	for name := range c.Providers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := c.Providers[name]
		rc.Providers = append(rc.Providers, ai.ProviderConfig{Name: name, Kind: p.Kind, BaseURL: p.BaseURL, APIKey: p.APIKey})
	}
	for _, m := range c.Models {
		caps := make([]ai.Capability, len(m.Caps))
		for i, c := range m.Caps {
			caps[i] = ai.Capability(c)
		}
		rc.Models = append(rc.Models, ai.Model{
			ID: m.ID, Provider: m.Provider, Name: m.Name, Caps: caps,
			Price: ai.Price{
				InputPer1K: microCredits(m.Prices.InputPer1K), OutputPer1K: microCredits(m.Prices.OutputPer1K),
				PerImage: microCredits(m.Prices.PerImage), PerAudioMinute: microCredits(m.Prices.PerAudioMinute),
				Per1KChars: microCredits(m.Prices.Per1KChars),
			},
			Plans: m.Plans, Fallback: m.Fallback, ContextTokens: m.ContextTokens, Voice: m.Voice, Timeout: m.Timeout.Duration,
			MaxTokens: m.MaxTokens, Description: m.Description, Descriptions: m.Descriptions,
		})
	}
	return rc
}

// aiConsent answers the AI handlers' consent questions from the store's
// consent log (valex.ConsentEvent).
type aiConsent struct{ db *store.DB }

func (c aiConsent) CanUseAI(userID int64) (bool, error) {
	return c.db.AIAllowed(userID) // cached until a consent changes (store/ai_allowed.go)
}

func (c aiConsent) GrantAI(userID int64, at time.Time, policyVersion string) error {
	return c.db.AddConsent(valex.ConsentEvent{UserID: userID, Kind: valex.ConsentAITransfer, Granted: true,
		At: at, PolicyVersion: policyVersion, Source: "first_chat"})
}

// wireAI builds the AI router from cfg (the [ai] section) and routes the
// aggregator's commands on m.Router; call it after Handlers.Register.
// policyVersion is the privacy policy version consents are given to while
// none was published through the bot. Shut the result down after the bot
// stops and before the store closes.
func wireAI(m *Main, h *handlers.Handlers, cfg AIConfig, policyVersion string) (*handlers.AI, error) {
	c := cfg.withDefaults()
	router, err := ai.New(c.routerConfig(), m.Clock)
	if err != nil {
		return nil, fmt.Errorf("wire ai: %w", err)
	}
	for name, p := range c.Providers {
		if p.APIKey == "" && p.APIKeyEnv != "" {
			m.Log.Warn().Str("provider", name).Str("env", p.APIKeyEnv).Msg("ai provider has no api key: its models will fail")
		}
	}
	modes := make([]handlers.Mode, len(c.Modes))
	for i, md := range c.Modes {
		modes[i] = handlers.Mode{ID: md.ID, Title: md.Title, Prompt: md.Prompt}
	}
	db := m.DB
	plans := m.Config.Payments.Plans()
	a := handlers.NewAI(h, handlers.AIDeps{
		Wallets: db,
		Models:  meteredModels{router, m.Monitor}, // calls by provider, model and outcome (monitoring.go)
		Store:   db,
		Consent: aiConsent{db},
		Out:     m.Outbox,
		Files:   m.Outbox.Client(),
		Options: handlers.AIOptions{
			Modes:             modes,
			ImageConfirmAbove: microCredits(*c.ImageConfirmAbove),
			HistoryTokens:     c.HistoryTokens,
			HistoryTurns:      c.HistoryTurns,
			AnswerTokens:      c.AnswerTokens,
			EditInterval:      c.EditInterval.Duration,
			DraftInterval:     c.DraftInterval.Duration,
			MaxMessages:       c.MaxMessages,
			Documents: handlers.DocumentOptions{
				MaxBytes: int64(c.DocumentMaxMB) << 20,
				MaxPages: c.DocumentMaxPages,
				Keep:     c.DocumentKeep.Duration,
			},
			StoreReasoning: c.StoreReasoning,
			MaxConcurrent:  c.MaxConcurrent,
			PolicyVersion: func() string {
				if p, ok, err := db.LatestPolicyVersion(); err == nil && ok {
					return p.Version
				}
				return policyVersion
			},
			BotUsername: m.Outbox.Client().Self().Username,
			ConsentHold: c.ConsentHold.Duration,
			// Every call is metered against the user's plan allowance and
			// bought balance (payments_config.go).
			Plans:        &plans,
			CheaperModel: m.Config.Payments.CheaperModel,
			Plan: func(userID int64) string {
				w, err := db.Wallet(userID)
				if err != nil {
					return valex.PlanFree
				}
				return w.PlanOf(m.Clock.Now())
			},
		},
	})
	a.Register(m.Router)
	return a, nil
}
