package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/bot/tghtml"
	"github.com/valex-ai/valex/locales"
	"github.com/valex-ai/valex/store"
)

// The AI aggregator end to end: the real bot core (poller, dispatcher,
// router, paced outbox) over the Bot API emulator, the real AI router over
// the AI emulator, and a real bbolt store.

const aiTestToken = "123456789:TEST-emulator-token-abcdefghijkl"

var (
	ann  = bottest.User{ID: 4001, Username: "ann", FirstName: "Ann", LanguageCode: "en"}
	bob  = bottest.User{ID: 4002, Username: "bob", FirstName: "Bob", LanguageCode: "en"}
	vera = bottest.User{ID: 4003, Username: "vera", FirstName: "Вера", LanguageCode: "ru"}
)

// testModels: chat-a falls back to chat-b; chat-pro is for another plan.
func testModels() []ai.Model {
	return []ai.Model{
		{ID: "chat-a", Provider: "emu", Name: "chat-a-name", Caps: []ai.Capability{ai.CapChat},
			Price: ai.Price{InputPer1K: 1000, OutputPer1K: 2000}, Fallback: []string{"chat-b"}, ContextTokens: 100_000,
			Timeout: 2 * time.Second},
		{ID: "chat-b", Provider: "emu", Name: "chat-b-name", Caps: []ai.Capability{ai.CapChat},
			Price: ai.Price{InputPer1K: 500, OutputPer1K: 500}, ContextTokens: 100_000},
		{ID: "chat-pro", Provider: "emu", Caps: []ai.Capability{ai.CapChat}, Plans: []string{"pro"}},
		{ID: "seer", Provider: "emu", Caps: []ai.Capability{ai.CapChat, ai.CapVision}, Price: ai.Price{InputPer1K: 100}},
		{ID: "painter", Provider: "emu", Caps: []ai.Capability{ai.CapImage}, Price: ai.Price{PerImage: 5 * ai.MicroCredits}},
		{ID: "ear", Provider: "emu", Caps: []ai.Capability{ai.CapTranscribe}, Price: ai.Price{PerAudioMinute: 6000}},
		{ID: "mouth", Provider: "emu", Caps: []ai.Capability{ai.CapSpeech}, Voice: "nova", Price: ai.Price{Per1KChars: 15000}},
	}
}

var testModes = []Mode{
	{ID: "assistant", Prompt: "PROMPT-assistant"},
	{ID: "translator", Prompt: "PROMPT-translator"},
	{ID: "custom", Title: "Pirate", Prompt: "PROMPT-pirate"},
}

// storeConsent is cmd/valex's adapter over the store's consent log.
type storeConsent struct{ db *store.DB }

func (c storeConsent) CanUseAI(userID int64) (bool, error) {
	s, err := c.db.ConsentState(userID)
	return valex.CanUseAI(s), err
}

func (c storeConsent) GrantAI(userID int64, at time.Time, v string) error {
	return c.db.AddConsent(valex.ConsentEvent{UserID: userID, Kind: valex.ConsentAITransfer, Granted: true, At: at, PolicyVersion: v, Source: "first_chat"})
}

// syncBuffer collects log lines from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harnessConfig struct {
	pace    bot.PaceConfig
	opts    AIOptions
	models  func(AIModels) AIModels // wraps the router
	router  func(*ai.Config)        // tunes the router's configuration
	secrets []string                // must never reach the log
	// wire adds more routes (the privacy desk, say) after the AI's.
	wire func(h *Handlers, rt *bot.Router, a *AI)
	// noDrafts: a Bot API without sendMessageDraft, so that private chats
	// stream by edits (for the tests of the edit loop).
	noDrafts bool
}

type aiHarness struct {
	t    testing.TB
	emu  *bottest.Server
	aisv *aitest.Server
	db   *store.DB
	ai   *AI
	bot  *bot.Bot
	log  *syncBuffer
}

var fastTestPace = bot.PaceConfig{Global: 1000, PrivatePerSec: 1000, GroupPerMinute: 60000, Burst: 100}

func newAIHarness(tb testing.TB, tweak func(*harnessConfig)) *aiHarness {
	tb.Helper()
	hc := harnessConfig{
		pace: fastTestPace,
		opts: AIOptions{
			Modes: testModes, ImageConfirmAbove: 3 * ai.MicroCredits, EditInterval: 50 * time.Millisecond,
			GroupEditInterval: 50 * time.Millisecond, PolicyVersion: func() string { return "2025-01" },
		},
	}
	if tweak != nil {
		tweak(&hc)
	}
	emu, err := bottest.New(bottest.Options{Token: aiTestToken, NoDrafts: hc.noDrafts})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { emu.Close() })
	aisv := aitest.New()
	tb.Cleanup(aisv.Close)

	db, err := store.Open(filepath.Join(tb.TempDir(), "valex.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tr, err := locales.Load()
	if err != nil {
		tb.Fatal(err)
	}
	rc := ai.Config{
		Providers: []ai.ProviderConfig{{Name: "emu", Kind: ai.KindOpenAI, BaseURL: aisv.URL() + "/v1", APIKey: "sk-test-SECRET-key"}},
		Models:    testModels(),
		Timeout:   30 * time.Second,
	}
	if hc.router != nil {
		hc.router(&rc)
	}
	router, err := ai.New(rc, valex.SystemClock{})
	if err != nil {
		tb.Fatal(err)
	}
	var models AIModels = router
	if hc.models != nil {
		models = hc.models(router)
	}

	ctx, cancel := context.WithCancel(context.Background())
	client, err := bot.NewClient(ctx, emu.URL(), emu.Token(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	logBuf := &syncBuffer{}
	log := zerolog.New(logBuf).Level(zerolog.DebugLevel)
	out := bot.NewOutbox(client, bot.OutboxConfig{Pace: hc.pace, Backoff: 10 * time.Millisecond}, log)
	signer := bot.NewSigner([]byte(aiTestToken))
	rt := bot.NewRouter(signer)
	h := &Handlers{Users: db, Out: out, Tr: tr, CB: signer, Clock: valex.SystemClock{}, Menu: rt, Log: log}
	rt.Use(bot.Recover(), bot.Logging(log, valex.Pseudonymizer{}), bot.Identity(h.Lang, h.Roles.Of))
	rt.UseDialogs(bot.DialogConfig{Store: db, Clock: valex.SystemClock{}, Ended: h.DialogEnded})
	h.Register(rt)
	hc.opts.BotUsername = client.Self().Username
	a := NewAI(h, AIDeps{Models: models, Store: db, Consent: storeConsent{db}, Out: out, Files: client, Options: hc.opts})
	a.Register(rt)
	if hc.wire != nil {
		hc.wire(h, rt, a)
	}
	b := bot.New(client, out, db, rt, tr, valex.SystemClock{}, log, bot.Config{PollTimeout: time.Second, DoneFlush: 5 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	x := &aiHarness{t: tb, emu: emu, aisv: aisv, db: db, ai: a, bot: b, log: logBuf}
	tb.Cleanup(func() {
		cancel()
		// The AI stops alongside the bot, as in valex run: the bot's stop
		// waits for the updates its jobs and held messages defer.
		aiStopped := make(chan struct{})
		go func() { a.Shutdown(5 * time.Second); close(aiStopped) }()
		if err := <-done; err != nil {
			tb.Errorf("bot run: %v", err)
		}
		<-aiStopped
		db.Close()
		logs := logBuf.String()
		for _, s := range append(hc.secrets, "SECRET", "PROMPT-") {
			if strings.Contains(logs, s) {
				tb.Errorf("the log contains %q", s)
			}
		}
	})
	return x
}

func (x *aiHarness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	x.t.Cleanup(cancel)
	return ctx
}

// idle waits until every update was handled and every AI job has finished.
func (x *aiHarness) idle() {
	x.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	quiet := 0
	for time.Now().Before(deadline) {
		if x.emu.Pending() == 0 && x.bot.Busy() == 0 && x.ai.Busy() == 0 {
			if quiet++; quiet >= 3 {
				return
			}
		} else {
			quiet = 0
		}
		time.Sleep(5 * time.Millisecond)
	}
	x.t.Fatal("the bot did not become idle")
}

func (x *aiHarness) lastSeq() int {
	evs := x.emu.Events()
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// register makes u a registered user and, with consent, one who agreed to
// the AI transfer (straight through the store: the consent flow has its own
// test).
func (x *aiHarness) register(u bottest.User, consent bool) {
	x.t.Helper()
	now := time.Now()
	if _, _, err := x.db.EnsureUser(valex.User{ID: u.ID, Nickname: u.Username, Language: u.LanguageCode, CreatedAt: now, LastActiveAt: now}); err != nil {
		x.t.Fatal(err)
	}
	if consent {
		if err := (storeConsent{x.db}).GrantAI(u.ID, now, "test"); err != nil {
			x.t.Fatal(err)
		}
	}
}

// say sends text as u in its private chat and waits until the bot is idle.
func (x *aiHarness) say(u bottest.User, text string) {
	x.t.Helper()
	x.emu.SendText(bottest.PrivateChat(u), u, text)
	x.idle()
}

// texts are the visible texts of the bot's messages in a chat.
func (x *aiHarness) texts(chatID int64) []string {
	var out []string
	for _, m := range x.emu.Messages(chatID) {
		if !m.Deleted {
			out = append(out, m.Text)
		}
	}
	return out
}

func (x *aiHarness) lastText(chatID int64) string {
	t := x.texts(chatID)
	if len(t) == 0 {
		return ""
	}
	return t[len(t)-1]
}

// press presses the button whose label contains label on the newest
// keyboard in the chat.
func (x *aiHarness) press(u bottest.User, chat bottest.Chat, label string) {
	x.t.Helper()
	msgs := x.emu.Messages(chat.ID)
	for i := len(msgs) - 1; i >= 0; i-- {
		for _, row := range msgs[i].Keyboard {
			for _, b := range row {
				if strings.Contains(b.Text, label) {
					x.emu.PressButton(chat, u, msgs[i].ID, b.Data)
					x.idle()
					return
				}
			}
		}
	}
	x.t.Fatalf("no button %q in chat %d", label, chat.ID)
}

func (x *aiHarness) usage(u bottest.User) []valex.AIUsage {
	x.t.Helper()
	l, err := x.db.UsageSince(u.ID, time.Time{})
	if err != nil {
		x.t.Fatal(err)
	}
	return l
}

func (x *aiHarness) history(u bottest.User) []valex.Turn {
	x.t.Helper()
	s, err := x.db.AISettings(u.ID)
	if err != nil {
		x.t.Fatal(err)
	}
	turns, _, err := x.db.RecentTurns(u.ID, currentConv(s), 1<<30, 0)
	if err != nil {
		x.t.Fatal(err)
	}
	return turns
}

// failedCalls lists the Bot API calls that failed (a refused HTML among them).
func (x *aiHarness) failedCalls() []string {
	var out []string
	for _, e := range x.emu.Events() {
		if !e.OK() && e.Method != "getUpdates" {
			out = append(out, e.String())
		}
	}
	return out
}

func models(reqs []aitest.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Model)
	}
	return out
}

func TestChatAnswersAndKeepsTheConversation(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	x.say(ann, "hello there")
	if got := x.lastText(ann.ID); got != "echo: hello there" {
		t.Fatalf("answer = %q", got)
	}
	x.say(ann, "and again")
	reqs := x.aisv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d AI requests", len(reqs))
	}
	var roles []string
	for _, m := range reqs[1].Messages {
		roles = append(roles, m.Role+":"+m.Text)
	}
	want := []string{"system:PROMPT-assistant", "user:hello there", "assistant:echo: hello there", "user:and again"}
	if strings.Join(roles, "|") != strings.Join(want, "|") {
		t.Errorf("second request = %q, want %q", roles, want)
	}
	if !reqs[1].Stream || reqs[1].Model != "chat-a-name" {
		t.Errorf("request: stream=%v model=%s", reqs[1].Stream, reqs[1].Model)
	}
	if l := x.usage(ann); len(l) != 2 || l[0].Model != "chat-a" || l[0].Capability != "chat" || l[0].Cost <= 0 {
		t.Errorf("ledger = %+v", l)
	}

	// /new starts over: the next request carries no history.
	x.say(ann, "/new")
	x.say(ann, "fresh start")
	last := x.aisv.Requests()[2]
	if len(last.Messages) != 2 || last.Messages[1].Text != "fresh start" {
		t.Errorf("after /new the request has %d messages: %+v", len(last.Messages), last.Messages)
	}
	if f := x.failedCalls(); len(f) > 0 {
		t.Errorf("failed Bot API calls: %v", f)
	}
}

// No request reaches an AI provider before the user agreed to the transfer.
func TestNothingGoesToAIWithoutConsent(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(bob, false)
	chat := bottest.PrivateChat(bob)
	x.say(bob, "hello")
	x.emu.SendPhoto(chat, bob, "what is it?", testJPEG(t))
	x.emu.SendVoice(chat, bob, aitest.SilentOggOpus(time.Second), 1)
	x.idle()
	x.say(bob, "/image a cat")
	x.say(bob, "/tts read this")
	if n := x.aisv.Count(); n != 0 {
		t.Fatalf("%d requests reached the AI provider without consent", n)
	}
	asks := 0
	for _, m := range x.emu.Messages(bob.ID) {
		if strings.Contains(m.Text, "I need your consent") && strings.Contains(m.Text, "2025-01") {
			asks++
		}
	}
	if asks != 5 {
		t.Errorf("asked for consent %d times, want 5: %q", asks, x.texts(bob.ID))
	}

	x.press(bob, chat, "I agree")
	cs, _, err := x.db.ConsentEvents(bob.ID)
	if err != nil || len(cs) != 1 || !cs[0].Granted || cs[0].Kind != valex.ConsentAITransfer || cs[0].PolicyVersion != "2025-01" || cs[0].At.IsZero() {
		t.Fatalf("consent events = %+v, %v", cs, err)
	}
	x.idle()
	if texts := strings.Join(x.texts(bob.ID), "\n"); !strings.Contains(texts, "consent is recorded") {
		t.Errorf("after agreeing: %q", texts)
	}
	// The text that made the bot ask is answered now instead of being lost.
	if got := x.lastText(bob.ID); got != "echo: hello" || x.aisv.Count() != 1 {
		t.Errorf("after agreeing: %q, %d AI requests", got, x.aisv.Count())
	}
	x.say(bob, "now?")
	if got := x.lastText(bob.ID); got != "echo: now?" || x.aisv.Count() != 2 {
		t.Errorf("after consent: %q, %d AI requests", got, x.aisv.Count())
	}
}

// A restriction of AI processing wins over a consent.
func TestRestrictedUserIsNotSentToAI(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(bob, true)
	if err := x.db.AddRestriction(valex.RestrictionEvent{UserID: bob.ID, Kind: valex.RestrictAI, Active: true, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	x.say(bob, "hello")
	x.say(bob, "hello?")
	if n := x.aisv.Count(); n != 0 {
		t.Fatalf("%d AI requests for a restricted user", n)
	}
	// Told about the restriction, not asked for a consent already given.
	for _, got := range x.texts(bob.ID) {
		if !strings.Contains(got, "AI processing is restricted at your request") || !strings.Contains(got, "/consent") {
			t.Errorf("answer to a restricted user: %q", got)
		}
	}
	if n := len(x.texts(bob.ID)); n != 2 {
		t.Errorf("%d answers to 2 messages: %q", n, x.texts(bob.ID))
	}
}

// A failing model falls back to the next; only the model that answered is
// charged.
func TestFallbackChargesOnlyTheAnswer(t *testing.T) {
	tests := []struct {
		name string
		step aitest.Step
	}{
		{"server error", aitest.Step{Status: 500}},
		{"rate limited", aitest.Step{Status: 429}},
		{"timeout", aitest.Step{Delay: 4 * time.Second}}, // chat-a's timeout is 2s
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x := newAIHarness(t, nil)
			x.register(ann, true)
			x.aisv.Script("chat-a-name", tt.step)
			x.say(ann, "are you there")
			if got := x.lastText(ann.ID); got != "echo: are you there" {
				t.Fatalf("answer = %q", got)
			}
			if got := models(x.aisv.Requests()); strings.Join(got, ",") != "chat-a-name,chat-b-name" {
				t.Errorf("models tried = %v", got)
			}
			l := x.usage(ann)
			if len(l) != 1 || l[0].Model != "chat-b" {
				t.Errorf("ledger = %+v, want one chat-b entry", l)
			}
		})
	}
}

func TestEveryModelFailingIsNotCharged(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	x.aisv.Script("chat-a-name", aitest.Step{Status: 503})
	x.aisv.Script("chat-b-name", aitest.Step{Status: 500})
	x.say(ann, "anyone?")
	if got := x.lastText(ann.ID); !strings.Contains(got, "not answering right now") || !strings.Contains(got, "Nothing was charged") {
		t.Errorf("user told %q", got)
	}
	if l := x.usage(ann); len(l) != 0 {
		t.Errorf("ledger = %+v, want nothing", l)
	}
	if h := x.history(ann); len(h) != 0 {
		t.Errorf("history = %+v, want nothing", h)
	}
}

func TestTimeoutEverywhereIsToldAsSuch(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	x.aisv.Script("chat-a-name", aitest.Step{Hang: true})
	x.aisv.Script("chat-b-name", aitest.Step{Status: 500})
	x.say(ann, "slow?")
	if got := x.lastText(ann.ID); !strings.Contains(got, "not answering") && !strings.Contains(got, "too long") {
		t.Errorf("user told %q", got)
	}
	if l := x.usage(ann); len(l) != 0 {
		t.Errorf("ledger = %+v", l)
	}
}

func words(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "w%d", i)
	}
	return b.String()
}

// Streamed by edits (a Bot API without drafts), the answer is one message
// edited while tokens arrive, never faster than once a second, at least
// once a second while text keeps coming, and within Telegram's pace; its
// final text is exact and comes as soon as the answer is complete.
func TestStreamingIsPacedAndExact(t *testing.T) {
	if testing.Short() {
		t.Skip("streams for about three seconds")
	}
	x := newAIHarness(t, func(c *harnessConfig) {
		c.pace = bot.DefaultPace()
		c.opts.EditInterval = 0 // the default: one second
		c.noDrafts = true
	})
	x.register(ann, true)
	text := words(160) // ~750 characters in 4-rune chunks at 50 chunks/s: ~3.7s
	x.aisv.Script("chat-a-name", aitest.Step{Text: text, TokenDelay: 20 * time.Millisecond})
	seq := x.lastSeq()
	x.say(ann, "stream please")

	var calls []bottest.Event // answer messages and edits in ann's chat
	for _, e := range x.emu.EventsFor(ann.ID) {
		if e.Seq > seq && e.OK() && (e.Method == "sendMessage" || e.Method == "editMessageText") {
			calls = append(calls, e)
		}
	}
	if len(calls) < 4 {
		t.Fatalf("only %d sends and edits: the answer was not streamed", len(calls))
	}
	if calls[0].Method != "sendMessage" {
		t.Fatalf("first call %s", calls[0])
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].Method != "editMessageText" || calls[i].MessageID != calls[0].MessageID {
			t.Fatalf("call %d is %s, want an edit of message %d", i, calls[i], calls[0].MessageID)
		}
		gap := calls[i].At.Sub(calls[i-1].At)
		if gap < 900*time.Millisecond && i < len(calls)-1 { // the final edit waits for nothing
			t.Errorf("edit %d came %v after the previous one, want at least ~1s", i, gap)
		}
		if gap > 1800*time.Millisecond {
			t.Errorf("edit %d came %v after the previous one while text kept coming", i, gap)
		}
	}
	// Telegram's pace for a private chat: in any second, at most Burst calls.
	pace := bot.DefaultPace()
	for i := range calls {
		n := 0
		for j := i; j < len(calls) && calls[j].At.Sub(calls[i].At) < time.Second; j++ {
			n++
		}
		if n > pace.Burst {
			t.Errorf("%d calls within a second from %s", n, calls[i])
		}
	}
	last := calls[len(calls)-1]
	if last.Raw != tghtml.MarkdownToHTML(text) || last.Text != text || last.ParseMode != "HTML" {
		t.Errorf("final text differs:\n got %q\nwant %q", last.Text, text)
	}
	if h := x.history(ann); len(h) != 2 || h[1].Text != text {
		t.Errorf("history = %+v", h)
	}
}

// /cancel stops the generation in flight at once — it does not wait behind
// it in the chat's queue — and keeps what was shown.
func TestCancelStopsTheGenerationAndKeepsWhatWasShown(t *testing.T) {
	x := newAIHarness(t, func(c *harnessConfig) { c.noDrafts = true })
	x.register(ann, true)
	full := words(400)
	x.aisv.Script("chat-a-name", aitest.Step{Text: full, TokenDelay: 25 * time.Millisecond})
	chat := bottest.PrivateChat(ann)
	ctx := x.ctx()
	seq := x.lastSeq()
	x.emu.SendText(chat, ann, "tell me a long story")
	first, err := x.emu.WaitFor(ctx, func(e bottest.Event) bool {
		return e.Seq > seq && e.ChatID == ann.ID && e.Method == "editMessageText" && e.OK()
	})
	if err != nil {
		t.Fatal(err)
	}
	x.emu.SendText(chat, ann, "/cancel")
	stopped, err := x.emu.WaitFor(ctx, func(e bottest.Event) bool {
		return e.Seq > first.Seq && e.Method == "sendMessage" && e.Text == "Stopped."
	})
	if err != nil {
		t.Fatal(err)
	}
	x.idle()
	if took := stopped.At.Sub(first.At); took > 2*time.Second {
		t.Errorf("/cancel took %v", took)
	}
	var answer bottest.Message
	for _, m := range x.emu.Messages(ann.ID) {
		if m.ID == first.MessageID {
			answer = m
		}
	}
	if answer.Text == "" || answer.Text == full || !strings.HasPrefix(full, answer.Text) {
		t.Fatalf("shown after cancel: %q", answer.Text)
	}
	time.Sleep(300 * time.Millisecond) // no edit may follow the cancel
	for _, e := range x.emu.EventsFor(ann.ID) {
		if e.Seq > stopped.Seq && e.Method == "editMessageText" {
			t.Errorf("edited after /cancel: %s", e)
		}
	}
	h := x.history(ann)
	if len(h) != 2 || strings.TrimSpace(h[1].Text) != answer.Text {
		t.Errorf("history keeps %+v, want what was shown %q", h, answer.Text)
	}
	if x.ai.Busy() != 0 {
		t.Errorf("%d jobs left", x.ai.Busy())
	}
	x.say(ann, "/cancel")
	if got := x.lastText(ann.ID); got != "There is nothing to cancel." {
		t.Errorf("/cancel with nothing running: %q", got)
	}
}

// A stream that breaks after some text keeps what came, says so, and is
// neither charged nor kept in the history.
func TestBrokenStreamIsToldAndNotCharged(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	x.aisv.Script("chat-a-name", aitest.Step{Text: words(40), TokenDelay: 10 * time.Millisecond, FailAfter: 10})
	x.say(ann, "go on")
	got := x.texts(ann.ID)
	if len(got) != 2 || !strings.HasPrefix(words(40), got[0]) || !strings.Contains(got[1], "cut off") {
		t.Fatalf("messages = %q", got)
	}
	if l, h := x.usage(ann), x.history(ann); len(l) != 0 || len(h) != 0 {
		t.Errorf("ledger %+v, history %+v", l, h)
	}
	if strings.Contains(x.log.String(), "ai job failed") {
		t.Error("the cut-off was reported twice")
	}
	if got := models(x.aisv.Requests()); len(got) != 1 {
		t.Errorf("fell back after text was shown: %v", got)
	}
}

// A message sent while an answer is being generated waits for it: answers
// come in order and the second turn sees the first.
func TestNextMessageWaitsForTheAnswerBeforeIt(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	x.aisv.Script("chat-a-name", aitest.Step{Text: "first answer", TokenDelay: 100 * time.Millisecond, ChunkSize: 2})
	chat := bottest.PrivateChat(ann)
	x.emu.SendText(chat, ann, "one")
	x.emu.SendText(chat, ann, "two")
	x.idle()
	if got := x.texts(ann.ID); strings.Join(got, "|") != "first answer|echo: two" {
		t.Fatalf("answers = %q", got)
	}
	reqs := x.aisv.Requests()
	if len(reqs) != 2 || len(reqs[1].Messages) != 4 || reqs[1].Messages[2].Text != "first answer" {
		t.Errorf("second request did not see the first answer: %+v", reqs)
	}
}

// A 10,000-character answer continues in new messages at 4096 characters.
func TestLongAnswerIsSplit(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	var paras []string
	for i := 0; len(strings.Join(paras, "\n\n")) < 10_000; i++ {
		paras = append(paras, fmt.Sprintf("Paragraph %d. %s", i, words(30)))
	}
	text := strings.Join(paras, "\n\n")
	text = text[:strings.LastIndex(text[:10_000], " ")]
	x.aisv.Script("chat-a-name", aitest.Step{Text: text, ChunkSize: 300, TokenDelay: 10 * time.Millisecond})
	x.say(ann, "long one")
	got := x.texts(ann.ID)
	if len(got) < 3 {
		t.Fatalf("%d messages for %d characters", len(got), len(text))
	}
	for i, m := range got {
		if n := tghtml.VisibleLen(m); n > tghtml.MaxMessageLen {
			t.Errorf("message %d has %d characters", i, n)
		}
	}
	joined := strings.Join(got, "\n\n")
	if strings.Join(strings.Fields(joined), " ") != strings.Join(strings.Fields(text), " ") {
		t.Errorf("the parts do not add up to the answer")
	}
	if f := x.failedCalls(); len(f) > 0 {
		t.Errorf("failed calls: %v", f)
	}
}

// Model Markdown with code, <, & and an unbalanced * renders as valid
// Telegram HTML: the emulator refuses invalid HTML, so no call may fail and
// the answer keeps its formatting.
func TestMarkdownAnswerRendersAsValidHTML(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	text := "Compare with `a < b && c > d`:\n\n```go\nif x < 1 && y > 2 {\n\tfmt.Println(\"<b>&amp;\")\n}\n```\n\n*unbalanced **bold and 5 * 3 < 20 & done"
	x.aisv.Script("chat-a-name", aitest.Step{Text: text, ChunkSize: 7, TokenDelay: 5 * time.Millisecond})
	x.say(ann, "code please")
	if f := x.failedCalls(); len(f) > 0 {
		t.Fatalf("failed calls (refused HTML?): %v", f)
	}
	msgs := x.emu.Messages(ann.ID)
	last := msgs[len(msgs)-1]
	if last.ParseMode != "HTML" || last.Raw != tghtml.MarkdownToHTML(text) {
		t.Errorf("final message %q (%s), want %q", last.Raw, last.ParseMode, tghtml.MarkdownToHTML(text))
	}
	if !strings.Contains(last.Raw, "<pre><code") || !strings.Contains(last.Text, `fmt.Println("<b>&amp;")`) {
		t.Errorf("code block lost: %q", last.Raw)
	}
}

func TestVoiceIsTranscribedShownAndAnswered(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	x.aisv.Script("ear", aitest.Step{Text: "what time is it"})
	x.emu.SendVoice(bottest.PrivateChat(ann), ann, aitest.SilentOggOpus(3*time.Second), 3)
	x.idle()
	got := x.texts(ann.ID)
	if strings.Join(got, "|") != "🎤 what time is it|echo: what time is it" {
		t.Fatalf("messages = %q", got)
	}
	reqs := x.aisv.Requests()
	if reqs[0].Model != "ear" || reqs[0].FileSize == 0 {
		t.Errorf("transcription request %+v", reqs[0])
	}
	l := x.usage(ann)
	if len(l) != 2 || l[0].Capability != "transcribe" || l[0].AudioSeconds < 2.9 || l[1].Capability != "chat" {
		t.Errorf("ledger = %+v", l)
	}
}

func TestVoiceOverTheLimitIsRefusedClearly(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	raw := fmt.Sprintf(`{"message":{"message_id":77,"date":1700000000,"chat":{"id":%d,"type":"private"},"from":{"id":%d,"is_bot":false,"first_name":"Ann","username":"ann"},"voice":{"file_id":"huge","file_unique_id":"u-huge","duration":3000,"mime_type":"audio/ogg","file_size":%d}}}`, ann.ID, ann.ID, 25<<20)
	x.emu.SendRaw([]byte(raw))
	x.idle()
	if got := x.lastText(ann.ID); !strings.Contains(got, "too big") || !strings.Contains(got, "20 MB") {
		t.Errorf("told %q", got)
	}
	if x.aisv.Count() != 0 {
		t.Errorf("%d AI requests", x.aisv.Count())
	}
}

func testJPEG(tb testing.TB) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 64, 48)), nil); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestPhotoGoesToAVisionModel(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	img := testJPEG(t)
	x.emu.SendPhoto(bottest.PrivateChat(ann), ann, "what is this?", img)
	x.idle()
	if got := x.lastText(ann.ID); got != "echo: what is this? [image]" {
		t.Fatalf("answer = %q", got)
	}
	req := x.aisv.Requests()[0]
	user := req.Messages[len(req.Messages)-1]
	if req.Model != "seer" || !bytes.Equal(user.ImageData, img) {
		t.Errorf("request to %s with %d image bytes", req.Model, len(user.ImageData))
	}
	if h := x.history(ann); len(h) != 2 || h[0].Text != "[photo] what is this?" {
		t.Errorf("history = %+v", h)
	}
	if l := x.usage(ann); len(l) != 1 || l[0].Capability != "vision" {
		t.Errorf("ledger = %+v", l)
	}
}

func TestImageAsksBeforeItCosts(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	chat := bottest.PrivateChat(ann)
	x.say(ann, "/image a red fox")
	if got := x.lastText(ann.ID); !strings.Contains(got, "costs 5 in credits") {
		t.Fatalf("offer = %q", got)
	}
	if x.aisv.Count() != 0 {
		t.Fatal("generated before the price was accepted")
	}
	x.press(ann, chat, "Cancel")
	if got := x.lastText(ann.ID); !strings.Contains(got, "Cancelled") || x.aisv.Count() != 0 {
		t.Fatalf("after cancel: %q, %d requests", got, x.aisv.Count())
	}
	x.say(ann, "/image a red fox")
	seq := x.lastSeq()
	x.press(ann, chat, "Draw it")
	var photo *bottest.Event
	for _, e := range x.emu.EventsFor(ann.ID) {
		if e.Seq > seq && e.Method == "sendPhoto" && e.OK() {
			photo = &e
		}
	}
	if photo == nil || !bytes.HasPrefix(photo.FileData, []byte("\x89PNG")) || photo.Text != "a red fox" {
		t.Fatalf("no photo sent: %+v", x.emu.EventsFor(ann.ID))
	}
	if r := x.aisv.Requests(); r[0].Path != "/v1/images/generations" || r[0].Prompt != "a red fox" {
		t.Errorf("image requests %+v", r)
	}
	calls := x.aisv.Count()
	if l := x.usage(ann); len(l) != 1 || l[0].Capability != "image" || l[0].Cost != 5*ai.MicroCredits {
		t.Errorf("ledger = %+v", l)
	}
	// Only the newest offer counts.
	x.say(ann, "/image first idea")
	older := x.emu.Messages(ann.ID)
	x.say(ann, "/image second idea")
	first := older[len(older)-1]
	x.emu.PressButton(chat, ann, first.ID, first.Keyboard[0][0].Data)
	x.idle()
	var firstNow string
	for _, m := range x.emu.Messages(ann.ID) {
		if m.ID == first.ID {
			firstNow = m.Text
		}
	}
	if x.aisv.Count() != calls || !strings.Contains(firstNow, "expired") {
		t.Errorf("a superseded offer worked: %q", firstNow)
	}
	x.press(ann, chat, "Draw it")
	if r := x.aisv.Requests(); r[len(r)-2].Prompt != "second idea" {
		t.Errorf("drew %q", r[len(r)-2].Prompt)
	}
}

func TestCheapImageNeedsNoConfirmation(t *testing.T) {
	x := newAIHarness(t, func(c *harnessConfig) { c.opts.ImageConfirmAbove = 10 * ai.MicroCredits })
	x.register(ann, true)
	x.say(ann, "/image a blue whale")
	if n := x.emu.Count("sendPhoto"); n != 1 {
		t.Errorf("%d photos sent", n)
	}
}

func TestSpeechOut(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	x.say(ann, "/tts good morning")
	voices := 0
	for _, e := range x.emu.EventsFor(ann.ID) {
		if e.Method == "sendVoice" && e.OK() && len(e.FileData) > 0 {
			voices++
		}
	}
	if voices != 1 {
		t.Fatalf("%d voice messages", voices)
	}
	r := x.aisv.Requests()[0]
	if r.Model != "mouth" || r.Input != "good morning" || r.Voice != "nova" {
		t.Errorf("speech request %+v", r)
	}
	// Replying /tts to a bot message reads that message.
	x.say(ann, "ping")
	msgs := x.emu.Messages(ann.ID)
	x.emu.SendReply(bottest.PrivateChat(ann), ann, "/tts", msgs[len(msgs)-1].ID)
	x.idle()
	if r := x.aisv.Requests(); r[len(r)-1].Input != "echo: ping" {
		t.Errorf("replied /tts read %q", r[len(r)-1].Input)
	}
	// With /voice on, answers come as voice too.
	x.say(ann, "/voice on")
	before := x.emu.Count("sendVoice")
	x.say(ann, "speak to me")
	if x.emu.Count("sendVoice") != before+1 {
		t.Errorf("no voice answer with /voice on")
	}
	if l := x.usage(ann); l[len(l)-1].Capability != "speech" {
		t.Errorf("ledger = %+v", l)
	}
}

func TestModelAndModeChoices(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	chat := bottest.PrivateChat(ann)
	x.say(ann, "/model")
	msgs := x.emu.Messages(ann.ID)
	var labels []string
	for _, row := range msgs[len(msgs)-1].Keyboard {
		labels = append(labels, row[0].Text)
	}
	if strings.Join(labels, ",") != "✓ chat-a,chat-b,seer 👁" {
		t.Fatalf("/model offers %q (chat-pro is not on the free plan)", labels)
	}
	x.press(ann, chat, "chat-b")
	x.say(ann, "/mode")
	x.press(ann, chat, "Translator")
	x.say(ann, "/mode")
	if got := x.lastText(ann.ID); !strings.Contains(got, "Current role: Translator") {
		t.Errorf("/mode says %q", got)
	}
	x.say(ann, "hola")
	r := x.aisv.Requests()[0]
	if r.Model != "chat-b-name" || r.Messages[0].Text != "PROMPT-translator" {
		t.Errorf("request to %s with system %q", r.Model, r.Messages[0].Text)
	}
	// A custom mode without a locale name shows its configured title.
	msgs = x.emu.Messages(ann.ID)
	found := false
	for _, m := range msgs {
		for _, row := range m.Keyboard {
			found = found || row[0].Text == "Pirate"
		}
	}
	if !found {
		t.Error("the custom mode's title is not shown")
	}
}

func TestTrimmedHistoryIsToldOncePerConversation(t *testing.T) {
	x := newAIHarness(t, func(c *harnessConfig) { c.opts.HistoryTokens = 60 })
	x.register(ann, true)
	notices := func() int {
		n := 0
		for _, s := range x.texts(ann.ID) {
			if strings.Contains(s, "only its most recent part") {
				n++
			}
		}
		return n
	}
	for i := range 6 {
		x.say(ann, fmt.Sprintf("message number %d with some words", i))
	}
	if n := notices(); n != 1 {
		t.Fatalf("told %d times, want once", n)
	}
	last := x.aisv.Requests()[5]
	if len(last.Messages) >= 12 {
		t.Errorf("history was not trimmed: %d messages", len(last.Messages))
	}
	if last.Messages[len(last.Messages)-1].Text != "message number 5 with some words" {
		t.Errorf("the new message is not last")
	}
	x.say(ann, "/new")
	for i := range 6 {
		x.say(ann, fmt.Sprintf("again number %d with some words", i))
	}
	if n := notices(); n != 2 {
		t.Errorf("told %d times over two conversations, want 2", n)
	}
}

// The turn cap: a conversation of short messages, far inside the token
// budget, still sends only the newest HistoryTurns earlier messages.
func TestHistoryIsCappedByTurns(t *testing.T) {
	x := newAIHarness(t, func(c *harnessConfig) { c.opts.HistoryTurns = 4 })
	x.register(ann, true)
	for i := range 5 {
		x.say(ann, fmt.Sprintf("q%d", i))
	}
	last := x.aisv.Requests()[4]
	var got []string
	for _, m := range last.Messages[1:] { // after the system prompt
		got = append(got, m.Text)
	}
	if want := "q2|echo: q2|q3|echo: q3|q4"; strings.Join(got, "|") != want {
		t.Errorf("sent %q, want %q", strings.Join(got, "|"), want)
	}
	told := 0
	for _, s := range x.texts(ann.ID) {
		if strings.Contains(s, "only its most recent part") {
			told++
		}
	}
	if told != 1 {
		t.Errorf("told %d times that older messages are left out, want once", told)
	}
}

func TestUsageCommand(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	x.say(ann, "/usage")
	if got := x.lastText(ann.ID); !strings.Contains(got, "nothing yet") {
		t.Errorf("fresh /usage: %q", got)
	}
	x.say(ann, "one two three")
	x.say(ann, "/tts hello")
	x.say(ann, "/usage")
	got := x.lastText(ann.ID)
	for _, want := range []string{"Your AI usage", "Today", "This month", "Chat: 1 request (tokens:", "Text to voice: 1 message (characters: 5)", "Total in credits:"} {
		if !strings.Contains(got, want) {
			t.Errorf("/usage lacks %q:\n%s", want, got)
		}
	}
	x.register(vera, true)
	x.say(vera, "/usage")
	if got := x.lastText(vera.ID); !strings.Contains(got, "Ваше использование ИИ") {
		t.Errorf("Russian /usage: %q", got)
	}
}

// In a group the bot answers when mentioned, keeps no history there, and
// stays silent otherwise.
func TestGroupAnswersOnlyWhenAddressed(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	group := bottest.Chat{ID: -100123, Type: "group", Title: "friends"}
	x.emu.SendText(group, ann, "just chatting")
	x.idle()
	if x.aisv.Count() != 0 {
		t.Fatal("answered a message not meant for the bot")
	}
	x.emu.SendText(group, ann, "@valex_bot what is 2+2?")
	x.idle()
	msgs := x.emu.Messages(group.ID)
	if len(msgs) != 1 || msgs[0].Text != "echo: what is 2+2?" {
		t.Fatalf("group messages = %+v", msgs)
	}
	var sent bottest.Event
	for _, e := range x.emu.EventsFor(group.ID) {
		if e.Method == "sendMessage" {
			sent = e
		}
	}
	if sent.ReplyTo == 0 {
		t.Error("the answer does not reply to the question")
	}
	if h := x.history(ann); len(h) != 0 {
		t.Errorf("a group turn went into the private history: %+v", h)
	}
	if l := x.usage(ann); len(l) != 1 {
		t.Errorf("ledger = %+v", l)
	}
}

func TestDialogStateStillWins(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	x.say(ann, "/profile")
	x.press(ann, bottest.PrivateChat(ann), "City")
	x.say(ann, "Lisbon")
	if x.aisv.Count() != 0 {
		t.Fatal("a dialog answer went to the AI")
	}
	u, _ := x.db.User(ann.ID)
	if u.City != "Lisbon" {
		t.Errorf("city = %q", u.City)
	}
}

func TestUnregisteredUserIsAskedToStart(t *testing.T) {
	x := newAIHarness(t, nil)
	x.say(bob, "hello")
	if got := x.lastText(bob.ID); !strings.Contains(got, "/start") || x.aisv.Count() != 0 {
		t.Errorf("told %q; %d AI requests", got, x.aisv.Count())
	}
}

func TestCredits(t *testing.T) {
	tests := []struct {
		micro int64
		want  string
	}{
		{0, "0"}, {1, "&lt;0.0001"}, {50, "0.0001"}, {123456, "0.1235"}, {5_000_000, "5"}, {4_200_000, "4.2"},
		{4_000_500, "4.0005"}, {1_234_500_000, "1,234.5"},
	}
	for _, tt := range tests {
		if got := credits("en", tt.micro); got != tt.want {
			t.Errorf("credits(en, %d) = %q, want %q", tt.micro, got, tt.want)
		}
	}
	// Russian: a decimal comma and a no-break space between thousands.
	for micro, want := range map[int64]string{4_000_500: "4,0005", 123456: "0,1235", 1: "&lt;0,0001", 1_234_500_000: "1\u00a0234,5"} {
		if got := credits("ru", micro); got != want {
			t.Errorf("credits(ru, %d) = %q, want %q", micro, got, want)
		}
	}
}

func TestStripMention(t *testing.T) {
	for in, want := range map[string]string{
		"@valex_bot hi":        "hi",
		"hi @Valex_Bot there":  "hi  there",
		"@valex_bot":           "",
		"no mention":           "no mention",
		"@valex_botanist test": "@valex_botanist test",
		"Привет @valex_bot!":   "Привет !",
	} {
		if got := stripMention(in, "valex_bot"); got != want {
			t.Errorf("stripMention(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProviderFailuresAreToldClearly(t *testing.T) {
	allFailed := func(causes ...error) error {
		return fmt.Errorf("%w: %w", ai.ErrAllFailed, errors.Join(causes...))
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"all down", allFailed(&ai.ModelError{Model: "a", Status: 500}), "ai.error.unavailable"},
		{"timed out", allFailed(&ai.ModelError{Model: "a", Reason: "timeout", Err: context.DeadlineExceeded}), "ai.error.timeout"},
		{"our key refused", &ai.ModelError{Model: "a", Status: 401}, "ai.error.unavailable"},
		{"request refused", &ai.ModelError{Model: "a", Status: 400}, "ai.error.rejected"},
		{"too long", &ai.ModelError{Model: "a", Status: 400, Code: "context_length_exceeded"}, "ai.error.too_long"},
		{"no model", fmt.Errorf("%w: x", ai.ErrNoModel), "ai.error.no_model"},
	}
	for _, tt := range tests {
		ue, ok := valex.AsUserError(userError(tt.err))
		if !ok || ue.Key != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, userError(tt.err), tt.want)
		}
	}
	if _, ok := valex.AsUserError(userError(errors.New("disk full"))); ok {
		t.Error("a store error became a user error")
	}
}

// Russian usage lines agree with their numbers and use a decimal comma:
// "4 запроса", "кредитов: 4,0005", never "4 кредитов" or "4.0005".
func TestUsageLineRussian(t *testing.T) {
	tr, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	a := &AI{h: &Handlers{Tr: tr}}
	r := &bot.Request{Update: &bot.Update{}, Lang: "ru"}
	for _, tc := range []struct {
		calls int64
		want  string
	}{
		{1, "• Чат: 1 запрос (токенов: 1\u00a0500) — кредитов: 4,0005"},
		{4, "• Чат: 4 запроса (токенов: 1\u00a0500) — кредитов: 4,0005"},
		{11, "• Чат: 11 запросов (токенов: 1\u00a0500) — кредитов: 4,0005"},
		{21, "• Чат: 21 запрос (токенов: 1\u00a0500) — кредитов: 4,0005"},
	} {
		got := a.usageLine(r, valex.UsageTotal{Capability: string(ai.CapChat), Calls: tc.calls, InputTokens: 1000, OutputTokens: 500, Cost: 4_000_500})
		if got != tc.want {
			t.Errorf("%d calls: %q, want %q", tc.calls, got, tc.want)
		}
	}
}
