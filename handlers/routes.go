package handlers

import (
	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
)

// Register is the table of the account commands. The other tables:
// ai_routes.go (chat, models, images, voice, usage) and privacy_routes.go
// (privacy rights, the staff desk, broadcasts). Find a command in one of
// the three, then its handler in the feature's file.
func (h *Handlers) Register(rt *bot.Router) {
	// Account (start.go, profile.go)
	rt.Command("start", valex.RoleUser, "cmd.start", h.Start)
	rt.Command("help", valex.RoleUser, "cmd.help", h.Help)
	rt.Command("language", valex.RoleUser, "cmd.language", h.Language)
	rt.Command("profile", valex.RoleUser, "cmd.profile", h.Profile)
	rt.Command("cancel", valex.RoleUser, "cmd.cancel", h.Cancel)
	rt.Callback(cbLanguage, valex.RoleUser, h.LanguagePicked)
	rt.Callback(cbProfile, valex.RoleUser, h.ProfileButton)
	rt.Dialog(dialogProfileField, valex.RoleUser, h.ProfileAnswer,
		bot.DialogOptions{Kinds: []bot.Kind{bot.KindText, bot.KindContact}, Buttons: []bot.CallbackRoute{cbProfile}})
	rt.On(bot.KindContact, h.Contact)
	// Only screens with nothing personal answer in groups (bot.Router.InGroups).
	rt.InGroups("help", "cancel")

	// Staff and admins (admin.go)
	rt.Command("whoami", valex.RoleSupport, "cmd.whoami", h.WhoAmI)
	rt.Command("stats", valex.RoleAdmin, "cmd.stats", h.AdminStats)
	rt.Command("jobs", valex.RoleAdmin, "cmd.jobs", h.JobsList)
}

// MenuCommands is the command menu shown to everyone via setMyCommands.
func MenuCommands(rt *bot.Router, tr Translator, lang string) []bot.Command {
	var out []bot.Command
	for _, c := range rt.Commands(valex.RoleUser) {
		out = append(out, bot.Command{Name: c.Name, Description: tr.T(lang, c.HelpKey, nil)})
	}
	return out
}
