package handlers

import (
	"context"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// dialogProfileField is the prompt for a profile field's new value (its
// argument is the field); the phone's prompt takes a shared contact.
const dialogProfileField = "profile.field"

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
		return bot.Button{Text: h.t(r, "profile.edit_"+string(f), nil), Data: cbProfile.Data(h.CB, "edit", string(f))}
	}
	return [][]bot.Button{
		{btn(valex.FieldNickname), btn(valex.FieldCity)},
		{btn(valex.FieldDescription), btn(valex.FieldEmail)},
		{{Text: h.t(r, "profile.edit_phone", nil), Data: cbProfile.Data(h.CB, "phone")}},
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
		r.StartDialog(dialogProfileField, string(f))
		kb := [][]bot.Button{{{Text: h.t(r, "profile.clear", nil), Data: cbProfile.Data(h.CB, "clear", string(f))}}}
		if f == valex.FieldNickname {
			kb = nil // a nickname cannot be empty
		}
		return h.reply(ctx, r, h.t(r, "profile.ask_"+string(f), nil), kb)
	case len(args) == 2 && args[0] == "clear" && editable(args[1]) && args[1] != string(valex.FieldNickname):
		return h.saveField(ctx, r, valex.ProfileField(args[1]), "")
	case len(args) == 1 && args[0] == "phone":
		r.StartDialog(dialogProfileField, string(valex.FieldPhone))
		_, err := h.Out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: h.t(r, "profile.ask_phone", nil), ShareContact: h.t(r, "profile.share_phone", nil)})
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

// ProfileAnswer takes the answer to a profile prompt: the new value of a
// field, or for the phone the contact shared with Telegram's button (a
// typed number is refused: only the shared contact is verified as the
// user's own). A value that fails validation keeps the prompt open.
func (h *Handlers) ProfileAnswer(ctx context.Context, r *bot.Request) error {
	f := r.Dialog.Arg
	switch {
	case f == string(valex.FieldPhone) && r.Kind == bot.KindContact:
		return h.Contact(ctx, r)
	case f == string(valex.FieldPhone):
		return valex.Errorf("profile.phone_use_button", nil)
	case r.Kind != bot.KindText || !editable(f):
		return valex.Errorf("error.dialog_wrong_kind", nil)
	}
	v, err := valex.ValidateProfileField(valex.ProfileField(f), r.Text)
	if err != nil {
		return err // the prompt stays: the user can simply try again
	}
	return h.saveField(ctx, r, valex.ProfileField(f), v)
}

func (h *Handlers) saveField(ctx context.Context, r *bot.Request, f valex.ProfileField, v string) error {
	u, err := h.Users.UpdateUser(r.From.ID, func(u *valex.User) error { u.Apply(f, v); return nil })
	if err != nil {
		return err
	}
	if _, err := h.Out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: h.t(r, "profile.saved", nil), RemoveKeyboard: f == valex.FieldPhone}); err != nil {
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

// Cancel ends what the bot was doing for the user: the prompt waiting for
// their answer (the router has already ended it, see bot.Dialog), else a
// running AI answer. Either way it takes away a reply keyboard left on
// screen (the phone prompt's).
func (h *Handlers) Cancel(ctx context.Context, r *bot.Request) error {
	key := "cancel.nothing"
	switch {
	case r.Dialog != nil:
		key = "cancel.done"
	case h.Generations != nil && h.Generations.CancelGeneration(r.From.ID):
		key = "ai.chat.cancelled"
	}
	_, err := h.Out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: h.t(r, key, nil), RemoveKeyboard: r.Private()})
	return err
}

// DialogEnded tells the user the prompt they left ended (bot.DialogConfig):
// after a command, a button of another screen, or the timeout — then the
// message that came too late went nowhere.
func (h *Handlers) DialogEnded(ctx context.Context, r *bot.Request, d bot.Dialog, why bot.DialogEnd) error {
	key := map[bot.DialogEnd]string{bot.EndedByCommand: "dialog.ended_command", bot.EndedByButton: "dialog.ended_button",
		bot.EndedByTimeout: "dialog.ended_timeout"}[why]
	if key == "" {
		return nil
	}
	if why == bot.EndedByTimeout && r.Kind == bot.KindCallback {
		key = "dialog.ended_button"
	}
	what := h.t(r, "dialog.name."+d.Name, nil)
	_, err := h.Out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: h.t(r, key, map[string]any{"What": what}),
		RemoveKeyboard: d.Name == dialogProfileField && d.Arg == string(valex.FieldPhone)})
	return err
}
