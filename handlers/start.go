package handlers

import (
	"context"
	"strconv"
	"strings"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// Start registers the user: Telegram id and a nickname, nothing else. No
// password is ever asked for: Telegram has already authenticated the account.
func (h *Handlers) Start(ctx context.Context, r *bot.Request) error {
	now := h.Clock.Now()
	nick := r.From.Username
	if nick == "" {
		nick = strings.TrimSpace(r.From.FirstName + " " + r.From.LastName)
	}
	if len([]rune(nick)) > valex.MaxNicknameLen {
		nick = string([]rune(nick)[:valex.MaxNicknameLen])
	}
	lang := h.Tr.Match(r.From.LanguageCode)
	u, created, err := h.Users.EnsureUser(valex.User{
		ID: r.From.ID, Nickname: nick, Language: lang, CreatedAt: now, LastActiveAt: now,
	})
	if err != nil {
		return err
	}
	r.Lang = u.Language
	key := "start.welcome_back"
	if created {
		key = "start.welcome"
	}
	return h.reply(ctx, r, h.t(r, key, map[string]any{"Name": tghtml.Escape(u.Nickname)}), nil)
}

// Help lists the commands this user's role may use.
func (h *Handlers) Help(ctx context.Context, r *bot.Request) error {
	return h.reply(ctx, r, h.helpText(r.Lang, r.Role), nil)
}

// helpText is the /help text for a language and a role, built once.
func (h *Handlers) helpText(lang string, role valex.Role) string {
	key := lang + "\x00" + strconv.Itoa(int(role))
	if t, ok := h.helpTexts.Load(key); ok {
		return t.(string)
	}
	var b strings.Builder
	b.WriteString(h.Tr.T(lang, "help.title", nil))
	b.WriteString("\n\n")
	for _, c := range h.Menu.Commands(role) {
		b.WriteString("/")
		b.WriteString(c.Name)
		b.WriteString(" — ")
		b.WriteString(h.Tr.T(lang, c.HelpKey, nil))
		b.WriteString("\n")
	}
	t := strings.TrimRight(b.String(), "\n")
	h.helpTexts.Store(key, t)
	return t
}

// Language shows a button per supported language.
func (h *Handlers) Language(ctx context.Context, r *bot.Request) error {
	if r.Args != "" {
		return h.setLanguage(ctx, r, strings.ToLower(r.Args), 0)
	}
	var row []bot.Button
	for _, l := range h.Tr.Languages() {
		row = append(row, bot.Button{Text: h.Tr.T(l, "language.name", nil), Data: cbLanguage.Data(h.CB, l)})
	}
	return h.reply(ctx, r, h.t(r, "language.choose", nil), [][]bot.Button{row})
}

// LanguagePicked handles a language button.
func (h *Handlers) LanguagePicked(ctx context.Context, r *bot.Request) error {
	if len(r.CallbackArgs) != 1 {
		return valex.Errorf("error.bad_callback", nil)
	}
	return h.setLanguage(ctx, r, r.CallbackArgs[0], r.MessageID)
}

func (h *Handlers) setLanguage(ctx context.Context, r *bot.Request, lang string, editID int) error {
	if !h.supported(lang) {
		return valex.Errorf("language.unsupported", map[string]any{"Languages": strings.Join(h.Tr.Languages(), ", ")})
	}
	if _, err := h.registered(r); err != nil {
		return err
	}
	if _, err := h.Users.UpdateUser(r.From.ID, func(u *valex.User) error { u.Language = lang; return nil }); err != nil {
		return err
	}
	r.Lang = lang
	text := h.t(r, "language.set", nil)
	if editID != 0 {
		return h.Out.Edit(ctx, r.ChatID, editID, text, [][]bot.Button{})
	}
	return h.reply(ctx, r, text, nil)
}

func (h *Handlers) supported(lang string) bool {
	for _, l := range h.Tr.Languages() {
		if l == lang {
			return true
		}
	}
	return false
}
