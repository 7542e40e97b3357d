package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// The user side of the desk: the rights of policy section 7, each one tap
// away from /privacy, and free-text requests to the operator. Everything a
// user asks for is a ticket; what can be done at once is done at once and
// the ticket records it.

// PolicyVersion is the policy version in force, for consents recorded
// elsewhere (the AI consent before a first chat). A store error is logged
// and the configured version returned.
func (d *Desk) PolicyVersion() string {
	v, err := d.policyVersion()
	if err != nil {
		d.Log.Error().Err(err).Msg("load policy version")
		return d.Policy.Version
	}
	return v
}

// policyVersion is the policy in force: the latest one an admin published
// with /policy_update, else the configured one.
func (d *Desk) policyVersion() (string, error) {
	p, ok, err := d.Store.LatestPolicyVersion()
	if err != nil {
		return "", err
	}
	if ok {
		return p.Version, nil
	}
	return d.Policy.Version, nil
}

// knownCategories are the export categories with their own wording, in
// the order they are listed; others use a generic line.
var knownCategories = []string{
	"profile", "settings", "consents", "restrictions", "requests", "request_messages", "audit", "notices",
	"conversations", "ai_settings", "ai_usage", "usage", "payments",
}

// categoryLines lists the categories with something stored, one per line.
func (d *Desk) categoryLines(lang string, counts map[string]int) string {
	names := slices.Sorted(maps.Keys(counts))
	slices.SortStableFunc(names, func(a, b string) int {
		ia, ib := slices.Index(knownCategories, a), slices.Index(knownCategories, b)
		if ia < 0 {
			ia = len(knownCategories)
		}
		if ib < 0 {
			ib = len(knownCategories)
		}
		return ia - ib
	})
	var lines []string
	for _, name := range names {
		n := counts[name]
		if n == 0 {
			continue
		}
		if slices.Contains(knownCategories, name) {
			lines = append(lines, d.Tr.N(lang, "privacy.cat."+name, n, nil))
		} else {
			lines = append(lines, d.Tr.N(lang, "privacy.cat_other", n, map[string]any{"Name": tghtml.Escape(name)}))
		}
	}
	if len(lines) == 0 {
		return d.Tr.T(lang, "privacy.cat_none", nil)
	}
	return strings.Join(lines, "\n")
}

// collect gathers the export of the store and of every registered section.
func (d *Desk) collect(userID int64) (map[string]any, map[string]int, error) {
	data, counts, err := d.Store.Export(userID)
	if err != nil {
		return nil, nil, err
	}
	for _, section := range d.Export {
		more, n, err := section(userID)
		if err != nil {
			return nil, nil, fmt.Errorf("export user %d: %w", userID, err)
		}
		maps.Copy(data, more)
		maps.Copy(counts, n)
	}
	return data, counts, nil
}

// exportFormat names the layout of the /mydata document.
const exportFormat = "valex-export/1"

// exportDoc is the /mydata document: machine-readable JSON. Categories
// says, for each category of Data, why it is processed, where it came
// from, how long it is kept and which recipients got it; Recipients lists
// those (the AI providers, from the usage ledger).
type exportDoc struct {
	Format        string                 `json:"format"`
	GeneratedAt   time.Time              `json:"generated_at"`
	TelegramID    int64                  `json:"telegram_id"`
	RequestID     uint64                 `json:"request_id,omitempty"` // none for the operator's export-user
	PolicyVersion string                 `json:"policy_version"`
	Counts        map[string]int         `json:"counts"`
	Categories    map[string]categoryDoc `json:"categories"`
	Recipients    []recipientDoc         `json:"recipients"`
	Data          map[string]any         `json:"data"`
}

// Privacy shows the policy, what is stored about the user, and a button
// for every right.
func (d *Desk) Privacy(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	if _, err := d.registered(r); err != nil {
		return err
	}
	version, err := d.policyVersion()
	if err != nil {
		return err
	}
	_, counts, err := d.collect(r.From.ID)
	if err != nil {
		return err
	}
	text := d.t(r, "privacy.menu", map[string]any{
		"Version": tghtml.Escape(version), "URL": tghtml.Escape(d.Policy.URL),
		"Stored": d.categoryLines(r.Lang, counts), "Support": tghtml.Escape(d.Policy.SupportURL),
		"Deadline":  d.deadlineText(r.Lang, d.SLA.RuleFor(valex.KindPersonalData)),
		"Retention": d.retentionLines(r.Lang), // conversations.go
	})
	btn := func(key, arg string) bot.Button {
		return bot.Button{Text: d.t(r, key, nil), Data: cbPrivacy.Data(d.CB, arg)}
	}
	kb := [][]bot.Button{
		{btn("privacy.btn_access", "access"), btn("privacy.btn_rectify", "rectify")},
		{btn("privacy.btn_erase", "erase"), btn("privacy.btn_restrict", "restrict")},
		{btn("privacy.btn_consent", "consent"), btn("privacy.btn_personal_data", "pd")},
	}
	if d.Policy.URL != "" {
		kb = append(kb, []bot.Button{{Text: d.t(r, "privacy.btn_policy", nil), URL: d.Policy.URL}})
	}
	return d.reply(ctx, r, text, kb)
}

// PrivacyButton runs the right a /privacy button names.
func (d *Desk) PrivacyButton(ctx context.Context, r *bot.Request) error {
	if len(r.CallbackArgs) != 1 {
		return valex.Errorf("error.bad_callback", nil)
	}
	if err := privateOnly(r); err != nil {
		return err
	}
	if _, err := d.registered(r); err != nil {
		return err
	}
	switch r.CallbackArgs[0] {
	case "access":
		return d.access(ctx, r)
	case "rectify":
		return d.rectify(ctx, r)
	case "erase":
		return d.forgetConfirm(ctx, r)
	case "restrict", "consent":
		return d.consentScreen(ctx, r)
	case "pd":
		return d.askText(ctx, r, valex.KindPersonalData)
	}
	return valex.Errorf("error.bad_callback", nil)
}

// MyData answers an access request at once: /mydata.
func (d *Desk) MyData(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	if _, err := d.registered(r); err != nil {
		return err
	}
	return d.access(ctx, r)
}

// access records an access request, sends the export as a JSON document
// with a readable summary, and completes the ticket with what was sent.
// If the export cannot be made or sent, the ticket stays open and staff
// are told.
func (d *Desk) access(ctx context.Context, r *bot.Request) error {
	now := d.Clock.Now()
	t, err := d.open(valex.KindAccess, r.From.ID, "", now)
	if err != nil {
		return err
	}
	counts, err := d.sendExport(ctx, r, t.ID, now)
	if err != nil {
		d.newTicketToStaff(ctx, t)
		return err
	}
	detail := valex.AuditCounts(counts)
	t, err = d.Store.UpdateTicket(t.ID, 0, now, func(t *valex.Request) ([]valex.AuditEntry, error) {
		audit := []valex.AuditEntry{{Action: valex.AuditExported, Detail: detail}}
		return audit, t.Transition(valex.StatusDone, 0, "export_sent: "+detail, now)
	})
	if err != nil {
		return err
	}
	args := d.ticketArgs(r.Lang, t)
	args["Stored"] = d.categoryLines(r.Lang, counts)
	return d.replyTicket(ctx, r, t.ID, d.t(r, "privacy.export_summary", args), nil)
}

// sendExport sends the requester everything stored about them as a JSON
// document and returns the counts per category.
func (d *Desk) sendExport(ctx context.Context, r *bot.Request, ticket uint64, now time.Time) (map[string]int, error) {
	doc, counts, err := d.AccessExport(r.From.ID, ticket, now)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("valex-data-%d-%s.json", r.From.ID, now.UTC().Format("20060102-150405"))
	_, err = d.Files.SendFile(ctx, bot.FileMessage{
		ChatID: r.From.ID, Kind: bot.FileDocument, Name: name, Data: doc,
		Caption: d.t(r, "privacy.export_caption", map[string]any{"ID": ticket}),
	})
	return counts, err
}

// AccessExport is the access export of a user as JSON, in their language,
// and its counts per category: what /mydata sends (for request ticket) and
// what the operator's `valex export-user` prints (ticket 0).
func (d *Desk) AccessExport(userID int64, ticket uint64, now time.Time) ([]byte, map[string]int, error) {
	version, err := d.policyVersion()
	if err != nil {
		return nil, nil, err
	}
	data, counts, err := d.collect(userID)
	if err != nil {
		return nil, nil, err
	}
	cats, recipients, err := d.accessFacts(d.langOf(userID), userID, counts)
	if err != nil {
		return nil, nil, fmt.Errorf("export user %d: %w", userID, err)
	}
	doc, err := json.MarshalIndent(exportDoc{
		Format: exportFormat, GeneratedAt: now.UTC(), TelegramID: userID, RequestID: ticket,
		PolicyVersion: version, Counts: counts, Categories: cats, Recipients: recipients, Data: data,
	}, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("encode export of user %d: %w", userID, err)
	}
	return doc, counts, nil
}

// replyTicket replies with a message about a ticket and links it.
func (d *Desk) replyTicket(ctx context.Context, r *bot.Request, ticket uint64, text string, kb [][]bot.Button) error {
	id, err := d.Out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: text, Keyboard: kb})
	if err != nil {
		return err
	}
	d.link(r.ChatID, id, ticket)
	return nil
}

// receivedAt is when a request arrived: the Telegram date of the user's
// message (a backlog handled late keeps its real deadline), or now for a
// button press, or when the date is ahead of our clock.
func (d *Desk) receivedAt(r *bot.Request) time.Time {
	now := d.Clock.Now()
	if r.Date.IsZero() || r.Date.After(now) {
		return now
	}
	return r.Date
}

// open stores a new ticket (desk.Service.Open).
func (d *Desk) open(kind valex.RequestKind, userID int64, text string, receivedAt time.Time) (valex.Request, error) {
	return d.Service.Open(kind, userID, text, receivedAt)
}

// autoComplete records a request the system fulfilled by itself.
func (d *Desk) autoComplete(ctx context.Context, r *bot.Request, kind valex.RequestKind, resolution string) error {
	now := d.Clock.Now()
	t, err := d.open(kind, r.From.ID, "", now)
	if err != nil {
		return err
	}
	t, err = d.transition(t.ID, 0, valex.StatusDone, resolution, now)
	if err != nil {
		return err
	}
	return d.replyTicket(ctx, r, t.ID, d.t(r, "desk.auto_done", d.ticketArgs(r.Lang, t)), nil)
}

// rectify opens a correction request: the user fixes what the profile
// editor can fix, and tells staff about the rest in their next message.
func (d *Desk) rectify(ctx context.Context, r *bot.Request) error {
	now := d.Clock.Now()
	t, err := d.open(valex.KindRectification, r.From.ID, "", now)
	if err != nil {
		return err
	}
	// Waiting for the user: their next message (the ticket's prompt, or a
	// reply to the ticket's message) is the description.
	if t, err = d.transition(t.ID, 0, valex.StatusWaitingUser, "", now); err != nil {
		return err
	}
	r.StartDialog(dialogTicket, idArg(t.ID))
	if err := d.replyTicket(ctx, r, t.ID, d.t(r, "privacy.rectify", d.ticketArgs(r.Lang, t)), nil); err != nil {
		return err
	}
	d.newTicketToStaff(ctx, t)
	u, err := d.registered(r)
	if err != nil {
		return err
	}
	return d.reply(ctx, r, d.profileText(r, u), d.profileKeyboard(r))
}

// newTicketToStaff tells staff a ticket needs them.
func (d *Desk) newTicketToStaff(ctx context.Context, t valex.Request) {
	d.tellStaff(ctx, t, "desk.staff_new", func(lang string) map[string]any { return d.ticketArgs(lang, t) })
}

// askText waits for the text of a new ticket of kind.
func (d *Desk) askText(ctx context.Context, r *bot.Request, kind valex.RequestKind) error {
	r.StartDialog(dialogNewTicket, string(kind))
	return d.reply(ctx, r, d.t(r, "desk.ask_text."+string(kind), nil), nil)
}

// classify reads a /support text: one that starts with a "Personal Data"
// subject (policy section 10 asks users to put it in the subject; the words
// are desk.personal_data_subjects in every locale) is a personal data
// request with the rest as its text.
func (d *Desk) classify(text string) (valex.RequestKind, string) {
	text = strings.TrimSpace(text)
	lower := strings.ToLower(text)
	for _, p := range d.words("desk.personal_data_subjects") {
		if strings.HasPrefix(lower, p) {
			rest := text[len(p):] // lower-casing keeps these prefixes' byte length
			return valex.KindPersonalData, strings.TrimLeft(rest, " \t\n:;,.-—–")
		}
	}
	return valex.KindSupport, text
}

// Support opens a support ticket, or a personal data request when the text
// starts with "Personal Data": /support text.
func (d *Desk) Support(ctx context.Context, r *bot.Request) error {
	kind, text := d.classify(r.Args)
	return d.textTicket(ctx, r, kind, text)
}

// Feedback records feedback or a review: /feedback text.
func (d *Desk) Feedback(ctx context.Context, r *bot.Request) error {
	return d.textTicket(ctx, r, valex.KindFeedback, strings.TrimSpace(r.Args))
}

func (d *Desk) textTicket(ctx context.Context, r *bot.Request, kind valex.RequestKind, text string) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	if _, err := d.registered(r); err != nil {
		return err
	}
	if text == "" {
		return d.askText(ctx, r, kind)
	}
	return d.openText(ctx, r, kind, text)
}

// openText opens a ticket with the user's own words and tells both sides.
func (d *Desk) openText(ctx context.Context, r *bot.Request, kind valex.RequestKind, text string) error {
	t, err := d.open(kind, r.From.ID, text, d.receivedAt(r))
	if err != nil {
		return err
	}
	return d.announce(ctx, r, t)
}

// announce tells the requester their ticket is registered, and staff that
// it needs them.
func (d *Desk) announce(ctx context.Context, r *bot.Request, t valex.Request) error {
	if !d.tracked(t.Kind) {
		// Feedback: thanked, no deadline, no alert (staff find it under
		// the feedback filter of /requests and in the digest).
		return d.replyTicket(ctx, r, t.ID, d.t(r, "desk.feedback_received", d.ticketArgs(r.Lang, t)), nil)
	}
	if err := d.replyTicket(ctx, r, t.ID, d.t(r, "desk.ticket_opened", d.ticketArgs(r.Lang, t)), nil); err != nil {
		return err
	}
	d.newTicketToStaff(ctx, t)
	return nil
}

// Intercept is router middleware (Router.Use) that gives the desk the
// first look at plain text in private chats, before whatever handles text
// (Handlers.Text, the AI aggregator): see AppendUserMessage.
func (d *Desk) Intercept(next bot.HandlerFunc) bot.HandlerFunc {
	return func(ctx context.Context, r *bot.Request) error {
		if r.Kind == bot.KindText && r.Private() {
			if handled, err := d.AppendUserMessage(ctx, r); handled || err != nil {
				return err
			}
		}
		return next(ctx, r)
	}
}

// AppendUserMessage takes a Telegram reply to a message about a ticket
// (Intercept calls it for every private text): from the requester it is
// added to their ticket, from staff it is relayed to the requester. It
// reports whether the desk took the message. Nothing else joins a ticket
// by itself: a message outside a reply and outside a ticket's prompt is a
// chat message, so a private question never reaches staff by accident.
func (d *Desk) AppendUserMessage(ctx context.Context, r *bot.Request) (bool, error) {
	if !r.Private() || !r.ReplyToBot || r.ReplyTo == 0 {
		return false, nil // personal data stays out of groups
	}
	id, err := d.Store.LinkedTicket(r.ChatID, r.ReplyTo)
	if err != nil || id == 0 {
		return false, err
	}
	t, err := d.Store.Ticket(id)
	switch {
	case errors.Is(err, valex.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	case t.UserID == r.From.ID:
		return true, d.userMessage(ctx, r, id)
	case r.Role.Allows(valex.RoleSupport) && t.UserID != 0:
		return true, d.staffReply(ctx, r, id, r.Text)
	}
	return false, nil
}

// NewTicketText takes the answer to a new-ticket prompt (/support,
// /feedback, a right that needs a description): it opens the ticket. A text
// too long keeps the prompt.
func (d *Desk) NewTicketText(ctx context.Context, r *bot.Request) error {
	k := valex.RequestKind(r.Dialog.Arg)
	if !k.Valid() {
		r.EndDialog()
		return valex.Errorf("error.bad_callback", nil)
	}
	text := r.Text
	if k == valex.KindSupport || k == valex.KindPersonalData {
		var pk valex.RequestKind
		if pk, text = d.classify(text); pk == valex.KindPersonalData {
			k = pk
		}
	}
	t, err := d.open(k, r.From.ID, text, d.receivedAt(r))
	if err != nil {
		return err // a too long text: the prompt stays open
	}
	return d.announce(ctx, r, t)
}

// TicketText takes the answer to a ticket's own prompt (a rectification's
// description): it joins that ticket.
func (d *Desk) TicketText(ctx context.Context, r *bot.Request) error {
	id, err := parseID(r.Dialog.Arg)
	if err != nil {
		r.EndDialog()
		return err
	}
	err = d.userMessage(ctx, r, id)
	if ue, ok := valex.AsUserError(err); ok && ue.Key != "desk.too_long" {
		r.EndDialog()
	}
	return err
}

// userMessage adds the user's message to their ticket; a ticket that was
// waiting for them goes back to staff, who are told.
func (d *Desk) userMessage(ctx context.Context, r *bot.Request, id uint64) error {
	text := strings.TrimSpace(r.Text)
	if n := utf8.RuneCountInString(text); n > valex.MaxRequestTextLen {
		return valex.Errorf("desk.too_long", map[string]any{"Max": valex.MaxRequestTextLen, "Count": n})
	}
	now := d.Clock.Now()
	t, err := d.Store.UpdateTicket(id, 0, now, func(t *valex.Request) ([]valex.AuditEntry, error) {
		if !t.Status.Open() {
			return nil, valex.Errorf("desk.closed_reply", map[string]any{"ID": t.ID})
		}
		t.Messages = append(t.Messages, valex.RequestMessage{At: now, AuthorID: r.From.ID, Text: text})
		if t.Status == valex.StatusWaitingUser {
			return nil, t.Transition(valex.StatusInProgress, 0, "", now)
		}
		return nil, nil
	})
	if err != nil {
		return err
	}
	if err := d.replyTicket(ctx, r, id, d.t(r, "desk.message_added", d.ticketArgs(r.Lang, t)), nil); err != nil {
		return err
	}
	d.tellStaff(ctx, t, "desk.staff_user_message", func(lang string) map[string]any {
		args := d.ticketArgs(lang, t)
		args["Text"] = tghtml.Escape(text)
		return args
	})
	return nil
}

// deadlineText says a deadline rule in words: "30 calendar days",
// "1 month", "10 working days".
func (d *Desk) deadlineText(lang string, rule valex.DeadlineRule) string {
	return d.Tr.N(lang, "deadline."+string(rule.Unit), rule.N, nil)
}

// Forget asks for confirmation before erasing the account: /forget.
func (d *Desk) Forget(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	if _, err := d.registered(r); err != nil {
		return err
	}
	return d.forgetConfirm(ctx, r)
}

// forgetConfirm says what goes and what stays, with the two buttons.
func (d *Desk) forgetConfirm(ctx context.Context, r *bot.Request) error {
	kb := [][]bot.Button{
		{{Text: d.t(r, "privacy.btn_forget_yes", nil), Data: cbForget.Data(d.CB, "yes")}},
		{{Text: d.t(r, "privacy.btn_forget_no", nil), Data: cbForget.Data(d.CB, "no")}},
	}
	return d.reply(ctx, r, d.t(r, "privacy.forget_confirm", map[string]any{
		"Payments": periodWords(d.Tr, r.Lang, d.Policy.Retention.Defaults().PaymentRecords),
	}), kb)
}

// ForgetButton erases the account after the confirmation, unless a legal
// hold stands: then the request waits for staff and the user is told why.
func (d *Desk) ForgetButton(ctx context.Context, r *bot.Request) error {
	if len(r.CallbackArgs) != 1 {
		return valex.Errorf("error.bad_callback", nil)
	}
	if err := privateOnly(r); err != nil {
		return err
	}
	if r.CallbackArgs[0] != "yes" {
		return d.Out.Edit(ctx, r.ChatID, r.MessageID, d.t(r, "privacy.forget_kept", nil), [][]bot.Button{})
	}
	if _, err := d.registered(r); err != nil {
		return err
	}
	now := d.Clock.Now()
	t, err := d.open(valex.KindErasure, r.From.ID, "", now)
	if err != nil {
		return err
	}
	held, err := d.held(r.From.ID, t.ID)
	if err != nil {
		return err
	}
	if held {
		if t, err = d.transition(t.ID, 0, valex.StatusOnHold, "", now); err != nil {
			return err
		}
		d.newTicketToStaff(ctx, t)
		if err := d.Out.Edit(ctx, r.ChatID, r.MessageID, d.t(r, "privacy.erase_held", d.ticketArgs(r.Lang, t)), [][]bot.Button{}); err != nil {
			return err
		}
		d.link(r.ChatID, r.MessageID, t.ID)
		return nil
	}
	counts, err := d.Eraser.Erase(ctx, r.From.ID, t.ID, now)
	if err != nil {
		d.newTicketToStaff(ctx, t) // the request stays open: staff finish it
		return err
	}
	t.Status = valex.StatusDone
	args := d.ticketArgs(r.Lang, t)
	args["Erased"] = d.categoryLines(r.Lang, counts)
	return d.Out.Edit(ctx, r.ChatID, r.MessageID, d.t(r, "privacy.erased", args), [][]bot.Button{})
}

// held reports whether a legal hold stands on the user's data: one placed
// on the account, or another of their tickets on hold (a dispute).
func (d *Desk) held(userID int64, except uint64) (bool, error) {
	held, _, err := d.Store.Hold(userID)
	if err != nil || held {
		return held, err
	}
	statuses, err := d.Store.UserTicketStatuses(userID)
	if err != nil {
		return false, err
	}
	for id, s := range statuses {
		if s == valex.StatusOnHold && id != except {
			return true, nil
		}
	}
	return false, nil
}

// completeErasure is staff completing an erasure request that waited
// (a hold since lifted, or an automatic erasure that failed).
func (d *Desk) completeErasure(ctx context.Context, t valex.Request, by int64) (valex.Request, error) {
	if t.UserID == 0 || !t.Status.Open() {
		return t, valex.Errorf("desk.closed", nil)
	}
	if t.Status == valex.StatusOnHold {
		return t, valex.Errorf("desk.resume_first", nil)
	}
	held, err := d.held(t.UserID, t.ID)
	if err != nil {
		return t, err
	}
	if held {
		return t, valex.Errorf("desk.erase_still_held", nil)
	}
	lang := d.langOf(t.UserID) // gone with the account in a moment
	uid := t.UserID
	now := d.Clock.Now()
	// The history names who confirmed the erasure; the system carries it
	// out and closes the ticket.
	if _, err := d.update(t.ID, by, now, func(t *valex.Request) ([]valex.AuditEntry, error) {
		t.Record(valex.ActionConfirmErasure, by, now)
		return nil, nil
	}); err != nil {
		return t, err
	}
	counts, err := d.Eraser.Erase(ctx, uid, t.ID, now)
	if err != nil {
		return t, err
	}
	d.Log.Info().Uint64("ticket_id", t.ID).Str("staff", d.IDs.User(by)).Msg("account erased by staff")
	t.Status = valex.StatusDone
	args := d.ticketArgs(lang, t)
	args["Erased"] = d.categoryLines(lang, counts)
	if _, err := d.Out.Send(ctx, bot.Message{ChatID: uid, Text: d.Tr.T(lang, "privacy.erased", args)}); err != nil {
		d.Log.Warn().Str("error", d.IDs.Redact(err.Error(), uid)).Uint64("ticket_id", t.ID).Msg("erasure notice not delivered")
	}
	return d.Store.Ticket(t.ID)
}

// Consent shows each consent and restriction with a one-tap toggle:
// /consent.
func (d *Desk) Consent(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	if _, err := d.registered(r); err != nil {
		return err
	}
	return d.consentScreen(ctx, r)
}

func (d *Desk) consentScreen(ctx context.Context, r *bot.Request) error {
	text, kb, err := d.consentView(r)
	if err != nil {
		return err
	}
	return d.reply(ctx, r, text, kb)
}

func (d *Desk) consentView(r *bot.Request) (string, [][]bot.Button, error) {
	st, err := d.Store.ConsentState(r.From.ID)
	if err != nil {
		return "", nil, err
	}
	version, err := d.policyVersion()
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	var kb [][]bot.Button
	b.WriteString(d.t(r, "consent.title", map[string]any{"Version": tghtml.Escape(version)}))
	for _, k := range valex.ConsentKinds {
		e, ok := st.Consents[k]
		state := d.t(r, "consent.not_given", nil)
		if ok && e.Granted {
			state = d.t(r, "consent.given", map[string]any{"Date": valex.FormatDate(e.At), "Version": tghtml.Escape(e.PolicyVersion)})
		} else if ok {
			state = d.t(r, "consent.withdrawn", map[string]any{"Date": valex.FormatDate(e.At)})
		}
		b.WriteString("\n" + d.t(r, "consent.c."+string(k), map[string]any{"State": state}))
		on := !st.Granted(k)
		key := "consent.btn_withdraw." + string(k)
		if on {
			key = "consent.btn_give." + string(k)
		}
		kb = append(kb, []bot.Button{{Text: d.t(r, key, nil), Data: cbConsent.Data(d.CB, "c", string(k), boolArg(on))}})
	}
	b.WriteString("\n\n" + d.t(r, "consent.restrictions", nil))
	for _, k := range valex.RestrictionKinds {
		e, ok := st.Restrictions[k]
		state := d.t(r, "consent.not_restricted", nil)
		if ok && e.Active {
			state = d.t(r, "consent.restricted", map[string]any{"Date": valex.FormatDate(e.At)})
		}
		b.WriteString("\n" + d.t(r, "consent.r."+string(k), map[string]any{"State": state}))
		on := !st.Restricted(k)
		key := "consent.btn_lift." + string(k)
		if on {
			key = "consent.btn_restrict." + string(k)
		}
		kb = append(kb, []bot.Button{{Text: d.t(r, key, nil), Data: cbConsent.Data(d.CB, "r", string(k), boolArg(on))}})
	}
	return b.String(), kb, nil
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// WorkStopper stops a user's AI work in flight, keeping nothing of it, and
// returns how many jobs it stopped (AI.StopUser).
type WorkStopper interface {
	StopUser(ctx context.Context, userID int64) (stopped int)
}

// stopAIWait bounds how long a consent change waits for a stopped AI job to
// return (it writes nothing after StopUser either way).
const stopAIWait = 5 * time.Second

// ConsentButton records a consent or restriction change, at once and with
// the policy version, and shows the new state. Withdrawing a consent and
// restricting or objecting to processing are rights requests: each is also
// a ticket, completed on the spot. Withdrawing the AI consent or
// restricting AI processing also stops the AI work in flight, and the user
// is told what was stopped.
func (d *Desk) ConsentButton(ctx context.Context, r *bot.Request) error {
	args := r.CallbackArgs
	if len(args) != 3 || (args[2] != "0" && args[2] != "1") {
		return valex.Errorf("error.bad_callback", nil)
	}
	if err := privateOnly(r); err != nil {
		return err
	}
	if _, err := d.registered(r); err != nil {
		return err
	}
	on := args[2] == "1"
	uid, now := r.From.ID, d.Clock.Now()
	st, err := d.Store.ConsentState(uid)
	if err != nil {
		return err
	}
	version, err := d.policyVersion()
	if err != nil {
		return err
	}
	var ticket valex.RequestKind
	var resolution string
	stopAI := false
	switch args[0] {
	case "c":
		k := valex.ConsentKind(args[1])
		if !k.Valid() {
			return valex.Errorf("error.bad_callback", nil)
		}
		if st.Granted(k) == on {
			break // a second tap on an old button: nothing changes
		}
		if err := d.Store.AddConsent(valex.ConsentEvent{UserID: uid, Kind: k, Granted: on, At: now, PolicyVersion: version, Source: "consent_menu"}); err != nil {
			return err
		}
		if !on {
			ticket, resolution = valex.KindConsentWithdrawal, "consent_withdrawn: "+string(k)
			stopAI = k == valex.ConsentAITransfer
		}
	case "r":
		k := valex.RestrictionKind(args[1])
		if !k.Valid() {
			return valex.Errorf("error.bad_callback", nil)
		}
		if st.Restricted(k) == on {
			break
		}
		if err := d.Store.AddRestriction(valex.RestrictionEvent{UserID: uid, Kind: k, Active: on, At: now, PolicyVersion: version, Source: "consent_menu"}); err != nil {
			return err
		}
		if on {
			ticket, resolution = valex.KindRestriction, "restriction_applied: "+string(k)
			if k == valex.RestrictAnalytics {
				ticket = valex.KindObjection
			}
			stopAI = k == valex.RestrictAI
		}
	default:
		return valex.Errorf("error.bad_callback", nil)
	}
	if stopAI && d.AIWork != nil {
		// After the change is recorded: what is admitted later sees it.
		sctx, cancel := context.WithTimeout(ctx, stopAIWait)
		n := d.AIWork.StopUser(sctx, uid)
		cancel()
		if n > 0 {
			if err := d.reply(ctx, r, d.Tr.N(r.Lang, "consent.ai_stopped", n, nil), nil); err != nil {
				return err
			}
		}
	}
	text, kb, err := d.consentView(r)
	if err != nil {
		return err
	}
	r.Toast = d.t(r, "desk.toast_saved", nil)
	if err := d.Out.Edit(ctx, r.ChatID, r.MessageID, text, kb); err != nil {
		return err
	}
	if ticket != "" {
		return d.autoComplete(ctx, r, ticket, resolution)
	}
	return nil
}
