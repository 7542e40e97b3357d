package handlers

// A private bot: only staff and the users admins allow-list may use it
// (/allow, /disallow); everyone else is told so and nothing else happens.

import (
	"context"
	"strconv"
	"strings"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
)

// AllowListStore keeps a private bot's allow-list.
type AllowListStore interface {
	Allow(userID int64, allowed bool) error
	Allowed(userID int64) (bool, error)
}

// AllowList is the private-bot gate and its admin commands.
type AllowList struct {
	H     *Handlers
	Store AllowListStore
}

// Register routes /allow and /disallow.
func (l *AllowList) Register(rt *bot.Router) {
	rt.Command("allow", valex.RoleAdmin, "cmd.allow", func(ctx context.Context, r *bot.Request) error { return l.set(ctx, r, true) })
	rt.Command("disallow", valex.RoleAdmin, "cmd.disallow", func(ctx context.Context, r *bot.Request) error { return l.set(ctx, r, false) })
}

func (l *AllowList) set(ctx context.Context, r *bot.Request, allowed bool) error {
	id, err := strconv.ParseInt(strings.TrimSpace(r.Args), 10, 64)
	if err != nil || id <= 0 {
		return l.H.reply(ctx, r, l.H.t(r, "access.usage", nil), nil)
	}
	if err := l.Store.Allow(id, allowed); err != nil {
		return err
	}
	key := "access.allowed"
	if !allowed {
		key = "access.disallowed"
	}
	return l.H.reply(ctx, r, l.H.t(r, key, map[string]any{"User": id}), nil)
}

// Gate is router middleware for a private bot: a user who is neither staff
// nor allow-listed gets one sentence and nothing else (payments in flight
// still pass, so no charge is ever left unanswered).
func (l *AllowList) Gate(next bot.HandlerFunc) bot.HandlerFunc {
	return func(ctx context.Context, r *bot.Request) error {
		if r.Role != valex.RoleUser || r.From.ID == 0 || r.Kind == bot.KindPreCheckout || r.Kind == bot.KindPayment || r.Kind == bot.KindIgnored {
			return next(ctx, r)
		}
		ok, err := l.Store.Allowed(r.From.ID)
		if err != nil || ok {
			return errOr(err, func() error { return next(ctx, r) })
		}
		if !r.Private() && r.Kind != bot.KindCallback {
			return nil // groups: say nothing
		}
		return valex.Errorf("access.private_bot", nil)
	}
}

func errOr(err error, fn func() error) error {
	if err != nil {
		return err
	}
	return fn()
}
