package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/desk"
)

// Notifier is the Telegram side of desk.Service: it renders what the
// service decided, in each recipient's language, and sends it.
func (d *Desk) Notifier() desk.Notifier { return deskNotifier{d} }

type deskNotifier struct{ d *Desk }

// Staff lists support staff and admins, in id order (desk.Roster).
func (r Roles) Staff() []int64 {
	var ids []int64
	for id := range r.Support {
		ids = append(ids, id)
	}
	for id := range r.Admins {
		if !r.Support[id] {
			ids = append(ids, id)
		}
	}
	return sortedIDs(ids)
}

// AdminIDs lists the admins, in id order (desk.Roster's Admins).
func (r Roles) AdminIDs() []int64 {
	var ids []int64
	for id := range r.Admins {
		ids = append(ids, id)
	}
	return sortedIDs(ids)
}

// Roster is Roles as desk.Service sees it.
func (r Roles) Roster() desk.Roster { return roster{r} }

type roster struct{ r Roles }

func (x roster) Staff() []int64  { return x.r.Staff() }
func (x roster) Admins() []int64 { return x.r.AdminIDs() }

func (n deskNotifier) TicketReminder(ctx context.Context, t valex.Request, m valex.Reminder) int {
	key := "desk.reminder_due"
	if m.Overdue {
		key = "desk.reminder_overdue"
	}
	return n.d.tellStaff(ctx, t, key, func(lang string) map[string]any { return n.d.ticketArgs(lang, t) })
}

func (n deskNotifier) Digest(ctx context.Context, staffID int64, dg desk.Digest) error {
	d := n.d
	lang := d.langOf(staffID)
	var b strings.Builder
	b.WriteString(d.Tr.N(lang, "desk.digest_title", dg.Total, map[string]any{"Overdue": dg.Overdue, "Week": dg.DueThisWeek}))
	for _, t := range dg.Top {
		key := "desk.digest_line"
		if t.Overdue(dg.Now) && d.tracked(t.Kind) {
			key = "desk.digest_line_overdue"
		}
		args := d.ticketArgs(lang, t)
		args["Mine"] = ""
		if t.AssigneeID == staffID {
			args["Mine"] = d.Tr.T(lang, "desk.digest_yours", nil)
		}
		b.WriteString("\n" + d.Tr.T(lang, key, args))
	}
	if dg.Total > len(dg.Top) {
		b.WriteString("\n" + d.Tr.N(lang, "desk.digest_more", dg.Total-len(dg.Top), nil))
	}
	_, err := d.Out.Send(ctx, bot.Message{ChatID: staffID, Text: b.String()})
	return err
}

func (n deskNotifier) IncidentReminder(ctx context.Context, admin int64, nt valex.Notice, dl valex.IncidentDeadline, overdue bool) bool {
	d := n.d
	lang := d.langOf(admin)
	key := "incident.remind_soon"
	if overdue {
		key = "incident.remind_overdue"
	}
	args := map[string]any{"ID": nt.ID, "Who": d.Tr.T(lang, "incident.to."+dl.Name, nil), "Due": dl.Due.UTC().Format("2006-01-02 15:04 UTC")}
	return d.tell(ctx, admin, lang, 0, key, args, d.incidentButtons(lang, nt))
}

func (n deskNotifier) Notice(ctx context.Context, nt valex.Notice, u valex.User) (valex.DeliveryStatus, error) {
	d := n.d
	lang := u.Language
	if lang == "" {
		lang = d.Tr.Match("")
	}
	text, err := d.noticeText(nt, lang)
	if err != nil {
		return "", fmt.Errorf("%w: %w", desk.ErrNotSent, err)
	}
	m := bot.Message{ChatID: u.ID, Text: text}
	if d.Bulk != nil {
		_, err = d.Bulk.Broadcast(ctx, m) // behind replies; maybe a paid broadcast
	} else {
		_, err = d.Out.Send(ctx, m)
	}
	switch {
	case err == nil:
		return valex.DeliveryDelivered, nil
	case errors.Is(err, bot.ErrNotSent):
		return "", errors.Join(desk.ErrNotSent, ctx.Err()) // the outbox's error names the chat
	case ctx.Err() != nil:
		return "", ctx.Err()
	case bot.IsBlocked(err):
		return valex.DeliveryBlocked, nil
	}
	d.Log.Warn().Str("error", d.IDs.Redact(err.Error(), u.ID)).Uint64("notice_id", nt.ID).Str("user", d.IDs.User(u.ID)).Msg("notice not delivered")
	return valex.DeliveryFailed, nil
}

func (n deskNotifier) NoticeReport(ctx context.Context, to int64, nt valex.Notice) {
	d := n.d
	lang := d.langOf(to)
	text := d.Tr.T(lang, "notice.report", map[string]any{
		"ID": nt.ID, "Kind": d.Tr.T(lang, "notice.kind."+string(nt.Kind), nil),
		"Delivered": nt.Totals[valex.DeliveryDelivered], "Blocked": nt.Totals[valex.DeliveryBlocked],
		"Failed": nt.Totals[valex.DeliveryFailed], "Skipped": nt.Totals[valex.DeliverySkipped],
	})
	if k := nt.Totals[valex.DeliveryUncertain]; k > 0 {
		text += "\n" + d.Tr.N(lang, "notice.report_uncertain", k, nil)
	}
	if _, err := d.Out.Send(ctx, bot.Message{ChatID: to, Text: text}); err != nil {
		d.Log.Warn().Str("error", d.IDs.Redact(err.Error(), to)).Str("chat", d.IDs.Chat(to)).Uint64("notice_id", nt.ID).Msg("notice report not delivered")
	}
}

func sortedIDs(ids []int64) []int64 {
	slices.Sort(ids)
	return ids
}
