package handlers

// /forget and staff completing an erasure request (the erasure itself is privacy.Eraser's).

import (
	"context"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
)

// Forget asks for confirmation before erasing the account: /forget.
func (d *Desk) Forget(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	if _, err := d.registered(r); err != nil {
		return err
	}
	return d.forgetConfirm(ctx, r)
}

// forgetConfirm says what goes and what stays, with the two buttons.
func (d *Desk) forgetConfirm(ctx context.Context, r *bot.Request) error {
	kb := [][]bot.Button{
		{{Text: d.t(r, "privacy.btn_forget_yes", nil), Data: cbForget.Data(d.CB, "yes")}},
		{{Text: d.t(r, "privacy.btn_forget_no", nil), Data: cbForget.Data(d.CB, "no")}},
	}
	return d.reply(ctx, r, d.t(r, "privacy.forget_confirm", map[string]any{
		"Payments": periodWords(d.Tr, r.Lang, d.Policy.Retention.Defaults().PaymentRecords),
	}), kb)
}

// ForgetButton erases the account after the confirmation, unless a legal
// hold stands: then the request waits for staff and the user is told why.
func (d *Desk) ForgetButton(ctx context.Context, r *bot.Request) error {
	if len(r.CallbackArgs) != 1 {
		return valex.Errorf("error.bad_callback", nil)
	}
	if err := privateOnly(r); err != nil {
		return err
	}
	if r.CallbackArgs[0] != "yes" {
		return d.Out.Edit(ctx, r.ChatID, r.MessageID, d.t(r, "privacy.forget_kept", nil), [][]bot.Button{})
	}
	if _, err := d.registered(r); err != nil {
		if ue, ok := valex.AsUserError(err); ok && ue.Key == "error.not_registered" {
			// The button went to an account, which is gone: erased by an
			// earlier tap whose reply a crash cut off (the tap's update was
			// sealed with the erased key, so it is not replayed), or by the
			// inactivity rule.
			return d.Out.Edit(ctx, r.ChatID, r.MessageID, d.t(r, "privacy.already_erased", nil), [][]bot.Button{})
		}
		return err
	}
	now := d.Clock.Now()
	t, err := d.open(r, valex.KindErasure, r.From.ID, "", now)
	if err != nil {
		return err
	}
	held, err := d.Service.Held(r.From.ID, t.ID)
	if err != nil {
		return err
	}
	if held {
		if t, err = d.Service.Transition(t.ID, 0, valex.StatusOnHold, ""); err != nil {
			return err
		}
		d.newTicketToStaff(ctx, t)
		if err := d.Out.Edit(ctx, r.ChatID, r.MessageID, d.t(r, "privacy.erase_held", d.ticketArgs(r.Lang, t)), [][]bot.Button{}); err != nil {
			return err
		}
		d.link(r.ChatID, r.MessageID, t.ID)
		return nil
	}
	counts, err := d.Eraser.Erase(ctx, r.From.ID, t.ID, now)
	if err != nil {
		d.newTicketToStaff(ctx, t) // the request stays open: staff finish it
		return err
	}
	t.Status = valex.StatusDone
	args := d.ticketArgs(r.Lang, t)
	args["Erased"] = d.categoryLines(r.Lang, counts)
	return d.Out.Edit(ctx, r.ChatID, r.MessageID, d.t(r, "privacy.erased", args), [][]bot.Button{})
}

// completeErasure is staff completing an erasure request that waited
// (a hold since lifted, or an automatic erasure that failed).
func (d *Desk) completeErasure(ctx context.Context, t valex.Request, by int64) (valex.Request, error) {
	lang := d.langOf(t.UserID) // gone with the account in a moment
	uid := t.UserID
	counts, err := d.Service.CompleteErasure(ctx, t, by)
	if err != nil {
		return t, err
	}
	d.Log.Info().Uint64("ticket_id", t.ID).Str("staff", d.IDs.User(by)).Msg("account erased by staff")
	t.Status = valex.StatusDone
	args := d.ticketArgs(lang, t)
	args["Erased"] = d.categoryLines(lang, counts)
	if _, err := d.Out.Send(ctx, bot.Message{ChatID: uid, Text: d.Tr.T(lang, "privacy.erased", args)}); err != nil {
		d.Log.Warn().Str("error", d.IDs.Redact(err.Error(), uid)).Uint64("ticket_id", t.ID).Msg("erasure notice not delivered")
	}
	return d.Service.Ticket(t.ID)
}
