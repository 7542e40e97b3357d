package handlers

// The AI consent question asked before a first chat turn, and its button.

import (
	"context"
	"strconv"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// admission is what ready found: whether the request may go to a
// provider, and the ticket to submit its job with.
type admission struct {
	ok      bool
	ticket  uint64     // from admit, taken before the consent was read
	ask     bool       // the bot asked for consent (false: AI processing is restricted)
	account valex.User // the registered user
}

// ready checks what every AI request needs: a registered user who agreed to
// the transfer of their requests to AI providers and did not restrict AI
// processing. Otherwise it says so (asking for the consent when that is
// what is missing) and reports false: nothing may reach a provider.
func (a *AI) ready(ctx context.Context, r *bot.Request) (admission, error) {
	ad := admission{ticket: a.admit()}
	u, err := a.h.registered(r)
	if err != nil {
		return ad, err
	}
	ad.account = u
	if ad.ok, err = a.consent.CanUseAI(r.From.ID); err != nil || ad.ok {
		return ad, err
	}
	st, err := a.store.ConsentState(r.From.ID)
	if err != nil {
		return ad, err
	}
	if st.Restricted(valex.RestrictAI) {
		return ad, a.h.reply(ctx, r, a.h.t(r, "ai.restricted", nil), nil)
	}
	ad.ask = true
	kb := [][]bot.Button{{{Text: a.h.t(r, "ai.consent.agree", nil), Data: cbAIConsent.Data(a.h.CB, "y", accountTag(u))}}}
	text := a.h.t(r, "ai.consent.ask", map[string]any{"Version": tghtml.Escape(a.opt.PolicyVersion())})
	_, err = a.out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: text, Keyboard: kb})
	return ad, err
}

// accountTag names one account of a Telegram user in callback data: an
// account created again after an erasure has another.
func accountTag(u valex.User) string { return strconv.FormatInt(u.CreatedAt.UnixNano(), 36) }

// ConsentButton records the consent given with the button of ready's
// question. A button of an erased account records nothing (the user must
// /start again) and never answers a message held for an earlier account.
func (a *AI) ConsentButton(ctx context.Context, r *bot.Request) error {
	args := r.CallbackArgs
	if len(args) < 1 || len(args) > 2 || args[0] != "y" {
		return valex.Errorf("error.bad_callback", nil)
	}
	u, err := a.h.registered(r)
	if err != nil {
		return err
	}
	if len(args) == 2 && args[1] != accountTag(u) {
		return valex.Errorf("error.bad_callback", nil) // asked of an account since erased
	}
	ok, err := a.consent.CanUseAI(r.From.ID)
	if err != nil {
		return err
	}
	if !ok {
		if err := a.consent.GrantAI(r.From.ID, a.h.Clock.Now(), a.opt.PolicyVersion()); err != nil {
			return err
		}
		if ok, err = a.consent.CanUseAI(r.From.ID); err != nil {
			return err
		}
	}
	if !ok {
		// AI processing is restricted: consent alone is not enough.
		return a.out.Edit(ctx, r.ChatID, r.MessageID, a.h.t(r, "ai.consent.restricted", nil), nil)
	}
	a.mu.Lock()
	held := a.unholdLocked(r.From.ID)
	a.mu.Unlock()
	if held != nil && (!held.account.Equal(u.CreatedAt) || a.expired(held)) {
		held.end(true) // a message of an account that is gone, or held too long, is void
		held = nil
	}
	if held == nil {
		return a.out.Edit(ctx, r.ChatID, r.MessageID, a.h.t(r, "ai.consent.thanks", nil), nil)
	}
	if err := a.out.Edit(ctx, r.ChatID, r.MessageID, a.h.t(r, "ai.consent.thanks_answering", nil), nil); err != nil {
		held.end(true) // told "something went wrong": the user sends it again
		return err
	}
	return a.text(ctx, held.r, held.end)
}

// hold keeps r, a message that made the bot ask for the consent, until the
// user agrees (ConsentButton answers it), with its update pending (end is
// its Request.Defer). Only the latest message is held; it is dropped when
// the hold expires. A message older than the hold (replayed after a long
// stop) is not held, nor is one that comes during a shutdown: its update
// stays pending and is replayed after the restart.
func (a *AI) hold(r *bot.Request, ad admission, end func(ended bool)) {
	uid := r.From.ID
	now := a.h.Clock.Now()
	m := &awaitingMsg{r: r, account: ad.account.CreatedAt, end: end, since: now}
	if !r.Date.IsZero() && r.Date.Before(now) {
		m.since = r.Date
	}
	left := a.opt.ConsentHold - now.Sub(m.since)
	a.mu.Lock()
	var dropped *awaitingMsg
	switch {
	case a.closing:
		a.mu.Unlock()
		end(false)
		return
	case left <= 0 || a.stoppedAt[uid] > ad.ticket: // expired, or StopUser came in between
		dropped = m
	default:
		dropped = a.unholdLocked(uid) // a newer message takes its place
		m.timer = time.AfterFunc(left, func() { a.expire(uid, m) })
		a.awaiting[uid] = m
		r.WaitsOnUser(true) // telegram.max_pending must let the consent button through
	}
	a.mu.Unlock()
	if dropped != nil {
		dropped.end(true)
	}
}

// unholdLocked takes the user's held message out, stopping its expiry; nil
// when there is none. The caller ends it. a.mu is held.
func (a *AI) unholdLocked(userID int64) *awaitingMsg {
	m, ok := a.awaiting[userID]
	if !ok {
		return nil
	}
	delete(a.awaiting, userID)
	if m.timer != nil {
		m.timer.Stop()
	}
	m.r.WaitsOnUser(false)
	return m
}

// expire drops m when its hold runs out: it is not answered, and its update
// counts as handled (the user can send it again).
func (a *AI) expire(userID int64, m *awaitingMsg) {
	a.mu.Lock()
	if a.awaiting[userID] != m {
		a.mu.Unlock()
		return // answered, replaced or voided meanwhile
	}
	delete(a.awaiting, userID)
	a.mu.Unlock()
	m.end(true)
}

// expired reports whether m's hold has run out by the clock (the timer may
// not have fired yet).
func (a *AI) expired(m *awaitingMsg) bool {
	return a.h.Clock.Now().Sub(m.since) > a.opt.ConsentHold
}
