package handlers

// Plans and payments: /plans lists the free tier, the credit packs and the
// subscriptions; a pack is bought with Telegram Stars (an invoice in XTR);
// the pre-checkout is answered only for a payload we signed, for this payer,
// at the price the pack has now; the successful payment is recorded by its
// charge id (twice delivered, credited once) and confirmed once.
// /subscription shows the wallet; /paysupport and /terms are what Telegram
// requires of bots that take payments.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// PaymentStore is the part of the store payments need.
type PaymentStore interface {
	Wallet(userID int64) (valex.Wallet, error)
	RecordPayment(p valex.Payment) (bool, valex.Wallet, error)
	Payment(charge string) (valex.Payment, error)
	Payments(userID int64) ([]valex.Payment, error)
	MarkRefunded(charge string) (valex.Payment, bool, error)
	AddCredits(userID, amount int64) (valex.Wallet, error)
	CancelRenewal(userID int64) error
	SetDailyCap(userID, cap int64) error
	GrantPlan(userID int64, plan string, ends time.Time) (valex.Wallet, error)
}

// PaymentOutbox sends invoices and answers checkouts.
type PaymentOutbox interface {
	Sender
	SendInvoice(ctx context.Context, inv bot.Invoice) (int, error)
	AnswerPreCheckout(ctx context.Context, queryID string, ok bool, errText string) error
	RefundStars(ctx context.Context, userID int64, chargeID string) error
	CreateSubscriptionLink(ctx context.Context, inv bot.Invoice) (string, error)
	CancelSubscription(ctx context.Context, userID int64, chargeID string) error
}

// Payments is the plans and payments feature.
type Payments struct {
	H     *Handlers
	Store PaymentStore
	Out   PaymentOutbox
	Plans valex.Plans
	// Payload signs invoice payloads (HMAC with a server secret): a
	// checkout is answered only for a payload we made.
	Payload    *bot.Signer
	SupportURL string // /paysupport
	TermsURL   string // /terms
	// YooKassa sells the packs with a ruble price by card; nil: Stars only.
	YooKassa YooKassaStarter
	// ProviderToken turns on Telegram Payments with a payment provider
	// (VALEX_PAYMENT_PROVIDER_TOKEN), for operators whose goods allow it:
	// packs with a ruble price get an invoice in RUB too.
	ProviderToken string
}

// YooKassaStarter creates a YooKassa payment and returns its page
// (payments.YooKassa).
type YooKassaStarter interface {
	Start(ctx context.Context, u valex.User, packID, key string) (string, error)
	Refund(ctx context.Context, pay valex.Payment) error
}

// The signed payload's prefix: a pack or a subscription.
const (
	payloadPack         = "pack"
	payloadPackRUB      = "packrub" // a pack through Telegram Payments with a provider
	payloadSubscription = "sub"
)

// Register routes the payment commands, buttons and updates.
func (p *Payments) Register(rt *bot.Router) {
	rt.Command("plans", valex.RoleUser, "cmd.plans", p.List)
	rt.Command("subscription", valex.RoleUser, "cmd.subscription", p.Wallet)
	rt.Command("paysupport", valex.RoleUser, "cmd.paysupport", p.PaySupport)
	rt.Command("terms", valex.RoleUser, "cmd.terms", p.Terms)
	rt.Command("limits", valex.RoleUser, "cmd.limits", p.Limits)
	rt.Callback(cbPlans, valex.RoleUser, p.Button)
	rt.On(bot.KindPreCheckout, p.PreCheckout)
	rt.On(bot.KindPayment, p.Paid)
	rt.InGroups("paysupport", "terms")
	// Admins (payments_admin.go).
	rt.Command("refund", valex.RoleAdmin, "cmd.refund", p.Refund)
	rt.Command("grant", valex.RoleAdmin, "cmd.grant", p.Grant)
	rt.Command("payments", valex.RoleAdmin, "cmd.payments", p.UserPayments)
}

func credit(lang string, micro int64) string { return credits(lang, micro) }

// List shows the plans with a button per pack.
func (p *Payments) List(ctx context.Context, r *bot.Request) error {
	if _, err := p.H.registered(r); err != nil {
		return err
	}
	h := p.H
	var b strings.Builder
	b.WriteString(h.t(r, "plans.title", map[string]any{"Free": credit(r.Lang, p.Plans.FreeDaily)}))
	var kb [][]bot.Button
	for _, k := range p.Plans.Packs {
		b.WriteString("\n" + h.t(r, "plans.pack", map[string]any{"Credits": credit(r.Lang, k.Credits), "Stars": k.Stars}))
		kb = append(kb, []bot.Button{{Text: h.t(r, "plans.btn_buy", map[string]any{"Credits": credit(r.Lang, k.Credits), "Stars": k.Stars}),
			Data: cbPlans.Data(h.CB, "buy", k.ID)}})
		if p.ProviderToken != "" && k.Kopecks > 0 {
			kb = append(kb, []bot.Button{{Text: h.t(r, "plans.btn_provider", map[string]any{"Credits": credit(r.Lang, k.Credits),
				"RUB": decimal(r.Lang, float64(k.Kopecks)/100, 2)}), Data: cbPlans.Data(h.CB, "rub", k.ID)}})
		}
		if p.YooKassa != nil && k.Kopecks > 0 {
			kb = append(kb, []bot.Button{{Text: h.t(r, "plans.btn_card", map[string]any{"Credits": credit(r.Lang, k.Credits),
				"RUB": decimal(r.Lang, float64(k.Kopecks)/100, 2)}), Data: cbPlans.Data(h.CB, "card", k.ID)}})
		}
	}
	for _, s := range p.Plans.Subscriptions {
		b.WriteString("\n" + h.t(r, "plans.subscription", map[string]any{"Plan": tghtml.Escape(s.ID), "Daily": credit(r.Lang, s.Daily), "Stars": s.Stars}))
		kb = append(kb, []bot.Button{{Text: h.t(r, "plans.btn_subscribe", map[string]any{"Plan": s.ID, "Stars": s.Stars}),
			Data: cbPlans.Data(h.CB, "sub", s.ID)}})
	}
	b.WriteString("\n\n" + h.t(r, "plans.footer", nil))
	return h.reply(ctx, r, b.String(), kb)
}

// Button handles /plans' buttons: the list again, or a pack's invoice.
func (p *Payments) Button(ctx context.Context, r *bot.Request) error {
	args := r.CallbackArgs
	switch {
	case len(args) == 1 && args[0] == "list":
		return p.List(ctx, r)
	case len(args) == 2 && args[0] == "buy":
		u, err := p.H.registered(r)
		if err != nil {
			return err
		}
		k, ok := p.Plans.Pack(args[1])
		if !ok {
			return valex.Errorf("pay.gone", nil)
		}
		credits := credit(r.Lang, k.Credits)
		_, err = p.Out.SendInvoice(ctx, bot.Invoice{
			ChatID: r.ChatID, ThreadID: r.ThreadID, Currency: bot.CurrencyStars,
			Title:       p.H.t(r, "pay.invoice_title", map[string]any{"Credits": credits}),
			Description: p.H.t(r, "pay.invoice_description", map[string]any{"Credits": credits}),
			Payload:     p.Payload.Data(payloadPack, k.ID, strconv.FormatInt(u.ID, 10), strconv.Itoa(k.Stars)),
			Prices:      []bot.Price{{Label: p.H.t(r, "pay.invoice_label", map[string]any{"Credits": credits}), Amount: k.Stars}},
		})
		return err
	case len(args) == 2 && args[0] == "rub" && p.ProviderToken != "":
		u, err := p.H.registered(r)
		if err != nil {
			return err
		}
		k, ok := p.Plans.Pack(args[1])
		if !ok || k.Kopecks <= 0 {
			return valex.Errorf("pay.gone", nil)
		}
		credits := credit(r.Lang, k.Credits)
		_, err = p.Out.SendInvoice(ctx, bot.Invoice{
			ChatID: r.ChatID, ThreadID: r.ThreadID, Currency: "RUB", ProviderToken: p.ProviderToken,
			Title:       p.H.t(r, "pay.invoice_title", map[string]any{"Credits": credits}),
			Description: p.H.t(r, "pay.invoice_description", map[string]any{"Credits": credits}),
			Payload:     p.Payload.Data(payloadPackRUB, k.ID, strconv.FormatInt(u.ID, 10), strconv.FormatInt(k.Kopecks, 10)),
			Prices:      []bot.Price{{Label: p.H.t(r, "pay.invoice_label", map[string]any{"Credits": credits}), Amount: int(k.Kopecks)}},
		})
		return err
	case len(args) == 2 && args[0] == "card" && p.YooKassa != nil:
		u, err := p.H.registered(r)
		if err != nil {
			return err
		}
		// The update that asked is the payment's idempotence key: a replay
		// finds the same payment, never a second one.
		page, err := p.YooKassa.Start(ctx, u, args[1], fmt.Sprintf("valex-%d-%d", u.ID, r.ID))
		if err != nil {
			return err
		}
		return p.H.reply(ctx, r, p.H.t(r, "pay.yk_page", nil), [][]bot.Button{{{Text: p.H.t(r, "pay.btn_yk_pay", nil), URL: page}}})
	case len(args) == 2 && args[0] == "sub":
		return p.subscribe(ctx, r, args[1])
	case len(args) == 1 && args[0] == "cancel":
		return p.cancel(ctx, r)
	}
	return valex.Errorf("error.bad_callback", nil)
}

// subscribe sends a link to a monthly Stars subscription (Telegram renews
// it every 30 days until the user or we cancel it).
func (p *Payments) subscribe(ctx context.Context, r *bot.Request, id string) error {
	u, err := p.H.registered(r)
	if err != nil {
		return err
	}
	s, ok := p.Plans.Subscription(id)
	if !ok {
		return valex.Errorf("pay.gone", nil)
	}
	link, err := p.Out.CreateSubscriptionLink(ctx, bot.Invoice{
		Title:       p.H.t(r, "pay.sub_title", map[string]any{"Plan": s.ID}),
		Description: p.H.t(r, "pay.sub_description", map[string]any{"Plan": s.ID, "Daily": credit(r.Lang, s.Daily)}),
		Payload:     p.Payload.Data(payloadSubscription, s.ID, strconv.FormatInt(u.ID, 10), strconv.Itoa(s.Stars)),
		Prices:      []bot.Price{{Label: p.H.t(r, "pay.sub_title", map[string]any{"Plan": s.ID}), Amount: s.Stars}},
	})
	if err != nil {
		return err
	}
	return p.H.reply(ctx, r, p.H.t(r, "pay.sub_link", map[string]any{"Plan": tghtml.Escape(s.ID), "Stars": s.Stars}),
		[][]bot.Button{{{Text: p.H.t(r, "pay.btn_sub_pay", map[string]any{"Stars": s.Stars}), URL: link}}})
}

// cancel stops the user's subscription from renewing; the period paid runs.
func (p *Payments) cancel(ctx context.Context, r *bot.Request) error {
	w, err := p.Store.Wallet(r.From.ID)
	if err != nil {
		return err
	}
	if w.PlanOf(p.H.Clock.Now()) == valex.PlanFree || w.Canceled || w.PlanCharge == "" {
		return valex.Errorf("pay.nothing_to_cancel", nil)
	}
	if err := p.Out.CancelSubscription(ctx, r.From.ID, w.PlanCharge); err != nil {
		return err
	}
	if err := p.Store.CancelRenewal(r.From.ID); err != nil {
		return err
	}
	return p.H.reply(ctx, r, p.H.t(r, "pay.sub_canceled", map[string]any{"Plan": tghtml.Escape(w.Plan), "Ends": valex.FormatDate(w.PlanEnds)}), nil)
}

// product is what a payment buys: a pack or a subscription.
type product struct {
	id, kind string
	stars    int
	credits  int64
}

// checkout verifies a payment's payload: ours, for this payer, for a pack
// or subscription that still exists at this price in Stars.
func (p *Payments) checkout(r *bot.Request) (product, error) {
	prefix, args, ok := p.Payload.Parse(r.Payload)
	if !ok || (prefix != payloadPack && prefix != payloadPackRUB && prefix != payloadSubscription) || len(args) != 3 {
		return product{}, valex.Errorf("pay.refused_payload", nil)
	}
	if args[1] != strconv.FormatInt(r.From.ID, 10) {
		return product{}, valex.Errorf("pay.refused_payer", nil)
	}
	var pr product
	switch prefix {
	case payloadPackRUB:
		k, found := p.Plans.Pack(args[0])
		if !found || k.Kopecks <= 0 || p.ProviderToken == "" {
			return product{}, valex.Errorf("pay.gone", nil)
		}
		if r.Currency != "RUB" || int64(r.TotalAmount) != k.Kopecks || args[2] != strconv.FormatInt(k.Kopecks, 10) {
			return product{}, valex.Errorf("pay.refused_price", nil)
		}
		return product{id: k.ID, kind: prefix, credits: k.Credits}, nil
	case payloadPack:
		k, found := p.Plans.Pack(args[0])
		if !found {
			return product{}, valex.Errorf("pay.gone", nil)
		}
		pr = product{id: k.ID, kind: prefix, stars: k.Stars, credits: k.Credits}
	default:
		s, found := p.Plans.Subscription(args[0])
		if !found {
			return product{}, valex.Errorf("pay.gone", nil)
		}
		pr = product{id: s.ID, kind: prefix, stars: s.Stars}
	}
	if r.Currency != bot.CurrencyStars || r.TotalAmount != pr.stars || args[2] != strconv.Itoa(pr.stars) {
		return product{}, valex.Errorf("pay.refused_price", nil)
	}
	return pr, nil
}

// PreCheckout answers Telegram's last question before the money moves. A
// refusal is an error: the bot answers it with the localized reason.
func (p *Payments) PreCheckout(ctx context.Context, r *bot.Request) error {
	if _, err := p.checkout(r); err != nil {
		return err
	}
	if _, err := p.H.registered(r); err != nil {
		return err
	}
	return p.Out.AnswerPreCheckout(ctx, r.PreCheckoutID, true, "")
}

// Paid records a successful payment and adds the credits, once per charge.
func (p *Payments) Paid(ctx context.Context, r *bot.Request) error {
	k, err := p.checkout(r)
	if err != nil {
		// The money moved for a payload we would have refused: keep the
		// user whole by telling them where to turn; staff see the log.
		p.H.Log.Error().Str("charge", r.ChargeID).Msg("successful payment with an unverifiable payload")
		return valex.Errorf("pay.contact_support", map[string]any{"Support": tghtml.Escape(p.SupportURL)})
	}
	now := p.H.Clock.Now()
	method := valex.PaymentStars
	if k.kind == payloadPackRUB {
		method = valex.PaymentTelegramProvider
	}
	pay := valex.Payment{
		ChargeID: r.ChargeID, ProviderChargeID: r.ProviderCharge, UserID: r.From.ID, Method: method,
		Product: k.id, Credits: k.credits, Amount: r.TotalAmount, Currency: r.Currency, Status: valex.PaymentPaid, At: now,
		SourceUpdate: int64(r.ID),
	}
	if k.kind == payloadSubscription {
		pay.Plan, pay.PlanEnds = k.id, r.SubscriptionUntil
		if pay.PlanEnds.IsZero() {
			pay.PlanEnds = now.Add(bot.SubscriptionPeriod * time.Second)
		}
	}
	recorded, w, err := p.Store.RecordPayment(pay)
	if err != nil || !recorded {
		return err // another update with a payment recorded already: confirmed the first time
	}
	if k.kind == payloadSubscription {
		return p.H.reply(ctx, r, p.H.t(r, "pay.sub_done", map[string]any{
			"Plan": tghtml.Escape(k.id), "Ends": valex.FormatDate(pay.PlanEnds), "Charge": tghtml.Escape(r.ChargeID),
		}), nil)
	}
	return p.H.reply(ctx, r, p.H.t(r, "pay.done", map[string]any{
		"Credits": credit(r.Lang, k.credits), "Balance": credit(r.Lang, w.Balance), "Charge": tghtml.Escape(r.ChargeID),
	}), nil)
}

// Wallet shows the user's plan, balance and today's allowance:
// /subscription.
func (p *Payments) Wallet(ctx context.Context, r *bot.Request) error {
	if _, err := p.H.registered(r); err != nil {
		return err
	}
	w, err := p.Store.Wallet(r.From.ID)
	if err != nil {
		return err
	}
	now := p.H.Clock.Now()
	plan := w.PlanOf(now)
	allowance := p.Plans.Allowance(plan)
	key, ends := "wallet.free", ""
	kb := [][]bot.Button{{{Text: p.H.t(r, "credits.btn_plans", nil), Data: cbPlans.Data(p.H.CB, "list")}}}
	if plan != valex.PlanFree {
		key, ends = "wallet.subscribed", valex.FormatDate(w.PlanEnds)
		if w.Canceled {
			key = "wallet.subscribed_ending"
		} else {
			kb = append(kb, []bot.Button{{Text: p.H.t(r, "pay.btn_cancel_sub", nil), Data: cbPlans.Data(p.H.CB, "cancel")}})
		}
	}
	return p.H.reply(ctx, r, p.H.t(r, key, map[string]any{
		"Plan": tghtml.Escape(plan), "Ends": ends, "Balance": credit(r.Lang, w.Balance),
		"Left": credit(r.Lang, w.AllowanceLeft(allowance, now)), "Daily": credit(r.Lang, allowance),
	}), kb)
}

// PaySupport says where to turn about a payment: /paysupport.
func (p *Payments) PaySupport(ctx context.Context, r *bot.Request) error {
	return p.H.reply(ctx, r, p.H.t(r, "pay.support", map[string]any{"Support": tghtml.Escape(p.SupportURL)}), nil)
}

// Terms links the terms of sale: /terms.
func (p *Payments) Terms(ctx context.Context, r *bot.Request) error {
	return p.H.reply(ctx, r, p.H.t(r, "pay.terms", map[string]any{"URL": tghtml.Escape(p.TermsURL)}), nil)
}

// YooKassaNotify tells a user what became of their YooKassa payment
// (payments.Notify).
func (p *Payments) YooKassaNotify(ctx context.Context, userID int64, pay valex.Payment, w valex.Wallet) {
	lang := p.H.Tr.Match("")
	if u, err := p.H.Users.User(userID); err == nil && u.Language != "" {
		lang = u.Language
	}
	key := "pay.yk_canceled"
	if pay.Status == valex.PaymentPaid {
		key = "pay.done"
	}
	text := p.H.Tr.T(lang, key, map[string]any{"Credits": credit(lang, pay.Credits), "Balance": credit(lang, w.Balance),
		"Charge": tghtml.Escape(pay.ProviderChargeID)})
	if _, err := p.Out.Send(ctx, bot.Message{ChatID: userID, Text: text}); err != nil {
		p.H.Log.Warn().Str("user", p.H.IDs.User(userID)).Msg("payment outcome not delivered")
	}
}

// Limits shows or sets the user's own daily spending cap: /limits,
// /limits 5, /limits off.
func (p *Payments) Limits(ctx context.Context, r *bot.Request) error {
	if _, err := p.H.registered(r); err != nil {
		return err
	}
	arg := strings.TrimSpace(r.Args)
	switch {
	case arg == "":
	case slices.Contains(p.H.words("input.off"), strings.ToLower(arg)):
		if err := p.Store.SetDailyCap(r.From.ID, 0); err != nil {
			return err
		}
	default:
		v, err := strconv.ParseFloat(strings.ReplaceAll(arg, ",", "."), 64)
		if err != nil || v <= 0 || v > 1e6 {
			return valex.Errorf("pay.limits_usage", nil)
		}
		if err := p.Store.SetDailyCap(r.From.ID, int64(v*ai.MicroCredits)); err != nil {
			return err
		}
	}
	w, err := p.Store.Wallet(r.From.ID)
	if err != nil {
		return err
	}
	now := p.H.Clock.Now()
	spent := w.Spent
	if w.Day != now.UTC().Format("2006-01-02") {
		spent = 0
	}
	if w.Cap == 0 {
		return p.H.reply(ctx, r, p.H.t(r, "pay.limits_none", map[string]any{"Spent": credit(r.Lang, spent)}), nil)
	}
	return p.H.reply(ctx, r, p.H.t(r, "pay.limits_set", map[string]any{"Cap": credit(r.Lang, w.Cap), "Spent": credit(r.Lang, spent)}), nil)
}
