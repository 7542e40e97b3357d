package handlers

import (
	"context"
	"strings"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// statePrefixProfile marks "the next message is the new value of a field".
const statePrefixProfile = "profile:"

// Profile shows what is stored about the user, with a button per field.
func (h *Handlers) Profile(ctx context.Context, r *bot.Request) error {
	u, err := h.registered(r)
	if err != nil {
		return err
	}
	return h.reply(ctx, r, h.profileText(r, u), h.profileKeyboard(r))
}

func (h *Handlers) profileText(r *bot.Request, u valex.User) string {
	empty := h.t(r, "profile.empty_value", nil)
	val := func(s string) string {
		if s == "" {
			return empty
		}
		return tghtml.Escape(s)
	}
	return h.t(r, "profile.show", map[string]any{
		"ID":          u.ID,
		"Nickname":    val(u.Nickname),
		"City":        val(u.City),
		"Description": val(u.Description),
		"Email":       val(u.Email),
		"Phone":       val(u.Phone),
		"Language":    h.Tr.T(u.Language, "language.name", nil),
	})
}

func (h *Handlers) profileKeyboard(r *bot.Request) [][]bot.Button {
	btn := func(f valex.ProfileField) bot.Button {
		return bot.Button{Text: h.t(r, "profile.edit_"+string(f), nil), Data: h.CB.Data("prof", "edit", string(f))}
	}
	return [][]bot.Button{
		{btn(valex.FieldNickname), btn(valex.FieldCity)},
		{btn(valex.FieldDescription), btn(valex.FieldEmail)},
		{{Text: h.t(r, "profile.edit_phone", nil), Data: h.CB.Data("prof", "phone")}},
	}
}

// ProfileButton handles the profile's buttons: ask for a field's new value,
// clear it, or offer the contact-sharing button for the phone.
func (h *Handlers) ProfileButton(ctx context.Context, r *bot.Request) error {
	if _, err := h.registered(r); err != nil {
		return err
	}
	args := r.CallbackArgs
	switch {
	case len(args) == 2 && args[0] == "edit" && editable(args[1]):
		f := valex.ProfileField(args[1])
		if err := h.Users.SetState(r.From.ID, statePrefixProfile+string(f)); err != nil {
			return err
		}
		kb := [][]bot.Button{{{Text: h.t(r, "profile.clear", nil), Data: h.CB.Data("prof", "clear", string(f))}}}
		if f == valex.FieldNickname {
			kb = nil // a nickname cannot be empty
		}
		return h.reply(ctx, r, h.t(r, "profile.ask_"+string(f), nil), kb)
	case len(args) == 2 && args[0] == "clear" && editable(args[1]) && args[1] != string(valex.FieldNickname):
		return h.saveField(ctx, r, valex.ProfileField(args[1]), "")
	case len(args) == 1 && args[0] == "phone":
		_, err := h.Out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: h.t(r, "profile.ask_phone", nil), ShareContact: h.t(r, "profile.share_phone", nil)})
		return err
	}
	return valex.Errorf("error.bad_callback", nil)
}

func editable(f string) bool {
	for _, e := range valex.EditableFields {
		if string(e) == f {
			return true
		}
	}
	return false
}

// Text handles a plain message: the answer to a question the bot asked
// (dialog state), or else a chat turn.
func (h *Handlers) Text(ctx context.Context, r *bot.Request) error {
	state, err := h.Users.State(r.From.ID)
	if err != nil {
		return err
	}
	if f, ok := strings.CutPrefix(state, statePrefixProfile); ok && editable(f) {
		v, err := valex.ValidateProfileField(valex.ProfileField(f), r.Text)
		if err != nil {
			return err // the state stays: the user can simply try again
		}
		return h.saveField(ctx, r, valex.ProfileField(f), v)
	}
	return h.chat(ctx, r)
}

func (h *Handlers) saveField(ctx context.Context, r *bot.Request, f valex.ProfileField, v string) error {
	u, err := h.Users.UpdateUser(r.From.ID, func(u *valex.User) error { u.Apply(f, v); return nil })
	if err != nil {
		return err
	}
	if err := h.Users.SetState(r.From.ID, ""); err != nil {
		return err
	}
	if _, err := h.Out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: h.t(r, "profile.saved", nil), RemoveKeyboard: f == valex.FieldPhone}); err != nil {
		return err
	}
	return h.reply(ctx, r, h.profileText(r, u), h.profileKeyboard(r))
}

// Contact stores the phone number the user shared with Telegram's button.
// Only the user's own contact counts: a forwarded card of someone else is
// third-party data the policy forbids us to take.
func (h *Handlers) Contact(ctx context.Context, r *bot.Request) error {
	if _, err := h.registered(r); err != nil {
		return err
	}
	if r.ContactUserID != r.From.ID {
		return valex.Errorf("profile.not_your_phone", nil)
	}
	return h.saveField(ctx, r, valex.FieldPhone, r.Phone)
}

// Cancel drops whatever the bot was waiting for.
func (h *Handlers) Cancel(ctx context.Context, r *bot.Request) error {
	state, err := h.Users.State(r.From.ID)
	if err != nil {
		return err
	}
	if state == "" {
		return h.reply(ctx, r, h.t(r, "cancel.nothing", nil), nil)
	}
	if err := h.Users.SetState(r.From.ID, ""); err != nil {
		return err
	}
	_, err = h.Out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: h.t(r, "cancel.done", nil), RemoveKeyboard: true})
	return err
}
