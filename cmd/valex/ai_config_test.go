package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/handlers"
	"github.com/valex-ai/valex/locales"
	"github.com/valex-ai/valex/store"
)

// aiFile is the part of the configuration file this file owns.
type aiFile struct {
	AI AIConfig `toml:"ai"`
}

func decodeAI(t *testing.T, src string) AIConfig {
	t.Helper()
	var f aiFile
	md, err := toml.Decode(src, &f)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("unknown keys %v", u)
	}
	return f.AI
}

func TestAIExampleSectionIsValid(t *testing.T) {
	src, err := os.ReadFile("testdata/ai.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	c := decodeAI(t, string(src))
	if problems := c.load(envFrom(nil)); len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	if len(c.Models) != 7 || len(c.Modes) != 3 || *c.ImageConfirmAbove != 3 {
		t.Errorf("decoded %d models, %d modes, confirm above %v", len(c.Models), len(c.Modes), *c.ImageConfirmAbove)
	}
	if m := c.routerConfig().Models[0]; m.Price.InputPer1K != 15_000 || m.Price.OutputPer1K != 60_000 {
		t.Errorf("gpt-4o-mini price = %+v micro-credits", m.Price)
	}
}

func TestAIDefaultsAndEnvironment(t *testing.T) {
	var c AIConfig
	problems := c.load(envFrom(map[string]string{
		"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
		"ELEVENLABS_API_KEY": "xi-env", "OPENROUTER_API_KEY": "or-env",
	}))
	if len(problems) > 0 {
		t.Fatalf("the default catalogue has problems: %v", problems)
	}
	if len(c.Models) != len(DefaultAIConfig().Models) || len(c.Modes) != 4 || c.Timeout.Duration != time.Minute {
		t.Errorf("defaults not applied: %d models, %d modes, timeout %v", len(c.Models), len(c.Modes), c.Timeout)
	}
	p := c.Providers
	if p["openai"].APIKey != "sk-env" || p["openai"].BaseURL != "http://127.0.0.1:9/v1" ||
		p["elevenlabs"].APIKey != "xi-env" || p["openrouter"].APIKey != "or-env" {
		t.Errorf("providers = %+v", p)
	}
	// The catalogue gives every capability to the free plan.
	r, err := ai.New(c.routerConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range []ai.Capability{ai.CapChat, ai.CapVision, ai.CapImage, ai.CapTranscribe, ai.CapSpeech} {
		if len(r.Models(cp, "free")) == 0 {
			t.Errorf("no %s model on the free plan", cp)
		}
	}
	if got := r.Models(ai.CapChat, "free")[0].ID; got != "gpt-4o-mini" {
		t.Errorf("default chat model %s", got)
	}
}

// A file that lists models replaces the catalogue whole: no default entry
// leaks into it (BurntSushi/toml would merge into pre-filled slices).
func TestAIFileReplacesTheCatalogue(t *testing.T) {
	c := decodeAI(t, `
[ai.providers.local]
kind = "openai"
base_url = "http://localhost:11434/v1"
[[ai.models]]
id = "llama"
provider = "local"
caps = ["chat"]
`)
	if problems := c.load(envFrom(nil)); len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	if len(c.Models) != 1 || len(c.Providers) != 1 || c.Models[0].ID != "llama" {
		t.Errorf("catalogue = %+v, providers %v", c.Models, c.Providers)
	}
}

func TestAIConfigReportsEveryProblem(t *testing.T) {
	c := decodeAI(t, `
[ai]
image_confirm_above = -1
[ai.providers.p]
kind = "openai"
base_url = "ftp://example.com"
[[ai.models]]
id = "m"
provider = "p"
caps = ["chat", "telepathy"]
fallback = ["ghost"]
prices = { input_per_1k = -1 }
[[ai.modes]]
id = "Bad Id"
prompt = "x"
[[ai.modes]]
id = "empty"
prompt = " "
`)
	problems := c.load(envFrom(nil))
	var all strings.Builder
	for _, p := range problems {
		all.WriteString(p.Error() + "\n")
	}
	for _, want := range []string{"image_confirm_above", "ftp://example.com", "telepathy", `unknown fallback "ghost"`, "negative price", `"Bad Id"`, `mode "empty": empty prompt`} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("problems lack %q:\n%s", want, all.String())
		}
	}
}

// The demo configuration runs the whole aggregator against the AI emulator:
// wireAI over the real bot core.
func TestWireAIWithTheDemoConfig(t *testing.T) {
	emu, err := bottest.New(bottest.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	aisv := aitest.New()
	t.Cleanup(aisv.Close)

	log := &syncBuffer{}
	cfg := Defaults()
	cfg.Log = Log{Level: "debug", Format: "json"}
	m := NewMain(cfg, log)
	db, err := store.Open(filepath.Join(t.TempDir(), "valex.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.DB = db
	ctx, cancel := context.WithCancel(context.Background())
	client, err := bot.NewClient(ctx, emu.URL(), emu.Token(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Outbox = bot.NewOutbox(client, bot.OutboxConfig{Pace: bot.PaceConfig{Global: 1000, PrivatePerSec: 1000, GroupPerMinute: 60000, Burst: 100}}, m.Log)
	signer := bot.NewSigner([]byte(testToken))
	m.Router = bot.NewRouter(signer)
	tr, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	h := &handlers.Handlers{Users: db, Out: m.Outbox, Tr: tr, CB: signer, Clock: m.Clock, Menu: m.Router, Log: m.Log}
	m.Router.Use(bot.Recover(), bot.Identity(h.Lang, h.Roles.Of))
	h.Register(m.Router)
	a, err := wireAI(m, h, demoAIConfig(aisv.URL()), "demo-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"new", "model", "mode", "image", "tts", "voice", "usage", "cancel"} {
		if _, ok := m.Router.Has(cmd); !ok {
			t.Errorf("/%s is not routed", cmd)
		}
	}
	m.Bot = bot.New(client, m.Outbox, db, m.Router, tr, m.Clock, m.Log, bot.Config{PollTimeout: time.Second, DoneFlush: 5 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- m.Bot.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		aiStopped := make(chan struct{})
		go func() { a.Shutdown(5 * time.Second); close(aiStopped) }() // alongside the bot, as in valex run
		<-done
		<-aiStopped
		db.Close()
		if strings.Contains(log.String(), "what is Go") {
			t.Error("a prompt reached the log")
		}
	})

	chat := bottest.PrivateChat(alice)
	wait := func(match func(bottest.Event) bool) bottest.Event {
		t.Helper()
		wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer wcancel()
		e, err := emu.WaitFor(wctx, match)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	emu.SendText(chat, alice, "/start")
	wait(func(e bottest.Event) bool { return strings.Contains(e.Text, "Welcome") })
	emu.SendText(chat, alice, "what is Go?")
	ask := wait(func(e bottest.Event) bool { return strings.Contains(e.Text, "demo-1") })
	if aisv.Count() != 0 {
		t.Fatal("an AI request before consent")
	}
	emu.PressButton(chat, alice, ask.MessageID, ask.Keyboard[0][0].Data)
	wait(func(e bottest.Event) bool { return strings.Contains(e.Text, "consent is recorded") })
	cs, _, _ := db.ConsentEvents(alice.ID)
	if len(cs) != 1 || cs[0].Kind != valex.ConsentAITransfer || cs[0].PolicyVersion != "demo-1" || cs[0].Source != "first_chat" {
		t.Errorf("consent events = %+v", cs)
	}
	emu.SendText(chat, alice, "what is Go?")
	wait(func(e bottest.Event) bool { return e.OK() && e.Text == "echo: what is Go?" })
	if r := aisv.Requests(); len(r) != 1 || r[0].Model != "gpt-4o-mini" || !r[0].Auth {
		t.Errorf("AI requests = %+v", r)
	}
}
