package handlers

import (
	"context"

	"github.com/valex-ai/valex/bot"
)

// chat answers a plain message that is not part of a dialog. Until the AI
// aggregator is wired in, it says so instead of staying silent.
func (h *Handlers) chat(ctx context.Context, r *bot.Request) error {
	if _, err := h.registered(r); err != nil {
		return err
	}
	return h.reply(ctx, r, h.t(r, "chat.unavailable", nil), nil)
}
