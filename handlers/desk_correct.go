package handlers

// A correction request: staff see the requester's profile and correct a field.

import (
	"context"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
)

// profileView shows staff the requester's profile of a correction request,
// with a button per field to correct.
func (d *Desk) profileView(ctx context.Context, r *bot.Request, t valex.Request) error {
	if t.Kind != valex.KindRectification || t.UserID == 0 {
		return valex.Errorf("error.bad_callback", nil)
	}
	u, err := d.Users.User(t.UserID)
	if err != nil {
		return err
	}
	var kb [][]bot.Button
	var row []bot.Button
	for _, f := range valex.EditableFields {
		row = append(row, bot.Button{Text: d.t(r, "desk.btn_correct", map[string]any{"Field": d.t(r, "profile.edit_"+string(f), nil)}),
			Data: cbTicket.Data(d.CB, "fix-"+string(f), idArg(t.ID))})
		if len(row) == 2 {
			kb, row = append(kb, row), nil
		}
	}
	if row != nil {
		kb = append(kb, row)
	}
	kb = append(kb, []bot.Button{{Text: d.t(r, "desk.confirm_no", nil), Data: cbTicket.Data(d.CB, "show", idArg(t.ID))}})
	return d.reply(ctx, r, d.t(r, "desk.requester_profile", map[string]any{"ID": t.ID})+"\n\n"+d.profileText(r, u), kb)
}

// correct sets a field of a correction request's requester to value, as
// staff member r.From: the ticket's history and audit trail record which
// field (never the value), and the user is told.
func (d *Desk) correct(ctx context.Context, r *bot.Request, id uint64, field, value string) error {
	if !editable(field) {
		return valex.Errorf("error.bad_callback", nil)
	}
	t, err := d.Service.Correct(id, r.From.ID, valex.ProfileField(field), value)
	if err != nil {
		return err
	}
	lang := d.langOf(t.UserID)
	args := d.ticketArgs(lang, t)
	args["Field"] = d.Tr.T(lang, "profile.edit_"+field, nil)
	d.tell(ctx, t.UserID, lang, t.ID, "desk.user_corrected", args, nil)
	text, kb := d.ticketView(r, t)
	return d.reply(ctx, r, text, kb)
}
