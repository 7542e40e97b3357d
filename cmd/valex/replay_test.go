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
	emu, err := bottest.New(bottest.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dir := t.TempDir()
	// A grace period shorter than the wait: the stop cuts the reply off,
	// as a crash or a deploy would.
	short := func(c *Config) { c.Telegram.Shutdown = Duration{time.Second} }
	a := startAppOn(t, emu, dir, short, nil)
	a.say(alice, "/start")

	// Every message refused for 1.5 s, told to wait 5 s: the reply to the
	// ticket is still waiting when the bot stops.
	floodEnds := time.Now().Add(1500 * time.Millisecond)
	emu.Flood("sendMessage", 1500*time.Millisecond, 5)
	seq := a.lastSeq()
	emu.SendText(bottest.PrivateChat(alice), alice, "/support my invoice is wrong")
	deadline := time.Now().Add(5 * time.Second)
	for len(a.tickets(alice)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(a.tickets(alice)); n != 1 {
		t.Fatalf("%d tickets before the stop", n)
	}
	a.stop()
	if pending, err := openPending(t, dir); err != nil || pending != 1 {
		t.Fatalf("pending after the stop: %d (%v), want the /support update", pending, err)
	}

	time.Sleep(time.Until(floodEnds))
	b := startAppOn(t, emu, dir, short, nil)
	b.waitText(alice.ID, seq, "registered")
	b.idle()
	if ts := b.tickets(alice); len(ts) != 1 {
		t.Fatalf("%d tickets after the replay, want 1", len(ts))
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
	emu, err := bottest.New(bottest.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dir := t.TempDir()
	short := func(c *Config) { c.Telegram.Shutdown = Duration{time.Second} }
	a := startAppOn(t, emu, dir, short, nil)
	a.say(alice, "/start")
	a.say(alice, "/consent")
	a.press(alice, "Get news and offers")

	floodEnds := time.Now().Add(1500 * time.Millisecond)
	emu.Flood("editMessageText", 1500*time.Millisecond, 5)
	msgID, data := buttonOf(t, emu, alice, "Withdraw consent: news")
	emu.PressButton(bottest.PrivateChat(alice), alice, msgID, data)
	deadline := time.Now().Add(5 * time.Second)
	for len(marketingEvents(t, a, alice)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(marketingEvents(t, a, alice)); n != 2 {
		t.Fatalf("%d marketing consent events before the stop, want the grant and the withdrawal", n)
	}
	a.stop()
	if pending, err := openPending(t, dir); err != nil || pending != 1 {
		t.Fatalf("pending after the stop: %d (%v), want the button's update", pending, err)
	}

	time.Sleep(time.Until(floodEnds))
	b := startAppOn(t, emu, dir, short, nil)
	seq := 0
	b.waitText(alice.ID, seq, "already complete")
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

// buttonOf finds the latest button in u's chat whose label contains label.
func buttonOf(t *testing.T, emu *bottest.Server, u bottest.User, label string) (int, string) {
	t.Helper()
	msgs := emu.Messages(u.ID)
	for i := len(msgs) - 1; i >= 0; i-- {
		for _, row := range msgs[i].Keyboard {
			for _, b := range row {
				if strings.Contains(b.Text, label) && b.Data != "" {
					return msgs[i].ID, b.Data
				}
			}
		}
	}
	t.Fatalf("no button %q in chat %d", label, u.ID)
	return 0, ""
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
	emu, err := bottest.New(bottest.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dir := t.TempDir()
	short := func(c *Config) { c.Telegram.Shutdown = Duration{time.Second} }
	a := startAppOn(t, emu, dir, short, nil)
	for _, u := range []bottest.User{alice, boris, admin} {
		a.say(u, "/start")
	}
	a.breach(admin, "Some email addresses were exposed on March 3.", fmt.Sprintf("%d,%d", alice.ID, boris.ID))

	floodEnds := time.Now().Add(1500 * time.Millisecond)
	emu.Flood("editMessageText", 1500*time.Millisecond, 5)
	msgID, data := buttonOf(t, emu, admin, "Send")
	emu.PressButton(bottest.PrivateChat(admin), admin, msgID, data)
	deadline := time.Now().Add(5 * time.Second)
	for !noticeExists(t, a, 1) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !noticeExists(t, a, 1) {
		t.Fatal("the notice was not recorded before the stop")
	}
	a.stop()
	if pending, err := openPending(t, dir); err != nil || pending != 1 {
		t.Fatalf("pending after the stop: %d (%v), want the Send button's update", pending, err)
	}

	time.Sleep(time.Until(floodEnds))
	b := startAppOn(t, emu, dir, short, nil)
	b.waitText(admin.ID, 0, "is on its way")
	b.waitText(admin.ID, 0, "delivered,")
	b.idle()
	if noticeExists(t, b, 2) {
		t.Fatal("the replayed Send started a second notice")
	}
	for _, u := range []bottest.User{alice, boris} {
		n := 0
		for _, e := range emu.EventsFor(u.ID) {
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
	emu, err := bottest.New(bottest.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dir := t.TempDir()
	short := func(c *Config) { c.Telegram.Shutdown = Duration{time.Second} }
	a := startAppOn(t, emu, dir, short, nil)
	a.say(alice, "/start")
	a.say(alice, "/forget")

	floodEnds := time.Now().Add(1500 * time.Millisecond)
	emu.Flood("editMessageText", 1500*time.Millisecond, 5)
	msgID, data := buttonOf(t, emu, alice, "Yes, delete everything")
	emu.PressButton(bottest.PrivateChat(alice), alice, msgID, data)
	deadline := time.Now().Add(5 * time.Second)
	for userExists(t, a, alice) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if userExists(t, a, alice) {
		t.Fatal("the account was not erased before the stop")
	}
	a.stop()

	time.Sleep(time.Until(floodEnds))
	b := startAppOn(t, emu, dir, short, nil)
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
	emu, err := bottest.New(bottest.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	aisv := aitest.New()
	defer aisv.Close()
	dir := t.TempDir()
	tweak := func(c *Config) {
		c.Telegram.Shutdown = Duration{time.Second}
		c.AI = demoAIConfig(aisv.URL())
		c.Payments.FreeDailyCredits = 0
	}
	u := bottest.User{ID: 7601, FirstName: "Pia", LanguageCode: "en"}
	a := startAppOn(t, emu, dir, tweak, nil)
	a.say(u, "/start")
	a.say(u, "/plans")
	seq := a.lastSeq()
	a.press(u, "Buy 100 credits")
	payload := a.next(u.ID, seq, "sendInvoice").Params.Get("payload")

	floodEnds := time.Now().Add(1500 * time.Millisecond)
	emu.Flood("sendMessage", 1500*time.Millisecond, 5)
	emu.SendRaw(json.RawMessage(fmt.Sprintf(`{"message":{"message_id":9901,"date":1767225600,"chat":{"id":%d,"type":"private"},"from":{"id":%d,"is_bot":false,"first_name":"Pia"},
		"successful_payment":{"currency":"XTR","total_amount":100,"invoice_payload":%q,"telegram_payment_charge_id":"stx-replay-1","provider_payment_charge_id":""}}}`,
		u.ID, u.ID, payload)))
	balance := func(a *app) int64 {
		w, err := a.m.DB.Wallet(u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return w.Balance
	}
	deadline := time.Now().Add(5 * time.Second)
	for balance(a) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if balance(a) != 100*ai.MicroCredits {
		t.Fatalf("balance %d before the stop, want the 100 credits", balance(a))
	}
	a.stop()
	if pending, err := openPending(t, dir); err != nil || pending != 1 {
		t.Fatalf("pending after the stop: %d (%v), want the payment's update", pending, err)
	}

	time.Sleep(time.Until(floodEnds))
	b := startAppOn(t, emu, dir, tweak, nil)
	contains(t, b.waitText(u.ID, 0, "credits added"), "100 credits added", "stx-replay-1")
	b.idle()
	if got := balance(b); got != 100*ai.MicroCredits {
		t.Fatalf("balance %d after the replay, want 100 credits once", got)
	}
	if ps, _ := b.m.DB.Payments(u.ID); len(ps) != 1 {
		t.Fatalf("%d payment records after the replay, want 1", len(ps))
	}
}
