// Package handlers answers users: one file per feature area, each declaring
// the small interfaces it needs. routes.go is the table of every command.
package handlers

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
)

// Translator renders locale keys.
type Translator interface {
	T(lang, key string, args map[string]any) string
	N(lang, key string, count int, args map[string]any) string
	Languages() []string
	Match(telegramLanguageCode string) string
	Has(lang, key string) bool
}

// Sender is the part of the outbox handlers use.
type Sender interface {
	Send(ctx context.Context, m bot.Message) (int, error)
	Edit(ctx context.Context, chatID int64, messageID int, text string, kb [][]bot.Button) error
}

// Users is the part of the store that keeps accounts and dialog state.
type Users interface {
	User(id int64) (valex.User, error)
	// UserActivity is the language and last activity of User, without
	// opening the sealed personal fields.
	UserActivity(id int64) (language string, lastActive time.Time, err error)
	EnsureUser(u valex.User) (valex.User, bool, error)
	UpdateUser(id int64, fn func(*valex.User) error) (valex.User, error)
	TouchUser(id int64, at time.Time) error
	CountUsers() (int, error)
}

// Menu lists the commands a role may use.
type Menu interface {
	Commands(role valex.Role) []bot.CommandInfo
}

// Handlers holds what the handlers share.
type Handlers struct {
	Users Users
	Out   Sender
	Tr    Translator
	CB    *bot.Signer
	Clock valex.Clock
	Menu  Menu
	Roles Roles
	Log   zerolog.Logger
	// IDs gives the pseudonyms that stand for users in log lines: a log
	// line never carries a Telegram id (nor text, names or contacts).
	IDs valex.Pseudonymizer
	// Generations stops a running AI answer for /cancel (NewAI sets it).
	Generations interface{ CancelGeneration(userID int64) bool }
	// Ops reports on the running bot for /stats and /jobs; nil: /stats
	// shows the account count only.
	Ops Operations

	helpTexts sync.Map // language and role → the /help text (locales and commands are fixed at start)
}

// Roles maps Telegram user ids to roles, from configuration.
type Roles struct {
	Admins  map[int64]bool
	Support map[int64]bool
}

// Of returns the role of a user id.
func (r Roles) Of(id int64) valex.Role {
	switch {
	case r.Admins[id]:
		return valex.RoleAdmin
	case r.Support[id]:
		return valex.RoleSupport
	}
	return valex.RoleUser
}

// reply sends text to the request's chat.
func (h *Handlers) reply(ctx context.Context, r *bot.Request, text string, kb [][]bot.Button) error {
	_, err := h.Out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: text, Keyboard: kb})
	return err
}

// words lists the comma-separated words a locale key holds, in every
// language: what users may type (for /voice, "on" or "вкл") is read in any
// of them, whatever language the bot speaks to them.
func (h *Handlers) words(key string) []string {
	var out []string
	for _, lang := range h.Tr.Languages() {
		for _, w := range strings.Split(h.Tr.T(lang, key, nil), ",") {
			if w = strings.ToLower(strings.TrimSpace(w)); w != "" && !slices.Contains(out, w) {
				out = append(out, w)
			}
		}
	}
	return out
}

// t renders a key in the request's language.
func (h *Handlers) t(r *bot.Request, key string, args map[string]any) string {
	return h.Tr.T(r.Lang, key, args)
}

// touchEvery limits last-activity writes to one per user per interval: the
// retention rules need days, not seconds, and a write per message would
// cost a disk sync per message.
const touchEvery = time.Hour

// Lang picks the language to answer in: the registered user's choice, else
// Telegram's language_code. It also records activity (for the inactivity
// rule of the retention policy).
func (h *Handlers) Lang(ctx context.Context, f bot.From) string {
	language, lastActive, err := h.Users.UserActivity(f.ID)
	if err != nil {
		if !errors.Is(err, valex.ErrNotFound) {
			h.Log.Error().Str("error", h.IDs.Redact(err.Error(), f.ID)).Str("user", h.IDs.User(f.ID)).Msg("load user")
		}
		return h.Tr.Match(f.LanguageCode)
	}
	if now := h.Clock.Now(); now.Sub(lastActive) >= touchEvery {
		if err := h.Users.TouchUser(f.ID, now); err != nil {
			h.Log.Error().Str("error", h.IDs.Redact(err.Error(), f.ID)).Str("user", h.IDs.User(f.ID)).Msg("touch user")
		}
	}
	if language == "" {
		return h.Tr.Match(f.LanguageCode)
	}
	return language
}

// registered returns the request's user, or a UserError asking to /start.
func (h *Handlers) registered(r *bot.Request) (valex.User, error) {
	u, err := h.Users.User(r.From.ID)
	if errors.Is(err, valex.ErrNotFound) {
		return u, valex.Errorf("error.not_registered", nil)
	}
	return u, err
}
