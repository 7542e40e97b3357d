package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
)

// A stop between a ticket's commit and its reply (the reply waiting out a
// 429) leaves the update pending; after the restart the replayed update
// finds the ticket it opened: one ticket, and the reply arrives.
func TestTicketReplayedAfterAStopIsOpenedOnce(t *testing.T) {
	g := newReplayRig(t, nil)
	a := g.start()
	a.say(alice, "/start")

	seq := a.lastSeq()
	b := g.cutOff(a, "sendMessage",
		func() { g.emu.SendText(bottest.PrivateChat(alice), alice, "/support my invoice is wrong") },
		func() bool { return len(a.tickets(alice)) == 1 }, "one ticket", 1)
	b.waitText(alice.ID, seq, "registered")
	b.idle()
	if ts := b.tickets(alice); len(ts) != 1 {
		t.Fatalf("%d tickets after the replay, want 1", len(ts))
	}
}

// replayRig runs the real wiring over the emulator with a grace period (1 s)
// shorter than a 429's wait, so that a stop cuts a waiting reply off as a
// crash or a deploy would, and starts it again on the same files.
type replayRig struct {
	t     *testing.T
	emu   *bottest.Server
	dir   string
	tweak func(*Config)
}

func newReplayRig(t *testing.T, more func(*Config)) *replayRig {
	t.Helper()
	emu, err := bottest.New(bottest.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	tweak := func(c *Config) {
		c.Telegram.Shutdown = Duration{time.Second}
		if more != nil {
			more(c)
		}
	}
	return &replayRig{t: t, emu: emu, dir: t.TempDir(), tweak: tweak}
}

func (g *replayRig) start() *app { return startAppOn(g.t, g.emu, g.dir, g.tweak, nil) }

// cutOff refuses every call of method for 1.5 s, telling the bot to wait 5 s;
// sends the update (send); waits until committed sees its effect in the
// store (else fails, naming what); and stops a while the reply still waits.
// pending is how many updates the stop must leave (-1: not checked). Once
// the flood is over it returns the bot started again.
func (g *replayRig) cutOff(a *app, method string, send func(), committed func() bool, what string, pending int) *app {
	t := g.t
	t.Helper()
	floodEnds := time.Now().Add(1500 * time.Millisecond)
	g.emu.Flood(method, 1500*time.Millisecond, 5)
	send()
	deadline := time.Now().Add(5 * time.Second)
	for !committed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !committed() {
		t.Fatalf("not committed before the stop: %s", what)
	}
	a.stop()
	if pending >= 0 {
		if n, err := openPending(t, g.dir); err != nil || n != pending {
			t.Fatalf("pending after the stop: %d (%v), want %d", n, err, pending)
		}
	}
	time.Sleep(time.Until(floodEnds))
	return g.start()
}

// tap presses u's latest button labelled label, without waiting for the
// answer (which the flood holds).
func (g *replayRig) tap(u bottest.User, label string) func() {
	return func() {
		msgID, data := buttonOf(g.t, g.emu, u, label)
		g.emu.PressButton(bottest.PrivateChat(u), u, msgID, data)
	}
}

// openPending counts the updates stored but not handled in dataDir.
func openPending(t *testing.T, dataDir string) (int, error) {
	t.Helper()
	db, err := openStoreAt(Config{DataDir: dataDir})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	p, err := db.InboxPending()
	return len(p), err
}

// A stop between a consent withdrawal's commit and its reply (the edit of
// the consent screen waiting out a 429) leaves the button's update pending.
// The replay finds the withdrawal it recorded: no second event, and it
// finishes what was left — the withdrawal ticket and the replies.
func TestConsentWithdrawalReplayedAfterAStop(t *testing.T) {
	g := newReplayRig(t, nil)
	a := g.start()
	a.say(alice, "/start")
	a.say(alice, "/consent")
	a.press(alice, "Get news and offers")

	b := g.cutOff(a, "editMessageText", g.tap(alice, "Withdraw consent: news"),
		func() bool { return len(marketingEvents(t, a, alice)) == 2 }, "the grant and the withdrawal", 1)
	b.waitText(alice.ID, 0, "already complete")
	b.idle()
	evs := marketingEvents(t, b, alice)
	if len(evs) != 2 || evs[1].Granted {
		t.Fatalf("marketing events after the replay: %+v, want one grant and one withdrawal", evs)
	}
	var withdrawals int
	for _, tk := range b.tickets(alice) {
		if tk.Kind == valex.KindConsentWithdrawal {
			withdrawals++
			if tk.Status != valex.StatusDone {
				t.Errorf("withdrawal ticket #%d is %s, want done", tk.ID, tk.Status)
			}
		}
	}
	if withdrawals != 1 {
		t.Fatalf("%d withdrawal tickets after the replay, want 1", withdrawals)
	}
}

func marketingEvents(t *testing.T, a *app, u bottest.User) []valex.ConsentEvent {
	t.Helper()
	cs, _, err := a.m.DB.ConsentEvents(u.ID)
	if err != nil {
		t.Fatal(err)
	}
	var out []valex.ConsentEvent
	for _, e := range cs {
		if e.Kind == valex.ConsentMarketing {
			out = append(out, e)
		}
	}
	return out
}

// A stop between a breach notice's commit and the admin's reply (the edit
// of the preview waiting out a 429) leaves the "Send" update pending. After
// the restart the broadcast resumes from its deliveries and the replayed
// update finds the notice it started: one notice, each affected user told
// once, and the admin gets the reply.
func TestBreachSendReplayedAfterAStop(t *testing.T) {
	g := newReplayRig(t, nil)
	a := g.start()
	for _, u := range []bottest.User{alice, boris, admin} {
		a.say(u, "/start")
	}
	a.breach(admin, "Some email addresses were exposed on March 3.", fmt.Sprintf("%d,%d", alice.ID, boris.ID))

	b := g.cutOff(a, "editMessageText", g.tap(admin, "Send"),
		func() bool { return noticeExists(t, a, 1) }, "the notice", 1)
	b.waitText(admin.ID, 0, "is on its way")
	b.waitText(admin.ID, 0, "delivered,")
	b.idle()
	if noticeExists(t, b, 2) {
		t.Fatal("the replayed Send started a second notice")
	}
	for _, u := range []bottest.User{alice, boris} {
		n := 0
		for _, e := range g.emu.EventsFor(u.ID) {
			if e.OK() && e.Method == "sendMessage" && strings.Contains(e.Text, "Some email addresses were exposed") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("user %d got the breach notice %d times, want once", u.ID, n)
		}
	}
}

func noticeExists(t *testing.T, a *app, id uint64) bool {
	t.Helper()
	_, err := a.m.DB.Notice(id)
	return err == nil
}

// A stop between an erasure's commit and its reply (the edit of the
// confirmation waiting out a 429): the erasure is whole, and the pending
// tap, sealed with the erased key, is unreadable and dropped — nothing of
// the account comes back and nothing is opened again. A second tap on
// "Yes" is told the account is already deleted.
func TestErasureCutOffByAStop(t *testing.T) {
	g := newReplayRig(t, nil)
	a := g.start()
	a.say(alice, "/start")
	a.say(alice, "/forget")

	// The tap's update is not counted: sealed with the erased key, it is
	// dropped when the store is opened.
	b := g.cutOff(a, "editMessageText", g.tap(alice, "Yes, delete everything"),
		func() bool { return !userExists(t, a, alice) }, "the erasure", -1)
	b.idle()
	if userExists(t, b, alice) {
		t.Fatal("the restart registered the erased user again")
	}
	if _, err := b.m.DB.Ticket(2); err == nil {
		t.Fatal("the restart opened a second ticket")
	}
	contains(t, b.press(alice, "Yes, delete everything"), "already deleted")
}

func userExists(t *testing.T, a *app, u bottest.User) bool {
	t.Helper()
	_, err := a.m.DB.User(u.ID)
	return err == nil
}

// A stop between a payment's commit (record and credits) and its
// confirmation (waiting out a 429) leaves the successful_payment update
// pending. The replay finds the payment recorded by that same update:
// credited once, and the confirmation arrives.
func TestPaymentReplayedAfterAStop(t *testing.T) {
	aisv := aitest.New()
	defer aisv.Close()
	g := newReplayRig(t, func(c *Config) {
		c.AI = demoAIConfig(aisv.URL())
		c.Payments.FreeDailyCredits = 0
	})
	u := bottest.User{ID: 7601, FirstName: "Pia", LanguageCode: "en"}
	a := g.start()
	a.say(u, "/start")
	a.say(u, "/plans")
	seq := a.lastSeq()
	a.press(u, "Buy 100 credits")
	payload := a.next(u.ID, seq, "sendInvoice").Params.Get("payload")

	balance := func(a *app) int64 {
		w, err := a.m.DB.Wallet(u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return w.Balance
	}
	paid := func() {
		g.emu.SendRaw(json.RawMessage(fmt.Sprintf(`{"message":{"message_id":9901,"date":1767225600,"chat":{"id":%d,"type":"private"},"from":{"id":%d,"is_bot":false,"first_name":"Pia"},
		"successful_payment":{"currency":"XTR","total_amount":100,"invoice_payload":%q,"telegram_payment_charge_id":"stx-replay-1","provider_payment_charge_id":""}}}`,
			u.ID, u.ID, payload)))
	}
	b := g.cutOff(a, "sendMessage", paid, func() bool { return balance(a) == 100*ai.MicroCredits }, "the 100 credits", 1)
	contains(t, b.waitText(u.ID, 0, "credits added"), "100 credits added", "stx-replay-1")
	b.idle()
	if got := balance(b); got != 100*ai.MicroCredits {
		t.Fatalf("balance %d after the replay, want 100 credits once", got)
	}
	if ps, _ := b.m.DB.Payments(u.ID); len(ps) != 1 {
		t.Fatalf("%d payment records after the replay, want 1", len(ps))
	}
}
