package handlers

// One ticket for staff: /request, its buttons and actions (take, reply, extend, hold, complete, reject).

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// Request shows one ticket: /request 12.
func (d *Desk) Request(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	if strings.TrimSpace(r.Args) == "" {
		return d.reply(ctx, r, d.t(r, "desk.request_usage", nil), nil)
	}
	id, err := parseID(r.Args)
	if err != nil {
		return err
	}
	t, err := d.ticket(id)
	if err != nil {
		return err
	}
	text, kb := d.ticketView(r, t)
	return d.reply(ctx, r, text, kb)
}

// ticketView renders a ticket for staff: who, what, when, the thread and
// the history, with the buttons its status allows.
func (d *Desk) ticketView(r *bot.Request, t valex.Request) (string, [][]bot.Button) {
	now := d.Clock.Now()
	var b strings.Builder
	requester := d.t(r, "desk.requester_erased", nil)
	if t.UserID != 0 {
		name := ""
		if u, err := d.Users.User(t.UserID); err == nil {
			name = tghtml.Escape(u.Nickname)
		}
		requester = d.t(r, "desk.requester", map[string]any{"User": t.UserID, "Name": name})
	}
	args := d.ticketArgs(r.Lang, t)
	args["Requester"] = requester
	args["Received"] = dateTime(t.ReceivedAt)
	b.WriteString(d.t(r, "desk.view_head", args))
	if t.Extended {
		b.WriteString("\n")
		b.WriteString(d.t(r, "desk.view_extended", map[string]any{"Original": valex.FormatDate(t.OriginalDueAt), "Reason": tghtml.Escape(t.ExtendReason)}))
	}
	assignee := d.t(r, "desk.unassigned", nil)
	if t.AssigneeID != 0 {
		assignee = d.staffName(r, t.AssigneeID)
	}
	b.WriteString("\n")
	b.WriteString(d.t(r, "desk.view_assignee", map[string]any{"Assignee": assignee}))
	if t.Text != "" {
		b.WriteString("\n\n")
		b.WriteString(d.t(r, "desk.view_text", map[string]any{"Text": tghtml.Escape(t.Text)}))
	}
	if len(t.Messages) > 0 {
		b.WriteString("\n\n")
		b.WriteString(d.t(r, "desk.view_thread", nil))
		for _, m := range t.Messages {
			key := "desk.view_msg_user"
			if m.FromStaff {
				key = "desk.view_msg_staff"
			}
			b.WriteString("\n")
			b.WriteString(d.t(r, key, map[string]any{"At": dateTime(m.At), "Staff": m.AuthorID, "Text": tghtml.Escape(m.Text)}))
		}
	}
	if len(t.History) > 0 {
		b.WriteString("\n\n")
		b.WriteString(d.t(r, "desk.view_history", nil))
		for _, c := range t.History {
			by := d.t(r, "desk.by_system", nil)
			if c.By != 0 {
				by = d.staffName(r, c.By)
			}
			b.WriteString("\n")
			if c.Action != "" && c.From == c.To {
				action, field, _ := strings.Cut(c.Action, ":")
				b.WriteString(d.t(r, "desk.view_action."+action, map[string]any{"At": dateTime(c.At), "By": by,
					"Field": d.t(r, "profile.edit_"+field, nil)}))
			} else {
				b.WriteString(d.t(r, "desk.view_change", map[string]any{"At": dateTime(c.At), "From": d.statusName(r.Lang, c.From),
					"To": d.statusName(r.Lang, c.To), "By": by}))
			}
			if c.Note != "" {
				b.WriteString(" — " + tghtml.Escape(c.Note))
			}
		}
	}
	if t.Status == valex.StatusDone && t.Resolution != "" {
		b.WriteString("\n\n")
		b.WriteString(d.t(r, "desk.view_resolution", map[string]any{"Text": tghtml.Escape(t.Resolution)}))
	}
	if !t.Status.Open() {
		return b.String(), nil
	}
	if t.Overdue(now) {
		b.WriteString("\n\n")
		b.WriteString(d.t(r, "desk.view_overdue", nil))
	}
	btn := func(key, action string) bot.Button {
		return bot.Button{Text: d.t(r, key, nil), Data: cbTicket.Data(d.CB, action, idArg(t.ID))}
	}
	row1 := []bot.Button{btn("desk.btn_reply", "reply")}
	if t.AssigneeID != r.From.ID {
		row1 = append([]bot.Button{btn("desk.btn_take", "take")}, row1...)
	}
	var row2 []bot.Button
	if !t.Extended {
		row2 = append(row2, btn("desk.btn_extend", "extend"))
	}
	if t.Status != valex.StatusOnHold {
		row2 = append(row2, btn("desk.btn_complete", "done"))
	}
	row3 := []bot.Button{btn("desk.btn_reject", "reject")}
	if t.Status == valex.StatusOnHold {
		row3 = append(row3, btn("desk.btn_resume", "resume"))
	} else {
		row3 = append(row3, btn("desk.btn_hold", "hold"))
	}
	kb := [][]bot.Button{row1}
	if row2 != nil {
		kb = append(kb, row2)
	}
	kb = append(kb, row3)
	if t.Kind == valex.KindRectification && t.UserID != 0 {
		// A correction request: staff see the requester's profile and fix
		// what the user could not.
		kb = append(kb, []bot.Button{btn("desk.btn_profile", "profile")})
	}
	return b.String(), kb
}

// TicketButton handles the buttons of a ticket view.
func (d *Desk) TicketButton(ctx context.Context, r *bot.Request) error {
	if len(r.CallbackArgs) != 2 {
		return valex.Errorf("error.bad_callback", nil)
	}
	id, err := parseID(r.CallbackArgs[1])
	if err != nil {
		return err
	}
	t, err := d.ticket(id)
	if err != nil {
		return err
	}
	by, before := r.From.ID, t.Status
	switch r.CallbackArgs[0] {
	case "show":
		text, kb := d.ticketView(r, t)
		return d.reply(ctx, r, text, kb)
	case "reply", "reject", "extend":
		if !t.Status.Open() {
			return valex.Errorf("desk.closed", nil)
		}
		if r.CallbackArgs[0] == "extend" && t.Extended {
			return valex.Errorf("desk.already_extended", nil)
		}
		r.StartDialog("desk."+r.CallbackArgs[0], idArg(id))
		return d.reply(ctx, r, d.t(r, "desk.ask_"+r.CallbackArgs[0], map[string]any{
			"ID": id, "Days": int(d.extendBy() / (24 * time.Hour)), "Max": valex.FormatDate(d.SLA.ExtensionLimit(t.Kind, t.OriginalDueAt)),
		}), nil)
	case "take":
		t, err = d.Service.Take(id, by)
	case "hold":
		// A hold needs a reason: ask for it (dialogHold).
		if !t.Status.Open() {
			return valex.Errorf("desk.closed", nil)
		}
		r.StartDialog(dialogHold, idArg(id))
		return d.reply(ctx, r, d.t(r, "desk.ask_hold", map[string]any{"ID": id}), nil)
	case "profile":
		return d.profileView(ctx, r, t)
	case "resume":
		t, err = d.Service.Transition(id, by, valex.StatusInProgress, "")
	case "done":
		// Completing cannot be undone (for an erasure: the account is
		// gone): ask first.
		if !t.Status.Open() {
			return valex.Errorf("desk.closed", nil)
		}
		key := "desk.confirm_done"
		if t.Kind == valex.KindErasure {
			key = "desk.confirm_erasure"
		}
		return d.reply(ctx, r, d.t(r, key, d.ticketArgs(r.Lang, t)), [][]bot.Button{{
			{Text: d.t(r, "desk.confirm_yes", nil), Data: cbTicket.Data(d.CB, "done!", idArg(id))},
			{Text: d.t(r, "desk.confirm_no", nil), Data: cbTicket.Data(d.CB, "show", idArg(id))},
		}})
	case "done!":
		if t.Kind == valex.KindErasure {
			t, err = d.completeErasure(ctx, t, by)
		} else {
			t, err = d.Service.Transition(id, by, valex.StatusDone, "")
		}
	default:
		field, ok := strings.CutPrefix(r.CallbackArgs[0], "fix-")
		if !ok || !editable(field) || t.Kind != valex.KindRectification || !t.Status.Open() {
			return valex.Errorf("error.bad_callback", nil)
		}
		r.StartDialog(dialogCorrect, idArg(id)+"/"+field)
		return d.reply(ctx, r, d.t(r, "desk.ask_correct", map[string]any{"ID": id, "Field": d.t(r, "profile.edit_"+field, nil)}), nil)
	}
	if err != nil {
		return err
	}
	// An erased requester was told by completeErasure, and is anonymous now.
	if t.Status != before && t.UserID != 0 {
		d.notifyUser(ctx, t)
	}
	r.Toast = d.t(r, "desk.toast_saved", nil)
	return d.refreshView(ctx, r, t)
}

// refreshView replaces the ticket view the button was on, or sends a new
// one when it no longer fits a message.
func (d *Desk) refreshView(ctx context.Context, r *bot.Request, t valex.Request) error {
	text, kb := d.ticketView(r, t)
	if kb == nil {
		kb = [][]bot.Button{}
	}
	if r.MessageID != 0 && len(tghtml.Split(text, tghtml.MaxMessageLen)) == 1 {
		return d.Out.Edit(ctx, r.ChatID, r.MessageID, text, kb)
	}
	return d.reply(ctx, r, text, kb)
}

func (d *Desk) extendBy() time.Duration {
	if d.ExtendBy > 0 {
		return d.ExtendBy
	}
	return 30 * 24 * time.Hour
}

// Reject refuses a ticket with a reason: /reject 12 reason.
func (d *Desk) Reject(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	idText, reason, _ := strings.Cut(strings.TrimSpace(r.Args), " ")
	if idText == "" {
		return d.reply(ctx, r, d.t(r, "desk.reject_usage", nil), nil)
	}
	id, err := parseID(idText)
	if err != nil {
		return err
	}
	return d.reject(ctx, r, id, reason)
}

func (d *Desk) reject(ctx context.Context, r *bot.Request, id uint64, reason string) error {
	t, err := d.Service.Transition(id, r.From.ID, valex.StatusRejected, reason)
	if err != nil {
		return err
	}
	d.notifyUser(ctx, t)
	return d.reply(ctx, r, d.t(r, "desk.rejected_staff", map[string]any{"ID": id}), nil)
}

// Extend moves a deadline once, with a reason: /extend 12 [days] reason.
func (d *Desk) Extend(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	idText, rest, _ := strings.Cut(strings.TrimSpace(r.Args), " ")
	if idText == "" {
		return d.reply(ctx, r, d.t(r, "desk.extend_usage", map[string]any{"Days": int(d.extendBy() / (24 * time.Hour))}), nil)
	}
	id, err := parseID(idText)
	if err != nil {
		return err
	}
	return d.extend(ctx, r, id, rest)
}

// extend applies "[days] reason": days default to ExtendBy, counted from
// the current deadline.
func (d *Desk) extend(ctx context.Context, r *bot.Request, id uint64, input string) error {
	by := d.extendBy()
	reason := strings.TrimSpace(input)
	if first, rest, _ := strings.Cut(reason, " "); first != "" {
		if n, err := strconv.Atoi(first); err == nil {
			if n <= 0 {
				return valex.Errorf("desk.bad_days", nil)
			}
			by, reason = time.Duration(n)*24*time.Hour, strings.TrimSpace(rest)
		}
	}
	t, err := d.Service.Extend(id, r.From.ID, by, reason)
	if err != nil {
		return err
	}
	lang := d.langOf(t.UserID)
	args := d.ticketArgs(lang, t)
	args["Reason"] = tghtml.Escape(t.ExtendReason)
	args["Original"] = valex.FormatDate(t.OriginalDueAt)
	d.tell(ctx, t.UserID, lang, t.ID, "desk.user_extended", args, nil)
	return d.reply(ctx, r, d.t(r, "desk.extended_staff", map[string]any{"ID": id, "Due": valex.FormatDate(t.DueAt)}), nil)
}

// staffReply relays a staff member's message to the requester and keeps
// it in the thread. The ticket then waits for the user.
func (d *Desk) staffReply(ctx context.Context, r *bot.Request, id uint64, text string) error {
	t, err := d.Service.CheckStaffReply(id, text)
	if err != nil {
		return err
	}
	lang := d.langOf(t.UserID)
	waiting := t
	if waiting.Status != valex.StatusWaitingUser && waiting.Status != valex.StatusOnHold {
		waiting.Status = valex.StatusWaitingUser
	}
	args := d.ticketArgs(lang, waiting)
	args["Text"] = tghtml.Escape(strings.TrimSpace(text))
	msgID, err := d.Out.Send(ctx, bot.Message{ChatID: t.UserID, Text: d.Tr.T(lang, "desk.user_reply", args)})
	if err != nil {
		if bot.IsBlocked(err) {
			return valex.Errorf("desk.user_blocked", map[string]any{"ID": id})
		}
		return err
	}
	d.link(t.UserID, msgID, id)
	if _, err := d.Service.RecordStaffReply(id, r.From.ID, text); err != nil {
		return err
	}
	return d.reply(ctx, r, d.t(r, "desk.reply_sent", map[string]any{"ID": id}), nil)
}

// StaffText takes a staff member's answer to a desk prompt: the reply, the
// rejection reason or the extension reason for the ticket the prompt is
// about. A mistake the staff member can fix by typing again keeps the
// prompt; any other failure ends it.
func (d *Desk) StaffText(ctx context.Context, r *bot.Request) error {
	arg, field, _ := strings.Cut(r.Dialog.Arg, "/")
	id, err := parseID(arg)
	if err != nil {
		r.EndDialog()
		return err
	}
	switch r.Dialog.Name {
	case dialogReply:
		err = d.staffReply(ctx, r, id, r.Text)
	case dialogReject:
		err = d.reject(ctx, r, id, r.Text)
	case dialogExtend:
		err = d.extend(ctx, r, id, r.Text)
	case dialogHold:
		err = d.hold(ctx, r, id, r.Text)
	case dialogCorrect:
		err = d.correct(ctx, r, id, field, r.Text)
	}
	if ue, ok := valex.AsUserError(err); !ok || !retryable(ue.Key) {
		r.EndDialog()
	}
	return err
}

// hold puts a ticket on hold with the staff member's reason.
func (d *Desk) hold(ctx context.Context, r *bot.Request, id uint64, reason string) error {
	t, err := d.Service.Transition(id, r.From.ID, valex.StatusOnHold, reason)
	if err != nil {
		return err
	}
	if t.UserID != 0 {
		d.notifyUser(ctx, t)
	}
	text, kb := d.ticketView(r, t)
	return d.reply(ctx, r, text, kb)
}

// retryable are the mistakes a staff member corrects by typing again.
func retryable(key string) bool {
	switch key {
	case "desk.reason_required", "desk.too_long", "desk.bad_days", "desk.extend_too_far", "desk.extend_not_later":
		return true
	}
	return false
}
