package handlers

import (
	"context"
	"strconv"
	"strings"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// /conversations: the user's AI conversations, each with a delete button,
// and "delete all" behind a confirmation. The list shows the first words
// of each conversation, which are personal: the screen works only in the
// private chat. Deleting removes the turns for real (voice transcripts are
// turns too); compaction reclaims the pages.

// ConversationStore lists and deletes a user's conversations; *store.DB
// implements it.
type ConversationStore interface {
	Conversations(userID int64) ([]valex.ConversationSummary, error)
	DeleteConversation(userID int64, conv uint64) (int, error)
	DeleteConversations(userID int64) (convs, turns int, err error)
	UpdateAISettings(userID int64, fn func(*valex.AISettings)) (valex.AISettings, error)
	AISettings(userID int64) (valex.AISettings, error)
}

// Conversations is the /conversations screen.
type Conversations struct {
	h     *Handlers
	store ConversationStore
	work  WorkStopper // privacy.go; nil: no AI work to stop
	// policy says how long conversations are kept, as the list tells it.
	policy valex.RetentionPolicy
}

// NewConversations returns the screen; work may be nil. Register it with
// Register (ai_routes.go).
func NewConversations(h *Handlers, s ConversationStore, work WorkStopper, policy valex.RetentionPolicy) *Conversations {
	return &Conversations{h: h, store: s, work: work, policy: policy}
}

// convListMax is how many conversations the screen lists with a button;
// "delete all" covers the older ones too.
const convListMax = 12

// List handles /conversations.
func (c *Conversations) List(ctx context.Context, r *bot.Request) error {
	if !r.Private() {
		return valex.Errorf("conv.private_only", nil)
	}
	if _, err := c.h.registered(r); err != nil {
		return err
	}
	text, kb, err := c.screen(r, "")
	if err != nil {
		return err
	}
	return c.h.reply(ctx, r, text, kb)
}

// screen renders the list, after a notice line when there is one.
func (c *Conversations) screen(r *bot.Request, notice string) (string, [][]bot.Button, error) {
	list, err := c.store.Conversations(r.From.ID)
	if err != nil {
		return "", nil, err
	}
	prefix := ""
	if notice != "" {
		prefix = notice + "\n\n"
	}
	if len(list) == 0 {
		return prefix + c.h.t(r, "conv.none", nil), [][]bot.Button{}, nil
	}
	s, err := c.store.AISettings(r.From.ID)
	if err != nil {
		return "", nil, err
	}
	var lines []string
	var kb [][]bot.Button
	var row []bot.Button
	for i, conv := range list {
		if i == convListMax {
			lines = append(lines, c.h.Tr.N(r.Lang, "conv.more", len(list)-i, nil))
			break
		}
		title := c.h.t(r, "conv.untitled", nil)
		if conv.Title != "" {
			title = tghtml.Escape(conv.Title)
		}
		line := c.h.t(r, "conv.line", map[string]any{"ID": conv.ID, "Date": conv.LastAt.UTC().Format("2006-01-02"), "Title": title})
		if conv.ID == currentConv(s) {
			line += c.h.t(r, "conv.current", nil)
		}
		lines = append(lines, line)
		id := strconv.FormatUint(conv.ID, 10)
		row = append(row, bot.Button{Text: c.h.t(r, "conv.btn_delete", map[string]any{"ID": conv.ID}), Data: cbConversations.Data(c.h.CB, "d", id)})
		if len(row) == 3 {
			kb, row = append(kb, row), nil
		}
	}
	if len(row) > 0 {
		kb = append(kb, row)
	}
	kb = append(kb, []bot.Button{{Text: c.h.t(r, "conv.btn_delete_all", nil), Data: cbConversations.Data(c.h.CB, "a")}})
	text := c.h.t(r, "conv.list", map[string]any{"Lines": strings.Join(lines, "\n"), "Kept": c.keptText(r)})
	return prefix + text, kb, nil
}

// keptText says how long conversations are kept: what the purge job does.
func (c *Conversations) keptText(r *bot.Request) string {
	p := c.policy.Defaults().Conversations
	if p == (valex.Period{}) {
		return c.h.t(r, "conv.kept_forever", nil)
	}
	return c.h.t(r, "conv.kept_for", map[string]any{"Period": periodWords(c.h.Tr, r.Lang, p)})
}

// Button handles the screen's buttons: d <id> deletes one conversation, a
// asks to confirm deleting all, y deletes all, n keeps them.
func (c *Conversations) Button(ctx context.Context, r *bot.Request) error {
	args := r.CallbackArgs
	if !r.Private() {
		return valex.Errorf("conv.private_only", nil)
	}
	if _, err := c.h.registered(r); err != nil {
		return err
	}
	uid := r.From.ID
	edit := func(text string, kb [][]bot.Button) error {
		return c.h.Out.Edit(ctx, r.ChatID, r.MessageID, text, kb)
	}
	switch {
	case len(args) == 2 && args[0] == "d":
		conv, err := strconv.ParseUint(args[1], 10, 64)
		if err != nil || conv == 0 {
			return valex.Errorf("error.bad_callback", nil)
		}
		s, err := c.store.AISettings(uid)
		if err != nil {
			return err
		}
		current := conv == currentConv(s)
		if current {
			// The answer being written belongs to it: stop it first, so
			// nothing is written into the conversation after it is gone.
			c.stop(ctx, uid)
		}
		if _, err := c.store.DeleteConversation(uid, conv); err != nil {
			return err
		}
		if current {
			if err := c.freshConversation(uid); err != nil {
				return err
			}
		}
		text, kb, err := c.screen(r, c.h.t(r, "conv.deleted", map[string]any{"ID": conv}))
		if err != nil {
			return err
		}
		return edit(text, kb)
	case len(args) == 1 && args[0] == "a":
		list, err := c.store.Conversations(uid)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return edit(c.h.t(r, "conv.none", nil), [][]bot.Button{})
		}
		kb := [][]bot.Button{
			{{Text: c.h.t(r, "conv.btn_yes_all", nil), Data: cbConversations.Data(c.h.CB, "y")}},
			{{Text: c.h.t(r, "conv.btn_no", nil), Data: cbConversations.Data(c.h.CB, "n")}},
		}
		return edit(c.h.Tr.N(r.Lang, "conv.confirm_all", len(list), nil), kb)
	case len(args) == 1 && args[0] == "y":
		c.stop(ctx, uid)
		convs, _, err := c.store.DeleteConversations(uid)
		if err != nil {
			return err
		}
		if err := c.freshConversation(uid); err != nil {
			return err
		}
		return edit(c.h.Tr.N(r.Lang, "conv.deleted_all", convs, nil), [][]bot.Button{})
	case len(args) == 1 && args[0] == "n":
		text, kb, err := c.screen(r, c.h.t(r, "conv.kept", nil))
		if err != nil {
			return err
		}
		return edit(text, kb)
	}
	return valex.Errorf("error.bad_callback", nil)
}

// stop ends the user's AI work in flight, if any, before a deletion.
func (c *Conversations) stop(ctx context.Context, userID int64) {
	if c.work != nil {
		ctx, cancel := context.WithTimeout(ctx, stopAIWait)
		defer cancel()
		c.work.StopUser(ctx, userID)
	}
}

// freshConversation moves the user on to a new conversation after theirs
// was deleted, so the next message starts afresh.
func (c *Conversations) freshConversation(userID int64) error {
	_, err := c.store.UpdateAISettings(userID, func(s *valex.AISettings) {
		s.Conversation = currentConv(*s) + 1
	})
	return err
}

// periodWords is a period in words: "1 year", "90 days", "1 year, 6 months".
func periodWords(tr Translator, lang string, p valex.Period) string {
	var parts []string
	for _, part := range []struct {
		n   int
		key string
	}{{p.Years, "unit.years"}, {p.Months, "unit.months"}, {p.Days, "unit.days"}} {
		if part.n > 0 {
			parts = append(parts, tr.N(lang, part.key, part.n, nil))
		}
	}
	return strings.Join(parts, ", ")
}

// retentionLines says, for /privacy, how long each kind of data is kept:
// the periods the retention jobs enforce (Desk.Policy.Retention).
func (d *Desk) retentionLines(lang string) string {
	p := d.Policy.Retention.Defaults()
	words := func(x valex.Period) string { return periodWords(d.Tr, lang, x) }
	conv := d.Tr.T(lang, "privacy.keep.conversations", nil)
	if p.Conversations != (valex.Period{}) {
		conv = d.Tr.T(lang, "privacy.keep.conversations_for", map[string]any{"Period": words(p.Conversations)})
	}
	return strings.Join([]string{
		d.Tr.T(lang, "privacy.keep.account", map[string]any{"Inactive": words(p.InactiveAfter), "Grace": words(p.InactiveGrace)}),
		conv,
		d.Tr.T(lang, "privacy.keep.communications", map[string]any{"Period": words(p.Communications), "Feedback": words(p.FeedbackClose)}),
		d.Tr.T(lang, "privacy.keep.payments", map[string]any{"Period": words(p.PaymentRecords)}),
	}, "\n")
}
