package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/yookassa"
	"github.com/valex-ai/valex/yookassa/yookassatest"
)

// Buying a pack by card through YooKassa's API (its emulator): the payment
// is created with an Idempotence-Key (the same key twice makes one
// payment) and the receipt; the user gets YooKassa's page; a notification
// for a payment the API says is pending credits nothing; once the API says
// succeeded the credits arrive once, however many notifications come; a
// canceled payment is dropped and the user told.
func TestBuyCreditsWithYooKassa(t *testing.T) {
	yk := yookassatest.New("shop-42", "test-secret-key")
	t.Cleanup(yk.Close)
	a := startApp(t, func(c *Config) {
		c.Payments.YooKassaShopID, c.Payments.YooKassaSecretKey = "shop-42", "test-secret-key"
		c.Payments.YooKassaAPIURL = yk.URL()
		c.Payments.YooKassaReceipts = true
	})
	u := bottest.User{ID: 7701, FirstName: "Kira", LanguageCode: "en"}
	a.say(u, "/start")
	a.say(u, "/plans")
	contains(t, a.press(u, "Pay 199 ₽ by card"), "email or phone number for the receipt")
	if len(yk.Requests()) != 0 {
		t.Fatal("a payment was created without a receipt contact")
	}
	if _, err := a.m.DB.UpdateUser(u.ID, func(x *valex.User) error { x.Email = "kira@example.org"; return nil }); err != nil {
		t.Fatal(err)
	}
	a.say(u, "/plans")
	a.press(u, "Pay 199 ₽ by card")
	page := a.lastTo(u.ID)
	if len(page.Keyboard) == 0 || !strings.HasPrefix(page.Keyboard[0][0].URL, "https://yoomoney.ru/checkout/") {
		t.Fatalf("no payment page: %+v", page)
	}
	reqs := yk.Requests()
	if len(reqs) != 1 || reqs[0].Key == "" || reqs[0].Body.Amount != yookassa.RUB(19900) || reqs[0].Body.Receipt == nil ||
		reqs[0].Body.Receipt.Customer.Email != "kira@example.org" || !reqs[0].Body.Capture {
		t.Fatalf("create-payment requests = %+v", reqs)
	}
	// The same idempotence key (a replayed update) makes no second payment.
	me, _ := a.m.DB.User(u.ID)
	if _, err := a.m.YooKassa.Start(context.Background(), me, "credits_100", reqs[0].Key); err != nil {
		t.Fatal(err)
	}
	if n := len(yk.Payments()); n != 1 {
		t.Fatalf("%d payments after a replay, want 1", n)
	}
	id := yk.Payments()[0].ID

	notify := httptest.NewServer(a.m.YooKassa.NotificationHandler())
	t.Cleanup(notify.Close)
	post := func(id string) {
		t.Helper()
		resp, err := http.Post(notify.URL, "application/json", strings.NewReader(`{"type":"notification","event":"payment.succeeded","object":{"id":"`+id+`","status":"succeeded","paid":true}}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("notification answered %d", resp.StatusCode)
		}
		a.idle()
	}
	post(id) // the body says succeeded; the API says pending
	if w, _ := a.m.DB.Wallet(u.ID); w.Balance != 0 {
		t.Fatalf("a notification for a pending payment credited %d", w.Balance)
	}
	yk.Succeed(id)
	post(id)
	post(id)
	w, _ := a.m.DB.Wallet(u.ID)
	thanks := 0
	for _, e := range a.emu.EventsFor(u.ID) {
		if strings.Contains(e.Text, "credits added") {
			thanks++
		}
	}
	if w.Balance != 100*ai.MicroCredits || thanks != 1 {
		t.Fatalf("balance %d, %d confirmations after success and two notifications", w.Balance, thanks)
	}
	if ps, _ := a.m.DB.Payments(u.ID); len(ps) != 1 || ps[0].Method != valex.PaymentYooKassa || ps[0].Currency != "RUB" || ps[0].Amount != 19900 {
		t.Fatalf("payment records = %+v", ps)
	}

	// An admin refunds it through YooKassa's refunds API.
	a.say(admin, "/start")
	contains(t, a.say(admin, "/refund yookassa:"+id), "Refunded 199 ₽")
	if rs := yk.Refunds(); len(rs) != 1 || rs[0].PaymentID != id || rs[0].Amount != yookassa.RUB(19900) {
		t.Fatalf("refunds = %+v", rs)
	}
	w, _ = a.m.DB.Wallet(u.ID)
	if w.Balance != 0 {
		t.Fatalf("balance after the refund = %d", w.Balance)
	}

	// A canceled payment: dropped, the user told, nothing credited.
	a.say(u, "/plans")
	a.press(u, "Pay 899 ₽ by card")
	second := yk.Payments()[1].ID
	yk.Cancel(second)
	if err := a.m.YooKassa.Check(context.Background(), second); err != nil {
		t.Fatal(err)
	}
	a.idle()
	contains(t, a.lastTo(u.ID), "did not go through")
	if pend, _ := a.m.DB.PendingPayments(time.Time{}); len(pend) != 0 {
		t.Fatalf("%d payments still waiting", len(pend))
	}
	if after, _ := a.m.DB.Wallet(u.ID); after.Balance != w.Balance {
		t.Fatalf("a canceled payment changed the balance: %d → %d", w.Balance, after.Balance)
	}
}
