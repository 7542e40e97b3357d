package handlers

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/locales"
	"github.com/valex-ai/valex/store"
)

// instantModels is a provider with no latency at all: it streams a fixed
// answer in a few deltas, so a benchmark measures only Valex's own work.
type instantModels struct {
	answer  []string
	clock   valex.Clock
	pricing *ai.Router
}

func (m *instantModels) ChatStream(_ context.Context, req ai.ChatRequest, onDelta func(string)) (ai.ChatResult, error) {
	text := ""
	for _, d := range m.answer {
		onDelta(d)
		text += d
	}
	mod, _ := m.pricing.Model(req.Model)
	u := ai.Usage{Model: req.Model, Capability: ai.CapChat, InputTokens: 100, OutputTokens: 20, At: m.clock.Now()}
	u.Cost = m.pricing.Cost(mod, u)
	return ai.ChatResult{Text: text, Usage: u, Tried: []string{req.Model}}, nil
}

func (m *instantModels) Image(context.Context, string, string) ([]byte, ai.Usage, error) {
	return nil, ai.Usage{}, ai.ErrNoModel
}

func (m *instantModels) Transcribe(context.Context, string, []byte, string) (string, ai.Usage, error) {
	return "", ai.Usage{}, ai.ErrNoModel
}

func (m *instantModels) Speech(context.Context, string, string) ([]byte, string, ai.Usage, error) {
	return nil, "", ai.Usage{}, ai.ErrNoModel
}

func (m *instantModels) Models(c ai.Capability, plan string) []ai.Model {
	return m.pricing.Models(c, plan)
}
func (m *instantModels) FirstModel(c ai.Capability, plan string) (ai.Model, bool) {
	return m.pricing.FirstModel(c, plan)
}
func (m *instantModels) CountModels(c ai.Capability, plan string) int {
	return m.pricing.CountModels(c, plan)
}
func (m *instantModels) Model(id string) (ai.Model, bool)   { return m.pricing.Model(id) }
func (m *instantModels) Cost(md ai.Model, u ai.Usage) int64 { return m.pricing.Cost(md, u) }

// nullOutbox accepts every call at once.
type nullOutbox struct {
	mu sync.Mutex
	id int
}

func (o *nullOutbox) Send(context.Context, bot.Message) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.id++
	return o.id, nil
}
func (o *nullOutbox) Edit(context.Context, int64, int, string, [][]bot.Button) error { return nil }
func (o *nullOutbox) EditKeyboard(context.Context, int64, int, [][]bot.Button) error { return nil }
func (o *nullOutbox) Delete(context.Context, int64, int) error                       { return nil }
func (o *nullOutbox) SendFile(context.Context, bot.FileMessage) (int, error)         { return 1, nil }
func (o *nullOutbox) Typing(context.Context, int64, int, string) error               { return nil }
func (o *nullOutbox) SendDraft(context.Context, bot.Draft) error                     { return nil }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkChatTurn is Valex's own cost of one chat turn with a provider
// that answers instantly: consent check, settings, context assembly from a
// 2,000-turn conversation trimmed to the budget, Markdown rendering and
// splitting, history and ledger written in one transaction (with its disk
// sync). cpu-µs/op is the process's CPU time per turn; ns/op is wall time,
// most of it waiting for the disk.
func BenchmarkChatTurn(b *testing.B) {
	db, err := store.Open(filepath.Join(b.TempDir(), "valex.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tr, err := locales.Load()
	if err != nil {
		b.Fatal(err)
	}
	router, err := ai.New(ai.Config{
		Providers: []ai.ProviderConfig{{Name: "p", Kind: ai.KindOpenAI, BaseURL: "http://127.0.0.1:1/v1"}},
		Models:    []ai.Model{{ID: "m", Provider: "p", Caps: []ai.Capability{ai.CapChat}, ContextTokens: 128000, Price: ai.Price{InputPer1K: 150, OutputPer1K: 600}}},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	models := &instantModels{pricing: router, clock: valex.SystemClock{},
		answer: []string{"Here is **the answer**", " with `code` and a list:\n\n", "- one\n- two\n\n", "That's all."}}
	h := &Handlers{Users: db, Tr: tr, CB: bot.NewSigner([]byte("x")), Clock: valex.SystemClock{}, Log: zerolog.Nop()}
	a := NewAI(h, AIDeps{Models: models, Store: db, Consent: storeConsent{db}, Out: &nullOutbox{},
		Options: AIOptions{EditInterval: time.Nanosecond}})
	defer a.Shutdown(time.Second)

	const uid = 42
	now := time.Now()
	if _, _, err := db.EnsureUser(valex.User{ID: uid, Nickname: "bench", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	if err := (storeConsent{db}).GrantAI(uid, now, "v"); err != nil {
		b.Fatal(err)
	}
	var turns []valex.Turn
	for i := range 2000 {
		text := fmt.Sprintf("turn %d: a question of moderate length about something or other", i)
		turns = append(turns, valex.Turn{Role: valex.TurnUser, Text: text, Tokens: turnTokens(text), At: now})
	}
	if err := db.SaveExchange(uid, 1, turns, nil); err != nil {
		b.Fatal(err)
	}
	r := &bot.Request{Update: &bot.Update{ChatID: uid, ChatType: bot.ChatPrivate, From: bot.From{ID: uid}}, Lang: "en"}
	in := turnInput{text: "what is the capital of France?", stored: "what is the capital of France?"}
	ctx := context.Background()

	cpu0 := cpuTime()
	for b.Loop() {
		if err := a.turn(ctx, r, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// firstDelta notes when each streamed answer delivered its first text.
type firstDelta struct {
	AIModels
	at chan time.Time
}

func (f *firstDelta) ChatStream(ctx context.Context, req ai.ChatRequest, onDelta func(string)) (ai.ChatResult, error) {
	first := true
	return f.AIModels.ChatStream(ctx, req, func(d string) {
		if first {
			first = false
			f.at <- time.Now()
		}
		onDelta(d)
	})
}

// firstVisible measures, over n answers streamed at 50 tokens a second with
// Telegram's default pace, how long after the first token the user sees text.
func firstVisible(tb testing.TB, n int) []time.Duration {
	fd := &firstDelta{at: make(chan time.Time, 1)}
	x := newAIHarness(tb, func(c *harnessConfig) {
		c.pace = bot.DefaultPace()
		c.opts.EditInterval = 0
		c.models = func(m AIModels) AIModels { fd.AIModels = m; return fd }
	})
	x.emu.SetRecord(false)
	var delays []time.Duration
	for i := range n {
		// A fresh chat each time: a user who has just read an answer has
		// Telegram's burst available again.
		u := bottest.User{ID: int64(10_000 + i), Username: fmt.Sprintf("u%d", i), FirstName: "U", LanguageCode: "en"}
		x.register(u, true)
		x.aisv.Script("chat-a-name", aitest.Step{Text: words(15), ChunkSize: 4, TokenDelay: 20 * time.Millisecond})
		events, stop := x.emu.Subscribe()
		x.emu.SendText(bottest.PrivateChat(u), u, "hello")
		var shown time.Time
		for e := range events {
			if e.Method == "sendMessage" && e.ChatID == u.ID && e.OK() {
				shown = e.At
				break
			}
		}
		stop()
		delays = append(delays, shown.Sub(<-fd.at))
		x.idle()
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	return delays
}

// BenchmarkFirstVisibleText reports the delay between the provider's first
// token and the first text in Telegram (median and worst), through the real
// outbox with default pacing.
func BenchmarkFirstVisibleText(b *testing.B) {
	d := firstVisible(b, max(b.N, 5))
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(d[len(d)-1].Microseconds())/1000, "ms-max")
}
