package handlers

// Users' tickets: /support, /feedback, new-ticket prompts, messages joining a ticket.

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// replyTicket replies with a message about a ticket and links it.
func (d *Desk) replyTicket(ctx context.Context, r *bot.Request, ticket uint64, text string, kb [][]bot.Button) error {
	id, err := d.Out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: text, Keyboard: kb})
	if err != nil {
		return err
	}
	d.link(r.ChatID, id, ticket)
	return nil
}

// receivedAt is when a request arrived: the Telegram date of the user's
// message (a backlog handled late keeps its real deadline), or now for a
// button press, or when the date is ahead of our clock.
func (d *Desk) receivedAt(r *bot.Request) time.Time {
	now := d.Clock.Now()
	if r.Date.IsZero() || r.Date.After(now) {
		return now
	}
	return r.Date
}

// open stores a new ticket (desk.Service.Open), once per update r: a replay
// of r after a crash gets the ticket back, marked Replayed.
func (d *Desk) open(r *bot.Request, kind valex.RequestKind, userID int64, text string, receivedAt time.Time) (valex.Request, error) {
	return d.Service.Open(kind, userID, text, receivedAt, int64(r.ID))
}

// newTicketToStaff tells staff a ticket needs them.
func (d *Desk) newTicketToStaff(ctx context.Context, t valex.Request) {
	d.tellStaff(ctx, t, "desk.staff_new", func(lang string) map[string]any { return d.ticketArgs(lang, t) })
}

// askText waits for the text of a new ticket of kind.
func (d *Desk) askText(ctx context.Context, r *bot.Request, kind valex.RequestKind) error {
	r.StartDialog(dialogNewTicket, string(kind))
	return d.reply(ctx, r, d.t(r, "desk.ask_text."+string(kind), nil), nil)
}

// classify reads a /support text: one that starts with a "Personal Data"
// subject (policy section 10 asks users to put it in the subject; the words
// are desk.personal_data_subjects in every locale) is a personal data
// request with the rest as its text.
func (d *Desk) classify(text string) (valex.RequestKind, string) {
	text = strings.TrimSpace(text)
	lower := strings.ToLower(text)
	for _, p := range d.words("desk.personal_data_subjects") {
		if strings.HasPrefix(lower, p) {
			rest := text[len(p):] // lower-casing keeps these prefixes' byte length
			return valex.KindPersonalData, strings.TrimLeft(rest, " \t\n:;,.-—–")
		}
	}
	return valex.KindSupport, text
}

// Support opens a support ticket, or a personal data request when the text
// starts with "Personal Data": /support text.
func (d *Desk) Support(ctx context.Context, r *bot.Request) error {
	kind, text := d.classify(r.Args)
	return d.textTicket(ctx, r, kind, text)
}

// Feedback records feedback or a review: /feedback text.
func (d *Desk) Feedback(ctx context.Context, r *bot.Request) error {
	return d.textTicket(ctx, r, valex.KindFeedback, strings.TrimSpace(r.Args))
}

func (d *Desk) textTicket(ctx context.Context, r *bot.Request, kind valex.RequestKind, text string) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	if _, err := d.registered(r); err != nil {
		return err
	}
	if text == "" {
		return d.askText(ctx, r, kind)
	}
	return d.openText(ctx, r, kind, text)
}

// openText opens a ticket with the user's own words and tells both sides.
func (d *Desk) openText(ctx context.Context, r *bot.Request, kind valex.RequestKind, text string) error {
	t, err := d.open(r, kind, r.From.ID, text, d.receivedAt(r))
	if err != nil {
		return err
	}
	return d.announce(ctx, r, t)
}

// announce tells the requester their ticket is registered, and staff that
// it needs them.
func (d *Desk) announce(ctx context.Context, r *bot.Request, t valex.Request) error {
	if !d.tracked(t.Kind) {
		// Feedback: thanked, no deadline, no alert (staff find it under
		// the feedback filter of /requests and in the digest).
		return d.replyTicket(ctx, r, t.ID, d.t(r, "desk.feedback_received", d.ticketArgs(r.Lang, t)), nil)
	}
	if err := d.replyTicket(ctx, r, t.ID, d.t(r, "desk.ticket_opened", d.ticketArgs(r.Lang, t)), nil); err != nil {
		return err
	}
	d.newTicketToStaff(ctx, t)
	return nil
}

// Intercept is router middleware (Router.Use) that gives the desk the
// first look at plain text in private chats, before whatever handles text
// (Handlers.Text, the AI aggregator): see AppendUserMessage.
func (d *Desk) Intercept(next bot.HandlerFunc) bot.HandlerFunc {
	return func(ctx context.Context, r *bot.Request) error {
		if r.Kind == bot.KindText && r.Private() {
			if handled, err := d.AppendUserMessage(ctx, r); handled || err != nil {
				return err
			}
		}
		return next(ctx, r)
	}
}

// AppendUserMessage takes a Telegram reply to a message about a ticket
// (Intercept calls it for every private text): from the requester it is
// added to their ticket, from staff it is relayed to the requester. It
// reports whether the desk took the message. Nothing else joins a ticket
// by itself: a message outside a reply and outside a ticket's prompt is a
// chat message, so a private question never reaches staff by accident.
func (d *Desk) AppendUserMessage(ctx context.Context, r *bot.Request) (bool, error) {
	if !r.Private() || !r.ReplyToBot || r.ReplyTo == 0 {
		return false, nil // personal data stays out of groups
	}
	id, err := d.Store.LinkedTicket(r.ChatID, r.ReplyTo)
	if err != nil || id == 0 {
		return false, err
	}
	t, err := d.Store.Ticket(id)
	switch {
	case errors.Is(err, valex.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	case t.UserID == r.From.ID:
		return true, d.userMessage(ctx, r, id)
	case r.Role.Allows(valex.RoleSupport) && t.UserID != 0:
		return true, d.staffReply(ctx, r, id, r.Text)
	}
	return false, nil
}

// NewTicketText takes the answer to a new-ticket prompt (/support,
// /feedback, a right that needs a description): it opens the ticket. A text
// too long keeps the prompt.
func (d *Desk) NewTicketText(ctx context.Context, r *bot.Request) error {
	k := valex.RequestKind(r.Dialog.Arg)
	if !k.Valid() {
		r.EndDialog()
		return valex.Errorf("error.bad_callback", nil)
	}
	text := r.Text
	if k == valex.KindSupport || k == valex.KindPersonalData {
		var pk valex.RequestKind
		if pk, text = d.classify(text); pk == valex.KindPersonalData {
			k = pk
		}
	}
	t, err := d.open(r, k, r.From.ID, text, d.receivedAt(r))
	if err != nil {
		return err // a too long text: the prompt stays open
	}
	return d.announce(ctx, r, t)
}

// TicketText takes the answer to a ticket's own prompt (a rectification's
// description): it joins that ticket.
func (d *Desk) TicketText(ctx context.Context, r *bot.Request) error {
	id, err := parseID(r.Dialog.Arg)
	if err != nil {
		r.EndDialog()
		return err
	}
	err = d.userMessage(ctx, r, id)
	if ue, ok := valex.AsUserError(err); ok && ue.Key != "desk.too_long" {
		r.EndDialog()
	}
	return err
}

// userMessage adds the user's message to their ticket; a ticket that was
// waiting for them goes back to staff, who are told.
func (d *Desk) userMessage(ctx context.Context, r *bot.Request, id uint64) error {
	text := strings.TrimSpace(r.Text)
	t, err := d.Service.AddUserMessage(id, r.From.ID, text)
	if err != nil {
		return err
	}
	if err := d.replyTicket(ctx, r, id, d.t(r, "desk.message_added", d.ticketArgs(r.Lang, t)), nil); err != nil {
		return err
	}
	d.tellStaff(ctx, t, "desk.staff_user_message", func(lang string) map[string]any {
		args := d.ticketArgs(lang, t)
		args["Text"] = tghtml.Escape(text)
		return args
	})
	return nil
}
