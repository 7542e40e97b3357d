package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/jobs"
)

// Buying credits with Telegram Stars, end to end over the emulator: with no
// allowance a question reaches no provider and the user is pointed to
// /plans; the invoice is in XTR; checkouts with a tampered payload, another
// payer or a changed price are refused with the reason; the same
// successful_payment delivered twice credits once; then questions are
// answered and charged their real cost, and a failed call costs nothing.
func TestBuyCreditsWithStars(t *testing.T) {
	aisv := aitest.New()
	t.Cleanup(aisv.Close)
	a := startApp(t, func(c *Config) {
		c.AI = demoAIConfig(aisv.URL())
		c.Payments.FreeDailyCredits = 0
	})
	u := bottest.User{ID: 7501, FirstName: "Pia", LanguageCode: "en"}
	other := bottest.User{ID: 7502, FirstName: "Olaf", LanguageCode: "en"}
	a.say(u, "/start")
	a.say(other, "/start")
	a.say(u, "hello")
	a.press(u, "I agree")
	a.idle()
	if aisv.Count() != 0 {
		t.Fatal("a question on an empty wallet reached the provider")
	}
	contains(t, a.lastTo(u.ID), "no credits left", "/plans")

	a.press(u, "Plans")
	seq := a.lastSeq()
	a.press(u, "Buy 100 credits")
	inv := a.next(u.ID, seq, "sendInvoice")
	if inv.Params.Get("currency") != "XTR" || inv.Params.Get("provider_token") != "" || !strings.Contains(inv.Params.Get("prices"), `"amount":100`) {
		t.Fatalf("invoice params = %v", inv.Params)
	}
	payload := inv.Params.Get("payload")

	checkout := func(from bottest.User, payload string, total int) bottest.Event {
		t.Helper()
		seq := a.lastSeq()
		a.emu.SendPreCheckout(from, payload, "XTR", total)
		e := a.next(0, seq, "answerPreCheckoutQuery")
		a.idle()
		return e
	}
	for _, tc := range []struct {
		name, payload string
		from          bottest.User
		total         int
		reason        string
	}{
		{"tampered payload", strings.Replace(payload, "credits_100", "credits_500", 1), u, 100, "not issued by this bot"},
		{"another payer", payload, other, 100, "issued to someone else"},
		{"changed price", payload, u, 50, "price of this pack has changed"},
	} {
		if e := checkout(tc.from, tc.payload, tc.total); !strings.Contains(e.Text, tc.reason) {
			t.Errorf("%s: answered %q, want a refusal saying %q", tc.name, e.Text, tc.reason)
		}
	}
	if e := checkout(u, payload, 100); e.Text != "" || e.Params.Get("ok") != "true" {
		t.Fatalf("a good checkout: %q %v", e.Text, e.Params)
	}

	// The same successful_payment twice (a replay): recorded and credited once.
	paid := fmt.Sprintf(`{"message":{"message_id":%%d,"date":1767225600,"chat":{"id":%d,"type":"private"},"from":{"id":%d,"is_bot":false,"first_name":"Pia"},
		"successful_payment":{"currency":"XTR","total_amount":100,"invoice_payload":%q,"telegram_payment_charge_id":"stx-charge-1","provider_payment_charge_id":""}}}`,
		u.ID, u.ID, payload)
	seq = a.lastSeq()
	a.emu.SendRaw(json.RawMessage(fmt.Sprintf(paid, 9901)))
	a.waitText(u.ID, seq, "100 credits added")
	a.emu.SendRaw(json.RawMessage(fmt.Sprintf(paid, 9902)))
	a.idle()
	thanks := 0
	for _, e := range a.emu.EventsFor(u.ID) {
		if strings.Contains(e.Text, "credits added") {
			thanks++
		}
	}
	w, _ := a.m.DB.Wallet(u.ID)
	if thanks != 1 || w.Balance != 100*ai.MicroCredits {
		t.Fatalf("after the payment twice: %d confirmations, balance %d", thanks, w.Balance)
	}
	if ps, _ := a.m.DB.Payments(u.ID); len(ps) != 1 || ps[0].ChargeID != "stx-charge-1" || ps[0].Currency != "XTR" || ps[0].Status != valex.PaymentPaid {
		t.Fatalf("payment records = %+v", ps)
	}

	// Credits pay for answers, at their real cost.
	aisv.Script("gpt-4o-mini", aitest.Step{Text: "Hello, Pia."})
	a.say(u, "hello again")
	a.idle()
	after, _ := a.m.DB.Wallet(u.ID)
	usage, _ := a.m.DB.UsageSince(u.ID, time.Time{})
	if len(usage) != 1 || after.Balance != w.Balance-usage[0].Cost || usage[0].Cost <= 0 || after.Reserved != 0 {
		t.Fatalf("balance %d → %d for usage %+v (reserved %d)", w.Balance, after.Balance, usage, after.Reserved)
	}
	// The user's own daily limit stops the next call, whatever the balance.
	contains(t, a.say(u, "/limits 0.0001"), "Your daily limit")
	calls := aisv.Count()
	contains(t, a.say(u, "one more"), "daily spending limit you set")
	if aisv.Count() != calls {
		t.Fatal("a call past the user's limit reached the provider")
	}
	contains(t, a.say(u, "/limits off"), "no daily limit")

	// A failed call costs nothing.
	for _, m := range a.m.Config.AI.Models { // every model, fallbacks included, by its provider's name
		for range 5 {
			aisv.Script(m.ID, aitest.Step{Status: 500})
			aisv.Script(m.Name, aitest.Step{Status: 500})
		}
	}
	a.say(u, "this will fail")
	a.idle()
	if failed, _ := a.m.DB.Wallet(u.ID); failed.Balance != after.Balance || failed.Reserved != 0 {
		t.Fatalf("a failed call changed the wallet: %+v → %+v; bot said %q", after, failed, a.lastTo(u.ID).Text)
	}
	contains(t, a.lastTo(u.ID), "Nothing was charged")

	// An admin refunds it: Telegram refunds the stars, the credits go, the
	// user is told; a second refund is refused.
	a.emu.AddStarCharge(u.ID, "stx-charge-1", 100)
	a.say(admin, "/start")
	granted := a.say(admin, fmt.Sprintf("/grant %d 5", u.ID))
	contains(t, granted, "got 5 credits")
	before, _ := a.m.DB.Wallet(u.ID)
	contains(t, a.say(admin, "/refund stx-charge-1"), "Refunded 100 ⭐")
	if !a.emu.StarRefunded("stx-charge-1") {
		t.Fatal("Telegram was not asked to refund the stars")
	}
	refunded, _ := a.m.DB.Wallet(u.ID)
	if refunded.Balance != max(0, before.Balance-100*ai.MicroCredits) {
		t.Fatalf("balance %d → %d after refunding 100 credits", before.Balance, refunded.Balance)
	}
	contains(t, a.lastTo(u.ID), "has been refunded")
	contains(t, a.say(admin, "/refund stx-charge-1"), "refunded already")
	contains(t, a.say(admin, fmt.Sprintf("/payments %d", u.ID)), "stx-charge-1", "refunded")
	contains(t, a.say(admin, fmt.Sprintf("/grant %d pro 7", u.ID)), "pro plan until")
	if w, _ := a.m.DB.Wallet(u.ID); w.PlanOf(time.Now()) != "pro" {
		t.Fatalf("granted plan = %+v", w)
	}
	contains(t, a.say(u, "/model"), "gpt-4o") // the pro model is offered now

	// The access export lists the payment; erasing the account keeps the
	// record (the law wants it) under a stand-in that is not the user.
	data, _, _ := a.exportOf(u)
	if !strings.Contains(string(data["payments"]), "stx-charge-1") || !strings.Contains(string(data["wallet"]), "bought_credits_left") {
		t.Fatalf("export payments = %s, wallet = %s", data["payments"], data["wallet"])
	}
	a.say(u, "/forget")
	a.press(u, "Yes, delete everything")
	a.idle()
	kept, err := a.m.DB.Payment("stx-charge-1")
	if err != nil || kept.UserID == u.ID || kept.UserID >= 0 || kept.Amount != 100 {
		t.Fatalf("payment after the erasure: %+v, %v", kept, err)
	}
}

// valex payments export writes the period's payment records as CSV.
func TestPaymentsExportCSV(t *testing.T) {
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	db, err := openStoreAt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.EnsureUser(valex.User{ID: 11, Language: "en"}); err != nil {
		t.Fatal(err)
	}
	for i, at := range []time.Time{time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)} {
		if _, _, err := db.RecordPayment(valex.Payment{ChargeID: fmt.Sprint("c", i), UserID: 11, Method: valex.PaymentStars,
			Product: "credits_100", Credits: 100 * ai.MicroCredits, Amount: 100, Currency: "XTR", Status: valex.PaymentPaid, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	var out strings.Builder
	env := envFrom(map[string]string{"VALEX_DATA_DIR": cfg.DataDir})
	if err := run(context.Background(), []string{"payments", "export", "--from", "2026-02-01", "--to", "2026-02-28"}, nil, &out, &out, env); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "date_utc,telegram_charge_id") || !strings.Contains(lines[1], "2026-02-01T00:00:00Z,c1,,11,telegram_stars,credits_100,100,XTR,100,paid") {
		t.Fatalf("csv:\n%s", out.String())
	}
}

// A monthly Stars subscription: the invoice link has Telegram's one
// period; the payment (with its expiration date) sets the plan until then;
// cancelling stops the renewal through editUserStarSubscription; the
// renewal reminder goes once, 3 days before the end; after the end the
// user is back on the free plan.
func TestStarsSubscription(t *testing.T) {
	aisv := aitest.New()
	t.Cleanup(aisv.Close)
	a := startApp(t, func(c *Config) { c.AI = demoAIConfig(aisv.URL()) })
	u := bottest.User{ID: 7601, FirstName: "Sol", LanguageCode: "en"}
	a.say(u, "/start")
	a.say(u, "/plans")
	seq := a.lastSeq()
	a.press(u, "Subscribe to pro")
	link := a.next(0, seq, "createInvoiceLink")
	if link.Params.Get("subscription_period") != "2592000" || link.Params.Get("currency") != "XTR" {
		t.Fatalf("createInvoiceLink params = %v", link.Params)
	}
	offer := a.lastTo(u.ID)
	if len(offer.Keyboard) == 0 || !strings.HasPrefix(offer.Keyboard[0][0].URL, "https://t.me/") {
		t.Fatalf("the offer has no payment link: %+v", offer)
	}
	payload := link.Params.Get("payload")
	seq = a.lastSeq()
	a.emu.SendPreCheckout(u, payload, "XTR", 500)
	if e := a.next(0, seq, "answerPreCheckoutQuery"); e.Params.Get("ok") != "true" {
		t.Fatalf("subscription checkout refused: %q", e.Text)
	}
	ends := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second).UTC()
	a.emu.AddStarCharge(u.ID, "stx-sub-1", 500)
	seq = a.lastSeq()
	a.emu.SendRaw(json.RawMessage(fmt.Sprintf(`{"message":{"message_id":9950,"date":1767225600,"chat":{"id":%d,"type":"private"},"from":{"id":%d,"is_bot":false,"first_name":"Sol"},
		"successful_payment":{"currency":"XTR","total_amount":500,"invoice_payload":%q,"telegram_payment_charge_id":"stx-sub-1","provider_payment_charge_id":"",
		"subscription_expiration_date":%d,"is_recurring":true,"is_first_recurring":true}}}`, u.ID, u.ID, payload, ends.Unix())))
	a.waitText(u.ID, seq, "plan runs until "+ends.Format("2006-01-02"))
	a.idle()
	w, _ := a.m.DB.Wallet(u.ID)
	if w.PlanOf(time.Now()) != "pro" || !w.PlanEnds.Equal(ends) || w.PlanCharge != "stx-sub-1" {
		t.Fatalf("wallet after subscribing = %+v", w)
	}

	contains(t, a.say(u, "/subscription"), "pro until")
	a.press(u, "Cancel renewal")
	if !a.emu.StarSubscriptionCanceled("stx-sub-1") {
		t.Fatal("Telegram was not told to stop the renewal")
	}
	contains(t, a.lastTo(u.ID), "will not renew")

	remind := func(at time.Time) string {
		t.Helper()
		s, err := jobs.RenewalReminders(a.m.DB, a.m.renewalNotice, atClock{at})(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := remind(ends.Add(-4 * 24 * time.Hour)); !strings.Contains(s, "sent 0") {
		t.Fatalf("4 days before: %s", s)
	}
	if s := remind(ends.Add(-2 * 24 * time.Hour)); !strings.Contains(s, "sent 1") {
		t.Fatalf("2 days before: %s", s)
	}
	a.idle()
	contains(t, a.lastTo(u.ID), "ends on "+ends.Format("2006-01-02"))
	if s := remind(ends.Add(-1 * 24 * time.Hour)); !strings.Contains(s, "sent 0") {
		t.Fatalf("the reminder went twice: %s", s)
	}
	// After a restart (the files reopened by a new process) it stays sent.
	a.stop()
	db, err := openStoreAt(a.m.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	again := 0
	s, err := jobs.RenewalReminders(db, func(context.Context, valex.Wallet) error { again++; return nil }, atClock{ends.Add(-12 * time.Hour)})(context.Background())
	if err != nil || again != 0 {
		t.Fatalf("after a restart the reminder went again: %s, %v", s, err)
	}
	if w, _ := db.Wallet(u.ID); w.PlanOf(ends.Add(time.Second)) != valex.PlanFree {
		t.Fatal("the plan outlived its period")
	}
}

// A private bot answers only staff and the users admins allow-list.
func TestPrivateBotAllowList(t *testing.T) {
	a := startApp(t, func(c *Config) { c.Telegram.Private = true })
	stranger := bottest.User{ID: 7801, FirstName: "Ned", LanguageCode: "en"}
	contains(t, a.say(stranger, "/start"), "This bot is private")
	if _, err := a.m.DB.User(stranger.ID); err == nil {
		t.Fatal("a stranger got an account on a private bot")
	}
	contains(t, a.say(admin, "/start"), "Welcome")
	contains(t, a.say(admin, fmt.Sprintf("/allow %d", stranger.ID)), "may use the bot")
	contains(t, a.say(stranger, "/start"), "Welcome")
	contains(t, a.say(admin, fmt.Sprintf("/disallow %d", stranger.ID)), "off the allow-list")
	contains(t, a.say(stranger, "/help"), "This bot is private")
}

// Telegram Payments with a provider token, for operators whose goods allow
// it: an invoice in rubles with the token, checked and credited like Stars.
func TestBuyCreditsWithProviderToken(t *testing.T) {
	a := startApp(t, func(c *Config) { c.Payments.ProviderToken = "284685063:TEST:provider" })
	u := bottest.User{ID: 7901, FirstName: "Ira", LanguageCode: "en"}
	a.say(u, "/start")
	a.say(u, "/plans")
	seq := a.lastSeq()
	a.press(u, "Pay 199 ₽ in Telegram")
	inv := a.next(u.ID, seq, "sendInvoice")
	if inv.Params.Get("currency") != "RUB" || inv.Params.Get("provider_token") == "" || !strings.Contains(inv.Params.Get("prices"), `"amount":19900`) {
		t.Fatalf("invoice = %v", inv.Params)
	}
	payload := inv.Params.Get("payload")
	seq = a.lastSeq()
	a.emu.SendPreCheckout(u, payload, "RUB", 9900)
	if e := a.next(0, seq, "answerPreCheckoutQuery"); !strings.Contains(e.Text, "price of this pack has changed") {
		t.Fatalf("a checkout at the wrong price: %q", e.Text)
	}
	seq = a.lastSeq()
	a.emu.SendPreCheckout(u, payload, "RUB", 19900)
	if e := a.next(0, seq, "answerPreCheckoutQuery"); e.Params.Get("ok") != "true" {
		t.Fatalf("checkout refused: %q", e.Text)
	}
	seq = a.lastSeq()
	a.emu.SendSuccessfulPayment(bottest.PrivateChat(u), u, payload, "RUB", 19900, "provider-charge-1")
	a.waitText(u.ID, seq, "100 credits added")
	ps, _ := a.m.DB.Payments(u.ID)
	if len(ps) != 1 || ps[0].Method != valex.PaymentTelegramProvider || ps[0].Amount != 19900 || ps[0].ProviderChargeID != "provider-charge-1" {
		t.Fatalf("payments = %+v", ps)
	}
}

// With payments.cheaper_model set, a turn the wallet cannot pay for on the
// user's model runs on the cheaper one, and the user is told.
func TestCheaperModelWhenCreditsRunLow(t *testing.T) {
	aisv := aitest.New()
	t.Cleanup(aisv.Close)
	a := startApp(t, func(c *Config) {
		c.AI = demoAIConfig(aisv.URL())
		c.Payments.FreeDailyCredits = 0.09 // pays for a gpt-4o-mini answer, not a deepseek-chat one
		c.Payments.CheaperModel = "gpt-4o-mini"
	})
	u := bottest.User{ID: 7951, FirstName: "Uma", LanguageCode: "en"}
	a.say(u, "/start")
	a.say(u, "/model")
	a.press(u, "deepseek-chat")
	a.say(u, "hello")
	a.press(u, "I agree")
	a.idle()
	reqs := aisv.Requests()
	if len(reqs) != 1 || reqs[0].Model != "gpt-4o-mini" {
		t.Fatalf("requests = %+v; want one to gpt-4o-mini", reqs)
	}
	found := false
	for _, e := range a.emu.EventsFor(u.ID) {
		found = found || strings.Contains(e.Text, "this answer comes from gpt-4o-mini")
	}
	if !found {
		t.Fatal("the user was not told the answer came from the cheaper model")
	}
}

// The hold covers the longest answer the provider may send: a wallet that
// pays for it gets the model's max_tokens; one that pays only for a short
// answer gets max_tokens lowered to what its hold covers, and is told.
func TestHoldCoversTheLongestAnswer(t *testing.T) {
	for _, tt := range []struct {
		name      string
		free      float64 // credits a day
		maxTokens int
		told      bool
	}{
		{"pays for a whole answer", 1.0, 4096, false}, // 4,096 tokens of gpt-4o-mini: 0.25 credits
		{"pays for a short one", 0.09, 1024, true},    // 1,024 tokens: 0.06
	} {
		t.Run(tt.name, func(t *testing.T) {
			aisv := aitest.New()
			t.Cleanup(aisv.Close)
			a := startApp(t, func(c *Config) {
				c.AI = demoAIConfig(aisv.URL())
				c.Payments.FreeDailyCredits = tt.free
			})
			u := bottest.User{ID: 7961, FirstName: "Vera", LanguageCode: "en"}
			a.say(u, "/start")
			a.say(u, "hello")
			a.press(u, "I agree")
			a.idle()
			reqs := aisv.Requests()
			if len(reqs) != 1 || reqs[0].MaxTokens != tt.maxTokens {
				t.Fatalf("requests = %+v; want one with max_tokens %d", reqs, tt.maxTokens)
			}
			told := false
			for _, e := range a.emu.EventsFor(u.ID) {
				told = told || strings.Contains(e.Text, "shorter answer")
			}
			if told != tt.told {
				t.Fatalf("told of a shorter answer: %v, want %v", told, tt.told)
			}
		})
	}
}
