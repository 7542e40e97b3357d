package handlers

import (
	"context"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/desk"
	"github.com/valex-ai/valex/store"
)

// Consent withdrawal, a restriction of AI processing and erasure stop the
// AI work in flight (AI.StopUser): over the Bot API emulator, the AI
// emulator behind a recording proxy, the real router, desk and store.

// providerProxy stands between the AI router and the AI emulator and
// records, per request, when it ended and whether the bot closed the
// connection before the emulator had finished.
type providerProxy struct {
	srv    *httptest.Server
	target atomic.Pointer[url.URL]

	mu   sync.Mutex
	ends []proxyEnd
	errs syncBuffer
}

type proxyEnd struct {
	path   string
	at     time.Time
	closed bool // the client went away mid-request
}

func newProviderProxy(tb testing.TB) *providerProxy {
	tb.Helper()
	p := &providerProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(p.target.Load()) },
		Transport:     &http.Transport{DisableKeepAlives: true}, // nothing pooled across emulators
		FlushInterval: -1,                                       // pass every streamed chunk on at once
		ErrorLog:      log.New(&p.errs, "", log.Lmicroseconds),
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { // ReverseProxy aborts a broken stream with a panic
			p.mu.Lock()
			p.ends = append(p.ends, proxyEnd{path: r.URL.Path, at: time.Now(), closed: r.Context().Err() != nil})
			p.mu.Unlock()
		}()
		// Without full duplex the server drains and closes the request
		// body when the proxy starts its answer, racing the transport
		// still reading that body upstream: the transport then closes
		// the stream mid-answer ("use of closed network connection").
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			panic(err)
		}
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(p.srv.Close)
	return p
}

// ended waits until n requests have ended (the proxy learns that the
// client went away a moment after it did) and returns those that have.
func (p *providerProxy) ended(n int) []proxyEnd {
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		ends := append([]proxyEnd(nil), p.ends...)
		p.mu.Unlock()
		if len(ends) >= n || time.Now().After(deadline) {
			return ends
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stopHarness is the AI harness with the privacy desk routed too (its
// consent screen stops AI work, as main wires it) and the provider behind
// a providerProxy.
type stopHarness struct {
	*aiHarness
	proxy *providerProxy
}

func newStopHarness(tb testing.TB, models func(AIModels) AIModels) *stopHarness {
	tb.Helper()
	p := newProviderProxy(tb)
	x := newAIHarness(tb, func(hc *harnessConfig) {
		hc.models = func(AIModels) AIModels {
			router, err := ai.New(ai.Config{
				Providers: []ai.ProviderConfig{{Name: "emu", Kind: ai.KindOpenAI, BaseURL: p.srv.URL + "/v1", APIKey: "sk-test-SECRET-key"}},
				Models:    testModels(),
				Timeout:   30 * time.Second,
			}, valex.SystemClock{})
			if err != nil {
				tb.Fatal(err)
			}
			if models != nil {
				return models(router)
			}
			return router
		}
		hc.wire = func(h *Handlers, rt *bot.Router, a *AI) {
			d := &Desk{Handlers: h, Store: h.Users.(*store.DB), Files: h.Out.(FileSender), SLA: valex.DefaultSLAPolicy(),
				Policy: PolicyInfo{Version: "2025-01"}, AIWork: a}
			d.Service = &desk.Service{Store: h.Users.(*store.DB), Tickets: h.Users.(*store.DB), Notify: d.Notifier(), Roster: h.Roles.Roster(),
				Clock: h.Clock, SLA: d.SLA, Log: h.Log}
			d.Register(rt)
			rt.Use(d.Intercept)
		}
	})
	u, err := url.Parse(x.aisv.URL())
	if err != nil {
		tb.Fatal(err)
	}
	p.target.Store(u)
	return &stopHarness{aiHarness: x, proxy: p}
}

// button finds the newest button in chat whose label contains label.
func (x *stopHarness) button(chat int64, label string) (msgID int, data string) {
	x.t.Helper()
	msgs := x.emu.Messages(chat)
	for i := len(msgs) - 1; i >= 0; i-- {
		for _, row := range msgs[i].Keyboard {
			for _, b := range row {
				if strings.Contains(b.Text, label) {
					return msgs[i].ID, b.Data
				}
			}
		}
	}
	x.t.Fatalf("no button %q in chat %d", label, chat)
	return 0, ""
}

// lastAlert is the text of the newest alert answering a button.
func (x *stopHarness) lastAlert() string {
	evs := x.emu.Events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Method == "answerCallbackQuery" && evs[i].ShowAlert {
			return evs[i].CallbackText
		}
	}
	return ""
}

// dump logs what the bot sent, the provider requests, the proxy's errors
// and the bot's log: what a failure needs to be understood.
func (x *stopHarness) dump() {
	x.t.Helper()
	for _, e := range x.emu.Events() {
		if e.Method != "getUpdates" {
			x.t.Logf("%s", e)
		}
	}
	x.t.Logf("%d AI jobs; provider requests ended: %+v; proxy errors: %q\nlog:\n%s",
		x.ai.Busy(), x.proxy.ended(0), x.proxy.errs.String(), x.log.String())
}

// waitBusy waits until n AI jobs run or wait.
func (x *stopHarness) waitBusy(n int) {
	x.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for x.ai.Busy() != n {
		if time.Now().After(deadline) {
			x.dump()
			x.t.Fatalf("%d AI jobs, want %d", x.ai.Busy(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// slowStory is a streamed answer the provider takes 10 s to write.
var slowStory = aitest.Step{Text: strings.Repeat("story ", 100), ChunkSize: 6, TokenDelay: 100 * time.Millisecond}

// Withdrawing the AI consent or restricting AI processing mid-stream stops
// the answer within a second, keeps nothing of it, drops the message
// waiting behind it and tells the user; later messages reach no provider.
func TestConsentChangeStopsTheAnswerInFlight(t *testing.T) {
	tests := []struct {
		name   string
		button string // on the /consent screen
		next   string // what a message after the change is answered with
	}{
		{"consent withdrawn", "Withdraw consent: AI providers", "I need your consent"},
		{"AI processing restricted", "Stop AI processing", "AI processing is restricted at your request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newStopHarness(t, nil)
			x.register(ann, true)
			x.aisv.Script("chat-a-name", slowStory)
			chat := bottest.PrivateChat(ann)
			ctx := x.ctx()
			x.say(ann, "/consent")
			screen, data := x.button(ann.ID, tt.button)

			seq := x.lastSeq()
			x.emu.SendText(chat, ann, "tell me a long story")
			x.emu.SendText(chat, ann, "and then another one")
			// The answer streams as drafts in a private chat.
			if _, err := x.emu.WaitFor(ctx, func(e bottest.Event) bool {
				return e.Seq > seq && e.ChatID == ann.ID && e.Method == "sendMessageDraft" && e.Text != "" && e.OK()
			}); err != nil {
				x.dump()
				t.Fatal(err)
			}
			x.waitBusy(2) // the answer streams, the second message waits

			pressed := time.Now()
			x.emu.PressButton(chat, ann, screen, data)
			told, err := x.emu.WaitFor(ctx, func(e bottest.Event) bool {
				return e.ChatID == ann.ID && e.Method == "sendMessage" && strings.Contains(e.Text, "were stopped")
			})
			if err != nil {
				x.dump()
				t.Fatal(err)
			}
			x.idle()
			if !strings.Contains(told.Text, "2 AI requests") || !strings.Contains(told.Text, "none of them is kept") {
				t.Errorf("user told %q", told.Text)
			}
			ends := x.proxy.ended(1)
			if len(ends) != 1 || !ends[0].closed || ends[0].path != "/v1/chat/completions" {
				t.Fatalf("provider requests: %+v, want the one stream, closed by the bot", ends)
			}
			// The stream would have taken 10 s; it stops within a second
			// (asserted with room to spare).
			took := ends[0].at.Sub(pressed)
			if took > 5*time.Second {
				t.Errorf("the stream went on for %v after the change", took)
			}
			t.Logf("the stream stopped %v after the change", took)
			if n := x.aisv.Count(); n != 1 {
				t.Errorf("%d provider requests: the waiting message reached a provider", n)
			}
			if h, l := x.history(ann), x.usage(ann); len(h) != 0 || len(l) != 0 {
				t.Errorf("kept after the change: history %+v, ledger %+v", h, l)
			}
			// Nothing more is shown: no draft, and no message keeping it.
			for _, e := range x.emu.EventsFor(ann.ID) {
				if e.Seq > told.Seq && e.Method == "sendMessageDraft" {
					t.Errorf("the answer was shown after it was stopped: %s", e)
				}
				if (e.Method == "sendMessage" || e.Method == "editMessageText") && strings.Contains(e.Text, "story") {
					t.Errorf("the stopped answer was sent: %s", e)
				}
			}
			for _, s := range x.texts(ann.ID) {
				if s == "Stopped." || strings.Contains(s, "went wrong") {
					t.Errorf("told %q", s)
				}
			}

			x.say(ann, "are you there?")
			if got := x.lastText(ann.ID); !strings.Contains(got, tt.next) {
				t.Errorf("after the change: %q, want %q", got, tt.next)
			}
			if n := x.aisv.Count(); n != 1 {
				t.Errorf("%d provider requests after the change", n)
			}
		})
	}
}

// A change while the first model hangs stops the chain: the fallback model
// is never asked.
func TestConsentChangeStopsTheFallback(t *testing.T) {
	x := newStopHarness(t, nil)
	x.register(ann, true)
	x.aisv.Script("chat-a-name", aitest.Step{Hang: true}) // times out after 2 s, then chat-b would answer
	chat := bottest.PrivateChat(ann)
	x.say(ann, "/consent")
	screen, data := x.button(ann.ID, "Stop AI processing")
	x.emu.SendText(chat, ann, "hello?")
	deadline := time.Now().Add(10 * time.Second)
	for x.aisv.Count() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	x.emu.PressButton(chat, ann, screen, data)
	x.idle()
	time.Sleep(2500 * time.Millisecond) // past chat-a's timeout
	if got := models(x.aisv.Requests()); strings.Join(got, ",") != "chat-a-name" {
		t.Errorf("models asked: %v", got)
	}
	if l := x.usage(ann); len(l) != 0 {
		t.Errorf("ledger %+v", l)
	}
}

// deafModels ignores cancellation: the provider finishes the answer
// whatever the bot does, like a job that has not noticed it was stopped.
type deafModels struct {
	AIModels
	once     *sync.Once
	returned chan struct{} // closed when the first call returns
}

func (m deafModels) ChatStream(ctx context.Context, req ai.ChatRequest, onDelta func(string)) (ai.ChatResult, error) {
	defer m.once.Do(func() { close(m.returned) })
	return m.AIModels.ChatStream(context.WithoutCancel(ctx), req, onDelta)
}

// After StopUser returns, nothing of the stopped job reaches the store,
// even when the job returns later with a complete answer.
func TestStopUserKeepsNothingEvenIfTheProviderFinishes(t *testing.T) {
	returned := make(chan struct{})
	x := newStopHarness(t, func(m AIModels) AIModels { return deafModels{AIModels: m, once: new(sync.Once), returned: returned} })
	x.register(ann, true)
	x.aisv.Script("chat-a-name", aitest.Step{Text: words(30), TokenDelay: 20 * time.Millisecond})
	ctx := x.ctx()
	seq := x.lastSeq()
	x.emu.SendText(bottest.PrivateChat(ann), ann, "talk to me")
	if _, err := x.emu.WaitFor(ctx, func(e bottest.Event) bool {
		return e.Seq > seq && e.ChatID == ann.ID && e.Method == "sendMessageDraft" && e.Text != "" && e.OK()
	}); err != nil {
		x.dump()
		t.Fatal(err)
	}

	sctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond) // gives up before the job returns
	n := x.ai.StopUser(sctx, ann.ID)
	cancel()
	if n != 1 {
		t.Errorf("StopUser stopped %d jobs, want 1", n)
	}
	select {
	case <-returned:
		t.Fatal("the provider call returned before StopUser did: the test proves nothing")
	default:
	}
	<-returned // the provider finished the whole answer
	x.idle()
	if h, l := x.history(ann), x.usage(ann); len(h) != 0 || len(l) != 0 {
		t.Errorf("written after StopUser: history %+v, ledger %+v", h, l)
	}
	if !strings.Contains(x.log.String(), "stopped ai job still returning") {
		t.Error("StopUser giving up is not logged")
	}
	if strings.Contains(x.log.String(), "ai job failed") {
		t.Error("a stopped job was reported as failed")
	}

	// New work runs as before and is kept.
	x.say(ann, "again")
	if got := x.lastText(ann.ID); got != "echo: again" || len(x.history(ann)) != 2 {
		t.Errorf("after StopUser: %q, history %+v", got, x.history(ann))
	}
}

// Work admitted before a StopUser never runs, even when it is queued after
// it; a message held for consent and an image offer are void.
func TestStopUserVoidsWhatWasPending(t *testing.T) {
	x := newStopHarness(t, nil)
	x.register(ann, true)
	x.register(bob, false)
	ctx := x.ctx()

	ticket := x.ai.admit() // a handler passed the consent check ...
	if n := x.ai.StopUser(ctx, ann.ID); n != 0 {
		t.Errorf("StopUser with nothing running stopped %d", n)
	}
	var ran atomic.Bool
	req := &bot.Request{Update: &bot.Update{ChatID: ann.ID, From: bot.From{ID: ann.ID}}, Lang: "en"}
	x.ai.submit(req, ticket, func(bool) {}, func(context.Context) { ran.Store(true) }) // ... and queues after it
	x.ai.submit(req, x.ai.admit(), func(bool) {}, func(context.Context) {})
	x.idle()
	if ran.Load() {
		t.Error("work admitted before StopUser ran")
	}

	// An image price offer is void.
	x.say(ann, "/image a fox") // costs more than ImageConfirmAbove: asks first
	offer, data := x.button(ann.ID, "Draw it")
	x.ai.StopUser(ctx, ann.ID)
	x.emu.PressButton(bottest.PrivateChat(ann), ann, offer, data)
	x.idle()
	if got := x.lastText(ann.ID); !strings.Contains(got, "expired") || x.aisv.Count() != 0 {
		t.Errorf("offer after StopUser: %q, %d provider requests", got, x.aisv.Count())
	}

	// The message that made the bot ask for consent is not answered.
	x.say(bob, "my secret question")
	x.ai.StopUser(ctx, bob.ID)
	x.press(bob, bottest.PrivateChat(bob), "I agree")
	if got := x.lastText(bob.ID); !strings.Contains(got, "Send me your request again") || x.aisv.Count() != 0 {
		t.Errorf("after agreeing: %q, %d provider requests", got, x.aisv.Count())
	}
}

// The "I agree" of an erased account sends its old text nowhere: not
// while the account is gone, and not once the user has started again.
func TestOldConsentButtonOfAnErasedAccount(t *testing.T) {
	tests := []struct {
		name     string
		stopUser bool // the erasure stopped the AI work (it does; without, the button still holds)
		restart  bool // /start again before pressing
		want     string
	}{
		{"account gone", true, false, "Please send /start first."},
		{"account created again", true, true, "This button is no longer valid."},
		{"created again, nothing voided in memory", false, true, "This button is no longer valid."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newStopHarness(t, nil)
			x.register(bob, false)
			chat := bottest.PrivateChat(bob)
			x.say(bob, "OLD-ACCOUNT-SECRET")
			msg, data := x.button(bob.ID, "I agree")

			if tt.stopUser {
				x.ai.StopUser(x.ctx(), bob.ID)
			}
			if err := x.db.DeleteUser(bob.ID); err != nil {
				t.Fatal(err)
			}
			if tt.restart {
				x.say(bob, "/start")
			}
			x.emu.PressButton(chat, bob, msg, data)
			x.idle()
			if n := x.aisv.Count(); n != 0 {
				t.Fatalf("%d provider requests from the old button", n)
			}
			if got := x.lastAlert(); got != tt.want {
				t.Errorf("old button answered %q, want %q", got, tt.want)
			}
			for _, s := range x.texts(bob.ID) {
				if strings.Contains(s, "consent is recorded") {
					t.Errorf("old button told %q", s)
				}
			}
			if cs, _, err := x.db.ConsentEvents(bob.ID); err != nil || len(cs) != 0 {
				t.Errorf("consents recorded from the old button: %+v, %v", cs, err)
			}
			if tt.restart {
				// The new account's own question still works.
				x.say(bob, "new question")
				x.press(bob, chat, "I agree")
				if got := x.lastText(bob.ID); got != "echo: new question" || x.aisv.Count() != 1 {
					t.Errorf("new account: %q, %d provider requests", got, x.aisv.Count())
				}
			}
		})
	}
}
