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
// told (with a button to /plans), and nothing reaches a provider. Release
// the returned charge's reservation when the call is over (a no-op once
// the charge committed).
func (a *AI) reserve(ctx context.Context, r *bot.Request, m ai.Model, expect ai.Usage) (valex.Charge, bool, error) {
	charge, err := a.tryReserve(r, m, expect, a.opt.Plan(r.From.ID))
	if err != nil {
		return charge, false, a.refuse(ctx, r, err)
	}
	return charge, true, nil
}

// tryReserve holds the expected cost, telling nobody; plan is the user's.
func (a *AI) tryReserve(r *bot.Request, m ai.Model, expect ai.Usage, plan string) (valex.Charge, error) {
	if a.opt.Plans == nil || a.wallets == nil {
		return valex.Charge{}, nil // no plans configured: calls are not metered
	}
	now := a.h.Clock.Now()
	allowance := a.opt.Plans.Allowance(plan)
	expect.Model = m.ID
	id, err := a.wallets.Reserve(r.From.ID, a.models.Cost(m, expect), allowance, now)
	if err != nil {
		return valex.Charge{}, err
	}
	return valex.Charge{Reservation: id, Allowance: allowance, Now: now, Update: int64(r.ID)}, nil
}

// refuse tells the user why a call was not made: their own daily cap, or
// an empty wallet (with the /plans button); other errors go up.
func (a *AI) refuse(ctx context.Context, r *bot.Request, err error) error {
	switch {
	case errors.Is(err, valex.ErrDailyCap):
		_, serr := a.out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: a.h.t(r, "credits.cap_reached", nil)})
		return serr
	case errors.Is(err, valex.ErrNoCredits):
		kb := [][]bot.Button{{{Text: a.h.t(r, "credits.btn_plans", nil), Data: cbPlans.Data(a.h.CB, "list")}}}
		_, serr := a.out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: a.h.t(r, "credits.exhausted", nil), Keyboard: kb})
		return serr
	}
	return err
}

// reserveOrCheaper is reserve for a chat turn: when the wallet cannot pay
// for m and the configuration names a cheaper model (AIOptions.CheaperModel)
// the user's plan allows, the turn runs on that one instead and the user is
// told.
func (a *AI) reserveOrCheaper(ctx context.Context, r *bot.Request, m ai.Model, capability ai.Capability, expect ai.Usage, plan string) (ai.Model, valex.Charge, bool, error) {
	charge, err := a.tryReserve(r, m, expect, plan)
	if errors.Is(err, valex.ErrNoCredits) && a.opt.CheaperModel != "" {
		alt, ok := a.modelFor(a.opt.CheaperModel, capability, plan)
		if ok && alt.ID != m.ID && a.models.Cost(alt, expect) < a.models.Cost(m, expect) {
			if charge, err = a.tryReserve(r, alt, expect, plan); err == nil {
				_, _ = a.out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: a.h.t(r, "credits.cheaper_model", map[string]any{
					"Model": alt.ID, "Was": m.ID})})
				return alt, charge, true, nil
			}
		}
	}
	if err != nil {
		return m, charge, false, a.refuse(ctx, r, err)
	}
	return m, charge, true, nil
}

// reserveAnswer holds the cost of a chat answer as long as the provider may
// make it (the model's max_tokens), so the charge never exceeds the hold. A
// wallet that cannot pay that much gets a shorter answer instead: the hold
// and max_tokens (limit) are answer_tokens, and when even that is too much,
// reserveOrCheaper's cheaper model or refusal. limit 0 leaves the model's
// own max_tokens. plan is the user's.
func (a *AI) reserveAnswer(ctx context.Context, r *bot.Request, m ai.Model, capability ai.Capability, inputTokens int, plan string) (ai.Model, int, valex.Charge, bool, error) {
	expect := ai.Usage{Capability: capability, InputTokens: inputTokens, OutputTokens: max(m.MaxTokens, a.opt.AnswerTokens)}
	charge, err := a.tryReserve(r, m, expect, plan)
	if err == nil {
		return m, 0, charge, true, nil
	}
	if !errors.Is(err, valex.ErrNoCredits) && !errors.Is(err, valex.ErrDailyCap) {
		return m, 0, charge, false, err
	}
	expect.OutputTokens = a.opt.AnswerTokens
	m, charge, ok, err := a.reserveOrCheaper(ctx, r, m, capability, expect, plan)
	if ok {
		_, _ = a.out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: a.h.t(r, "credits.short_answer", map[string]any{"Tokens": a.opt.AnswerTokens})})
	}
	return m, a.opt.AnswerTokens, charge, ok, err
}

// release ends a hold that was not charged (a no-op after a charge).
func (a *AI) release(c valex.Charge) {
	if c.Reservation != 0 && a.wallets != nil {
		a.wallets.Release(c.Reservation)
	}
}

// saveCharged records an exchange and its usage, charging it when the
// call held credits.
func (a *AI) saveCharged(userID int64, conv uint64, turns []valex.Turn, usage []valex.AIUsage, c valex.Charge) (recorded bool, err error) {
	if c.Reservation == 0 || a.wallets == nil {
		return false, a.store.SaveExchange(userID, conv, turns, usage)
	}
	err = a.wallets.SaveExchangeCharged(userID, conv, turns, usage, c)
	return err == nil && c.EndsUpdate && c.Update > 0, err
}
