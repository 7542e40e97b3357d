package handlers

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// /history (and its older name /conversations, which the privacy texts
// and long-time users know): the user's AI conversations, newest first, a
// page at a time. Each can be resumed (the next message continues it, with
// its history) or deleted; "delete all" asks for a confirmation. The list
// shows the first words of each conversation, which are personal: the
// screen works only in the private chat. Opened in a topic of that chat,
// "resume" gives the conversation to the topic (topics.go). Deleting
// removes the turns for real (voice transcripts are turns too); compaction
// reclaims the pages.

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

// convListMax is how many conversations one page of the screen lists.
const convListMax = 12

// List handles /history and /conversations.
func (c *Conversations) List(ctx context.Context, r *bot.Request) error {
	if !r.Private() {
		return valex.Errorf("conv.private_only", nil)
	}
	if _, err := c.h.registered(r); err != nil {
		return err
	}
	text, kb, err := c.screen(r, "", 0)
	if err != nil {
		return err
	}
	return c.h.reply(ctx, r, text, kb)
}

// screen renders one page of the list, after a notice line when there is
// one. A page past the end shows the last one.
func (c *Conversations) screen(r *bot.Request, notice string, page int) (string, [][]bot.Button, error) {
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
	// The conversation written in last comes first: a resumed one rises.
	slices.SortStableFunc(list, func(a, b valex.ConversationSummary) int { return b.LastAt.Compare(a.LastAt) })
	here := c.here(r, s)
	pages := (len(list) + convListMax - 1) / convListMax
	page = min(max(page, 0), pages-1)
	pg := strconv.Itoa(page)
	var lines []string
	var kb [][]bot.Button
	for _, conv := range list[page*convListMax : min((page+1)*convListMax, len(list))] {
		line := c.h.t(r, "conv.line", map[string]any{"ID": conv.ID, "Date": conv.LastAt.UTC().Format("2006-01-02"), "Title": c.title(r, conv)})
		switch {
		case conv.ID == here:
			line += c.h.t(r, "conv.current", nil)
		case s.TopicOf(conv.ID) != 0:
			line += c.h.t(r, "conv.in_topic", nil)
		}
		lines = append(lines, line)
		id := strconv.FormatUint(conv.ID, 10)
		var row []bot.Button
		if conv.ID != here {
			row = append(row, bot.Button{Text: c.h.t(r, "conv.btn_resume", map[string]any{"ID": conv.ID}), Data: cbConversations.Data(c.h.CB, "r", id, pg)})
		}
		row = append(row, bot.Button{Text: c.h.t(r, "conv.btn_delete", map[string]any{"ID": conv.ID}), Data: cbConversations.Data(c.h.CB, "d", id, pg)})
		kb = append(kb, row)
	}
	if pages > 1 {
		lines = append(lines, c.h.t(r, "conv.page", map[string]any{"Page": page + 1, "Pages": pages}))
		var nav []bot.Button
		if page > 0 {
			nav = append(nav, bot.Button{Text: c.h.t(r, "conv.btn_newer", nil), Data: cbConversations.Data(c.h.CB, "p", strconv.Itoa(page-1))})
		}
		if page < pages-1 {
			nav = append(nav, bot.Button{Text: c.h.t(r, "conv.btn_older", nil), Data: cbConversations.Data(c.h.CB, "p", strconv.Itoa(page+1))})
		}
		kb = append(kb, nav)
	}
	kb = append(kb, []bot.Button{{Text: c.h.t(r, "conv.btn_delete_all", nil), Data: cbConversations.Data(c.h.CB, "a")}})
	text := c.h.t(r, "conv.list", map[string]any{"Lines": strings.Join(lines, "\n"), "Kept": c.keptText(r)})
	return prefix + text, kb, nil
}

// here is the conversation in use where the screen is: the topic's, or
// the current one.
func (c *Conversations) here(r *bot.Request, s valex.AISettings) uint64 {
	if inTopic(r) {
		conv, _ := s.TopicConversation(r.ThreadID)
		return conv // 0 when the topic has none yet
	}
	return currentConv(s)
}

// title is a conversation's title, escaped for the screen.
func (c *Conversations) title(r *bot.Request, conv valex.ConversationSummary) string {
	if conv.Title == "" {
		return c.h.t(r, "conv.untitled", nil)
	}
	return tghtml.Escape(conv.Title)
}

// keptText says how long conversations are kept: what the purge job does.
func (c *Conversations) keptText(r *bot.Request) string {
	p := c.policy.Defaults().Conversations
	if p == (valex.Period{}) {
		return c.h.t(r, "conv.kept_forever", nil)
	}
	return c.h.t(r, "conv.kept_for", map[string]any{"Period": periodWords(c.h.Tr, r.Lang, p)})
}

// Button handles the screen's buttons: r <id> <page> resumes a
// conversation, d <id> <page> deletes one, p <page> turns the page, a asks
// to confirm deleting all, y deletes all, n keeps them. (Buttons sent before
// paging came carry d <id> alone.)
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
	page := 0
	if len(args) == 3 || (len(args) == 2 && args[0] == "p") {
		n, err := strconv.Atoi(args[len(args)-1])
		if err != nil || n < 0 {
			return valex.Errorf("error.bad_callback", nil)
		}
		page = n
	}
	switch {
	case len(args) == 2 && args[0] == "p":
		text, kb, err := c.screen(r, "", page)
		if err != nil {
			return err
		}
		return edit(text, kb)
	case len(args) >= 2 && len(args) <= 3 && args[0] == "r":
		conv, err := strconv.ParseUint(args[1], 10, 64)
		if err != nil || conv == 0 {
			return valex.Errorf("error.bad_callback", nil)
		}
		notice, err := c.resume(r, conv)
		if err != nil {
			return err
		}
		text, kb, err := c.screen(r, notice, page)
		if err != nil {
			return err
		}
		return edit(text, kb)
	case len(args) >= 2 && len(args) <= 3 && args[0] == "d":
		conv, err := strconv.ParseUint(args[1], 10, 64)
		if err != nil || conv == 0 {
			return valex.Errorf("error.bad_callback", nil)
		}
		s, err := c.store.AISettings(uid)
		if err != nil {
			return err
		}
		inUse := conv == currentConv(s) || s.TopicOf(conv) != 0
		if inUse {
			// The answer being written may belong to it: stop it first,
			// so nothing is written into the conversation after it is gone.
			c.stop(ctx, uid)
		}
		if _, err := c.store.DeleteConversation(uid, conv); err != nil {
			return err
		}
		if inUse {
			if _, err := c.store.UpdateAISettings(uid, func(s *valex.AISettings) {
				if conv == currentConv(*s) {
					s.Conversation = s.NewConversation()
				}
				s.ForgetConversation(conv) // its topics start afresh
			}); err != nil {
				return err
			}
		}
		text, kb, err := c.screen(r, c.h.t(r, "conv.deleted", map[string]any{"ID": conv}), page)
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
		if _, err := c.store.UpdateAISettings(uid, func(s *valex.AISettings) {
			s.Conversation = s.NewConversation()
			s.Topics = nil // every topic starts afresh
		}); err != nil {
			return err
		}
		return edit(c.h.Tr.N(r.Lang, "conv.deleted_all", convs, nil), [][]bot.Button{})
	case len(args) == 1 && args[0] == "n":
		text, kb, err := c.screen(r, c.h.t(r, "conv.kept", nil), 0)
		if err != nil {
			return err
		}
		return edit(text, kb)
	}
	return valex.Errorf("error.bad_callback", nil)
}

// resume makes conv the conversation where the screen is (the topic, or
// the current one) and returns the notice that says so. A conversation
// deleted since the list was shown is refused.
func (c *Conversations) resume(r *bot.Request, conv uint64) (string, error) {
	list, err := c.store.Conversations(r.From.ID)
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(list, func(s valex.ConversationSummary) bool { return s.ID == conv })
	if i < 0 {
		return "", valex.Errorf("conv.gone", map[string]any{"ID": conv})
	}
	if _, err := c.store.UpdateAISettings(r.From.ID, func(s *valex.AISettings) {
		if inTopic(r) {
			s.SetTopic(r.ThreadID, conv)
			return
		}
		s.Conversation = conv
	}); err != nil {
		return "", err
	}
	return c.h.t(r, "conv.resumed", map[string]any{"ID": conv, "Title": c.title(r, list[i])}), nil
}

// stop ends the user's AI work in flight, if any, before a deletion.
func (c *Conversations) stop(ctx context.Context, userID int64) {
	if c.work != nil {
		ctx, cancel := context.WithTimeout(ctx, stopAIWait)
		defer cancel()
		c.work.StopUser(ctx, userID)
	}
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
