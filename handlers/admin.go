package handlers

import (
	"context"

	"github.com/valex-ai/valex/bot"
)

// Stats shows admins how many accounts exist. Counts only: no personal data.
func (h *Handlers) Stats(ctx context.Context, r *bot.Request) error {
	n, err := h.Users.CountUsers()
	if err != nil {
		return err
	}
	return h.reply(ctx, r, h.Tr.N(r.Lang, "admin.stats", n, nil), nil)
}

// WhoAmI tells staff which role the bot gives them (useful when configuring
// VALEX_ADMINS and VALEX_SUPPORT).
func (h *Handlers) WhoAmI(ctx context.Context, r *bot.Request) error {
	return h.reply(ctx, r, h.t(r, "admin.whoami", map[string]any{"ID": r.From.ID, "Role": h.t(r, "role."+r.Role.String(), nil)}), nil)
}
