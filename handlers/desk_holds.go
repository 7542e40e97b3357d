package handlers

// /hold and /unhold: legal holds on an account (admins).

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
)

// Hold places a legal hold on a user's data (admins): /hold 1001. While it
// stands the account cannot be erased; erasure requests wait for staff.
func (d *Desk) Hold(ctx context.Context, r *bot.Request) error {
	return d.setHold(ctx, r, true)
}

// Unhold lifts a legal hold: /unhold 1001.
func (d *Desk) Unhold(ctx context.Context, r *bot.Request) error {
	return d.setHold(ctx, r, false)
}

func (d *Desk) setHold(ctx context.Context, r *bot.Request, held bool) error {
	idText, reason, _ := strings.Cut(strings.TrimSpace(r.Args), " ")
	if idText == "" {
		return d.reply(ctx, r, d.t(r, "desk.hold_usage", nil), nil)
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return valex.Errorf("desk.bad_user_id", nil)
	}
	if _, err := d.Users.User(id); errors.Is(err, valex.ErrNotFound) {
		return valex.Errorf("desk.no_such_user", map[string]any{"User": id})
	} else if err != nil {
		return err
	}
	if !held {
		since, err := d.Service.LiftHold(id, r.From.ID)
		if err != nil {
			return err
		}
		return d.reply(ctx, r, d.t(r, "desk.hold_lifted", map[string]any{"User": id, "Since": valex.FormatDate(since)}), nil)
	}
	placed, err := d.Service.PlaceHold(id, r.From.ID, reason)
	if err != nil {
		return err
	}
	if !placed {
		_, since, err := d.Store.Hold(id)
		if err != nil {
			return err
		}
		return valex.Errorf("desk.already_held", map[string]any{"User": id, "Since": valex.FormatDate(since)})
	}
	return d.reply(ctx, r, d.t(r, "desk.hold_placed", map[string]any{"User": id}), nil)
}
