package handlers

// Credits around every AI call: the expected cost is held before the
// provider is called, the actual cost charged in the commit that records
// the call, and a failed or stopped call released uncharged.

import (
	"context"
	"errors"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
)

// Wallets is the part of the store that keeps credits.
type Wallets interface {
	Wallet(userID int64) (valex.Wallet, error)
	Reserve(userID, amount, allowance int64, now time.Time) (uint64, error)
	Release(reservation uint64)
	SaveExchangeCharged(userID int64, conv uint64, turns []valex.Turn, usage []valex.AIUsage, charge valex.Charge) error
}

// reserve holds the expected cost of a call (expect, priced at m's rates)
// for the user. ok is false when their wallet cannot pay: they have been
// told, with a button to /plans, and nothing reaches a provider. Release
// the returned charge's reservation when the call is over (a.store.Release
// is a no-op once the charge committed).
func (a *AI) reserve(ctx context.Context, r *bot.Request, m ai.Model, expect ai.Usage) (valex.Charge, bool, error) {
	if a.opt.Plans == nil || a.wallets == nil {
		return valex.Charge{}, true, nil // no plans configured: calls are not metered
	}
	now := a.h.Clock.Now()
	plan := a.opt.Plan(r.From.ID)
	allowance := a.opt.Plans.Allowance(plan)
	expect.Model = m.ID
	id, err := a.wallets.Reserve(r.From.ID, a.models.Cost(m, expect), allowance, now)
	if errors.Is(err, valex.ErrDailyCap) {
		_, serr := a.out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: a.h.t(r, "credits.cap_reached", nil)})
		return valex.Charge{}, false, serr
	}
	if errors.Is(err, valex.ErrNoCredits) {
		kb := [][]bot.Button{{{Text: a.h.t(r, "credits.btn_plans", nil), Data: cbPlans.Data(a.h.CB, "list")}}}
		_, serr := a.out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: a.h.t(r, "credits.exhausted", nil), Keyboard: kb})
		return valex.Charge{}, false, serr
	}
	if err != nil {
		return valex.Charge{}, false, err
	}
	return valex.Charge{Reservation: id, Allowance: allowance, Now: now}, true, nil
}

// release ends a hold that was not charged (a no-op after a charge).
func (a *AI) release(c valex.Charge) {
	if c.Reservation != 0 && a.wallets != nil {
		a.wallets.Release(c.Reservation)
	}
}

// saveCharged records an exchange and its usage, charging it when the
// call held credits.
func (a *AI) saveCharged(userID int64, conv uint64, turns []valex.Turn, usage []valex.AIUsage, c valex.Charge) error {
	if c.Reservation == 0 || a.wallets == nil {
		return a.store.SaveExchange(userID, conv, turns, usage)
	}
	return a.wallets.SaveExchangeCharged(userID, conv, turns, usage, c)
}
