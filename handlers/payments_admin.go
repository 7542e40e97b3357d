package handlers

// Admins and payments: /refund a Stars payment (credits withdrawn, the user
// told), /grant credits, /payments of a user.

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// Refund refunds a payment: /refund <charge id>. Telegram refunds first;
// the record and the balance follow (a refund retried after a crash
// converges: Telegram's "already refunded" counts as done).
func (p *Payments) Refund(ctx context.Context, r *bot.Request) error {
	charge := strings.TrimSpace(r.Args)
	if charge == "" {
		return p.H.reply(ctx, r, p.H.t(r, "pay.refund_usage", nil), nil)
	}
	pay, err := p.Store.Payment(charge)
	if errors.Is(err, valex.ErrNotFound) {
		return valex.Errorf("pay.no_such_payment", map[string]any{"Charge": tghtml.Escape(charge)})
	}
	if err != nil {
		return err
	}
	if pay.Status == valex.PaymentRefunded {
		return valex.Errorf("pay.already_refunded", map[string]any{"Charge": tghtml.Escape(charge)})
	}
	switch pay.Method {
	case valex.PaymentTelegramProvider:
		return valex.Errorf("pay.refund_provider", nil) // the provider refunds these, not the Bot API
	case valex.PaymentYooKassa:
		if p.YooKassa == nil {
			return valex.Errorf("pay.refund_no_yookassa", nil)
		}
		if err := p.YooKassa.Refund(ctx, pay); err != nil {
			return err
		}
	default:
		if pay.UserID <= 0 {
			return valex.Errorf("pay.refund_erased", nil) // Telegram needs the payer's id, and it is gone
		}
		if err := p.Out.RefundStars(ctx, pay.UserID, charge); err != nil {
			return err
		}
	}
	pay, changed, err := p.Store.MarkRefunded(charge)
	if err != nil || !changed || pay.UserID <= 0 {
		return err // an erased payer is refunded, not told
	}
	lang := p.H.Tr.Match("")
	if u, err := p.H.Users.User(pay.UserID); err == nil && u.Language != "" {
		lang = u.Language
	}
	_, _ = p.Out.Send(ctx, bot.Message{ChatID: pay.UserID, Text: p.H.Tr.T(lang, "pay.refunded_user", map[string]any{
		"Amount": amountText(lang, pay), "Credits": credit(lang, pay.Credits), "Charge": tghtml.Escape(charge)})})
	return p.H.reply(ctx, r, p.H.t(r, "pay.refunded_admin", map[string]any{"Charge": tghtml.Escape(charge), "Amount": amountText(r.Lang, pay)}), nil)
}

// Grant gives a user credits, or a subscription plan for some days:
// /grant <user id> <credits>, /grant <user id> <plan> [days].
func (p *Payments) Grant(ctx context.Context, r *bot.Request) error {
	f := strings.Fields(r.Args)
	if len(f) == 2 || len(f) == 3 {
		if _, isPlan := p.Plans.Subscription(f[1]); isPlan {
			return p.grantPlan(ctx, r, f)
		}
	}
	if len(f) != 2 {
		return p.H.reply(ctx, r, p.H.t(r, "pay.grant_usage", nil), nil)
	}
	id, err := strconv.ParseInt(f[0], 10, 64)
	amount, aerr := strconv.ParseFloat(strings.ReplaceAll(f[1], ",", "."), 64)
	if err != nil || id <= 0 || aerr != nil || amount <= 0 || amount > 1e6 {
		return p.H.reply(ctx, r, p.H.t(r, "pay.grant_usage", nil), nil)
	}
	w, err := p.Store.AddCredits(id, int64(amount*ai.MicroCredits))
	if errors.Is(err, valex.ErrNotFound) {
		return valex.Errorf("desk.no_such_user", map[string]any{"User": id})
	}
	if err != nil {
		return err
	}
	p.H.Log.Info().Str("user", p.H.IDs.User(id)).Str("admin", p.H.IDs.User(r.From.ID)).Msg("credits granted")
	return p.H.reply(ctx, r, p.H.t(r, "pay.granted", map[string]any{"User": id, "Credits": credit(r.Lang, int64(amount*ai.MicroCredits)),
		"Balance": credit(r.Lang, w.Balance)}), nil)
}

// UserPayments lists a user's payments: /payments <user id>.
func (p *Payments) UserPayments(ctx context.Context, r *bot.Request) error {
	id, err := strconv.ParseInt(strings.TrimSpace(r.Args), 10, 64)
	if err != nil || id <= 0 {
		return p.H.reply(ctx, r, p.H.t(r, "pay.payments_usage", nil), nil)
	}
	ps, err := p.Store.Payments(id)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(p.H.Tr.N(r.Lang, "pay.payments_title", len(ps), map[string]any{"User": id}))
	for _, pay := range ps {
		b.WriteString("\n" + p.H.t(r, "pay.payment_line", map[string]any{
			"Date": valex.FormatDate(pay.At), "Stars": pay.Amount, "Currency": pay.Currency, "Product": tghtml.Escape(pay.Product),
			"Status": p.H.t(r, "pay.status."+pay.Status, nil), "Charge": tghtml.Escape(pay.ChargeID),
		}))
	}
	return p.H.reply(ctx, r, b.String(), nil)
}

// amountText is what a payment cost: stars, or rubles from kopecks.
func amountText(lang string, pay valex.Payment) string {
	if pay.Currency == "RUB" {
		return decimal(lang, float64(pay.Amount)/100, 2) + " ₽"
	}
	return strconv.Itoa(pay.Amount) + " ⭐"
}

func (p *Payments) grantPlan(ctx context.Context, r *bot.Request, f []string) error {
	id, err := strconv.ParseInt(f[0], 10, 64)
	days := 30
	if len(f) == 3 {
		days, err = strconv.Atoi(f[2])
	}
	if err != nil || id <= 0 || days < 1 || days > 3660 {
		return p.H.reply(ctx, r, p.H.t(r, "pay.grant_usage", nil), nil)
	}
	ends := p.H.Clock.Now().AddDate(0, 0, days)
	if _, err := p.Store.GrantPlan(id, f[1], ends); errors.Is(err, valex.ErrNotFound) {
		return valex.Errorf("desk.no_such_user", map[string]any{"User": id})
	} else if err != nil {
		return err
	}
	p.H.Log.Info().Str("user", p.H.IDs.User(id)).Str("admin", p.H.IDs.User(r.From.ID)).Str("plan", f[1]).Msg("plan granted")
	return p.H.reply(ctx, r, p.H.t(r, "pay.granted_plan", map[string]any{"User": id, "Plan": tghtml.Escape(f[1]), "Ends": valex.FormatDate(ends)}), nil)
}
