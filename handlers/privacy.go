package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

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
	"conversations", "ai_document", "ai_settings", "ai_usage", "usage", "payments",
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
	t, err := d.open(r, valex.KindAccess, r.From.ID, "", now)
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
	thread := 0 // asked in a group: the export goes to the private chat
	if r.Private() {
		thread = r.ThreadID
	}
	_, err = d.Files.SendFile(ctx, bot.FileMessage{
		ChatID: r.From.ID, ThreadID: thread, Kind: bot.FileDocument, Name: name, Data: doc,
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

// autoComplete records a request the system fulfilled by itself.
func (d *Desk) autoComplete(ctx context.Context, r *bot.Request, kind valex.RequestKind, resolution string) error {
	now := d.Clock.Now()
	t, err := d.open(r, kind, r.From.ID, "", now)
	if err != nil {
		return err
	}
	if !(t.Replayed && t.Status == valex.StatusDone) { // a replay completed it already
		if t, err = d.Service.Transition(t.ID, 0, valex.StatusDone, resolution); err != nil {
			return err
		}
	}
	return d.replyTicket(ctx, r, t.ID, d.t(r, "desk.auto_done", d.ticketArgs(r.Lang, t)), nil)
}

// rectify opens a correction request: the user fixes what the profile
// editor can fix, and tells staff about the rest in their next message.
func (d *Desk) rectify(ctx context.Context, r *bot.Request) error {
	now := d.Clock.Now()
	t, err := d.open(r, valex.KindRectification, r.From.ID, "", now)
	if err != nil {
		return err
	}
	// Waiting for the user: their next message (the ticket's prompt, or a
	// reply to the ticket's message) is the description.
	if t, err = d.Service.Transition(t.ID, 0, valex.StatusWaitingUser, ""); err != nil {
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

// deadlineText says a deadline rule in words: "30 calendar days",
// "1 month", "10 working days".
func (d *Desk) deadlineText(lang string, rule valex.DeadlineRule) string {
	return d.Tr.N(lang, "deadline."+string(rule.Unit), rule.N, nil)
}
