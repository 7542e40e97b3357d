package handlers

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
	"github.com/valex-ai/valex/desk"
)

// The privacy request desk: users exercise their rights (privacy.go),
// support staff work the tickets (this file), admins send notices
// (broadcast.go). privacy_routes.go lists every command and button.

// Tickets is the part of the store that keeps desk tickets and their
// audit trails.
type Tickets interface {
	CreateTicket(r valex.Request) (valex.Request, error)
	Ticket(id uint64) (valex.Request, error)
	UpdateTicket(id uint64, actor int64, at time.Time, fn func(*valex.Request) ([]valex.AuditEntry, error)) (valex.Request, error)
	UserTicketStatuses(userID int64) (map[uint64]valex.RequestStatus, error)
	OpenTickets(kind valex.RequestKind, status valex.RequestStatus, offset, limit int) ([]valex.Request, int, error)
	DueOpenTickets(before time.Time, fn func(valex.Request, map[string]bool) error) (int, error)
	ClaimReminder(id uint64, key string, at time.Time) (bool, error)
	ReleaseReminder(id uint64, key string) error
	AppendAudit(ticketID uint64, e valex.AuditEntry) (valex.AuditEntry, error)
	LinkMessage(chatID int64, messageID int, ticketID uint64) error
	LinkedTicket(chatID int64, messageID int) (uint64, error)
}

// Consents is the part of the store that keeps consent and restriction
// events.
type Consents interface {
	AddConsent(e valex.ConsentEvent) error
	AddRestriction(e valex.RestrictionEvent) error
	ConsentState(userID int64) (valex.ConsentState, error)
}

// PersonalData exports and erases everything the store holds about a user,
// and keeps legal holds.
type PersonalData interface {
	Export(userID int64) (data map[string]any, counts map[string]int, err error)
	EraseUser(userID int64, erasureTicket uint64, at time.Time, extra map[string]int) (map[string]int, error)
	SetHold(userID int64, held bool, by int64, at time.Time) error
	PlaceHold(userID, by int64, at time.Time, reason string) (placed bool, err error)
	// Breach incidents (breach.go).
	OpenIncidents() ([]valex.Notice, map[uint64]map[string]bool, error)
	ClaimIncidentReminder(noticeID uint64, key string) (bool, error)
	MarkIncidentNotified(noticeID uint64, which string, by int64, at time.Time) (valex.Notice, error)
	UndeliveredBreaches(userID int64) ([]valex.Notice, error)
	Hold(userID int64) (held bool, since time.Time, err error)
}

// Notices is the part of the store that keeps policy versions and
// broadcasts with their deliveries.
type Notices interface {
	AddPolicyVersion(p valex.PolicyVersion) error
	LatestPolicyVersion() (valex.PolicyVersion, bool, error)
	CreateNotice(n valex.Notice) (valex.Notice, error)
	RecordDelivery(d valex.Delivery) error
	FinishNotice(id uint64, at time.Time) (valex.Notice, error)
	UnfinishedNotices() ([]valex.Notice, error)
	DeliveredTo(noticeID uint64, statuses ...valex.DeliveryStatus) (map[int64]bool, error)
	Audience() ([]valex.User, error)
}

// DeskStore is everything the desk keeps; *store.DB implements it.
type DeskStore interface {
	Tickets
	Consents
	PersonalData
	Notices
}

// FileSender uploads a file (the /mydata export).
type FileSender interface {
	SendFile(ctx context.Context, f bot.FileMessage) (int, error)
}

// PolicyInfo is what users are told about the policy and where to turn.
type PolicyInfo struct {
	Version            string // the configured version; a /policy_update recorded later wins
	URL                string // the published policy
	SupportURL         string // the operator's support contact (policy section 10)
	ComplaintAuthority string // who a refused request can be taken to; "" = the generic wording
	ComplaintURL       string
	// Retention is how long data is kept, as /privacy tells it; the zero
	// value means the policy's defaults.
	Retention valex.RetentionPolicy
}

// ExportSection adds categories to /mydata for data kept outside the
// desk's part of the store (conversations, usage, payments): by category,
// data that encodes with encoding/json and the number of items in each.
// store.DB.ExportAI has this shape.
type ExportSection func(userID int64) (data map[string]any, counts map[string]int, err error)

// AccountEraser erases an account: stops its AI work, deletes its data key
// and every record keyed by it, and completes the erasure request ticket.
// privacy.Eraser is the one implementation; /forget, staff and the
// inactivity job all use it.
type AccountEraser interface {
	Erase(ctx context.Context, userID int64, ticket uint64, at time.Time) (map[string]int, error)
}

// Desk holds what the privacy desk needs besides the shared handlers.
type Desk struct {
	*Handlers
	Store  DeskStore
	Files  FileSender
	Policy PolicyInfo
	SLA    valex.SLAPolicy
	// ExtendBy is the extension when staff give no number of days.
	ExtendBy time.Duration
	Export   []ExportSection
	Eraser   AccountEraser
	// AIWork stops a user's AI work in flight when they withdraw the AI
	// consent or restrict AI processing (AI.StopUser); nil: no AI.
	AIWork WorkStopper
	// Access is what the access export says besides the data: purposes,
	// sources, retention and recipients of each category.
	Access AccessInfo

	// Service runs the desk's workflows (tickets, reminders, digest,
	// broadcasts); this type is its Telegram side (Notifier, handlers).
	Service *desk.Service

	drafts   noticeDrafts // admin notices waiting for "Send" (broadcast.go)
	breaches breachForms  // /breach forms being filled in (breach.go)
}

// Wait blocks until the broadcasts in flight have finished (or stopped
// with their context).
func (d *Desk) Wait() { d.Service.Wait() }

// The desk's prompts (bot.Dialog): a user's text for a new ticket (the
// argument is the kind), a user's message for one ticket (its id), and a
// staff member's reply, rejection reason or extension reason (the id).
const (
	dialogNewTicket = "desk.new"
	dialogTicket    = "desk.ticket"
	dialogReply     = "desk.reply"
	dialogReject    = "desk.reject"
	dialogExtend    = "desk.extend"
	dialogHold      = "desk.hold"
	dialogCorrect   = "desk.correct" // argument "<ticket id>/<field>"
)

// listPageSize is how many tickets a /requests page shows.
const listPageSize = 10

// dateTime formats a moment for threads and histories, in UTC like the
// desk's deadlines.
func dateTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") }

// privateOnly refuses desk commands outside a private chat: personal data
// never goes to a group.
func privateOnly(r *bot.Request) error {
	if !r.Private() {
		return valex.Errorf("desk.private_only", nil)
	}
	return nil
}

func (d *Desk) kindName(lang string, k valex.RequestKind) string {
	return d.Tr.T(lang, "desk.kind."+string(k), nil)
}

func (d *Desk) statusName(lang string, s valex.RequestStatus) string {
	return d.Tr.T(lang, "desk.status."+string(s), nil)
}

// left renders the days left until due, or how long it is overdue.
func (d *Desk) left(lang string, due, now time.Time) string {
	n := valex.DaysLeft(due, now)
	if n < 0 {
		return d.Tr.N(lang, "desk.overdue_by", -n, nil)
	}
	return d.Tr.N(lang, "desk.days_left", n, nil)
}

// langOf is the language to write to an account in: its own choice, or
// the default for accounts the store does not know.
func (d *Desk) langOf(id int64) string {
	u, err := d.Users.User(id)
	if err != nil || u.Language == "" {
		if err != nil && !errors.Is(err, valex.ErrNotFound) {
			d.Log.Warn().Str("error", d.IDs.Redact(err.Error(), id)).Str("user", d.IDs.User(id)).Msg("load language")
		}
		return d.Tr.Match("")
	}
	return u.Language
}

// staff lists every account that works the desk: support staff and admins.
func (d *Desk) staff() []int64 { return d.Roles.Staff() }

// tell sends a message about ticket to an account in lang and links it to
// the ticket, so a Telegram reply to it lands there. A failure is logged
// (ids only), not returned: the action it reports has already happened.
func (d *Desk) tell(ctx context.Context, to int64, lang string, ticket uint64, key string, args map[string]any, kb [][]bot.Button) bool {
	msgID, err := d.Out.Send(ctx, bot.Message{ChatID: to, Text: d.Tr.T(lang, key, args), Keyboard: kb})
	if err != nil {
		d.Log.Warn().Str("error", d.IDs.Redact(err.Error(), to)).Str("chat", d.IDs.Chat(to)).Uint64("ticket_id", ticket).Str("key", key).Msg("desk message not delivered")
		return false
	}
	d.link(to, msgID, ticket)
	return true
}

// link remembers which ticket a message is about; losing a link only
// costs the reply shortcut, so a failure is logged.
func (d *Desk) link(chatID int64, msgID int, ticket uint64) {
	if ticket == 0 || msgID == 0 {
		return
	}
	if err := d.Store.LinkMessage(chatID, msgID, ticket); err != nil {
		d.Log.Warn().Str("error", d.IDs.Redact(err.Error(), chatID)).Str("chat", d.IDs.Chat(chatID)).Uint64("ticket_id", ticket).Msg("link message to ticket")
	}
}

// tellStaff tells the ticket's assignee, or every staff member when nobody
// has it, and returns how many got the message. args are rendered per
// recipient: a func(lang) map[string]any.
func (d *Desk) tellStaff(ctx context.Context, t valex.Request, key string, args func(lang string) map[string]any) int {
	to := d.staff()
	if t.AssigneeID != 0 {
		to = []int64{t.AssigneeID}
	}
	n := 0
	for _, id := range to {
		lang := d.langOf(id)
		kb := [][]bot.Button{{{Text: d.Tr.T(lang, "desk.btn_open", map[string]any{"ID": t.ID}), Data: cbTicket.Data(d.CB, "show", idArg(t.ID))}}}
		if d.tell(ctx, id, lang, t.ID, key, args(lang), kb) {
			n++
		}
	}
	return n
}

// ticketArgs are the arguments every ticket message may use.
func (d *Desk) ticketArgs(lang string, t valex.Request) map[string]any {
	args := map[string]any{
		"ID":     t.ID,
		"Kind":   d.kindName(lang, t.Kind),
		"Status": d.statusName(lang, t.Status),
		"Due":    valex.FormatDate(t.DueAt),
		"Left":   d.left(lang, t.DueAt, d.Clock.Now()),
	}
	if !d.tracked(t.Kind) {
		args["Due"], args["Left"] = "—", d.Tr.T(lang, "desk.no_deadline", nil)
	}
	return args
}

// notifyUser tells the requester where their ticket is now. Every status
// change reaches them with the ticket id and due date.
func (d *Desk) notifyUser(ctx context.Context, t valex.Request) {
	if t.UserID == 0 {
		return
	}
	lang := d.langOf(t.UserID)
	args := d.ticketArgs(lang, t)
	if !d.tracked(t.Kind) {
		// Feedback: no deadline to quote, no authority to complain to.
		key := "desk.feedback_status"
		if t.Status == valex.StatusRejected {
			key = "desk.feedback_rejected"
			args["Reason"] = tghtml.Escape(t.RejectReason)
		}
		d.tell(ctx, t.UserID, lang, t.ID, key, args, nil)
		return
	}
	key := "desk.user_status"
	switch t.Status {
	case valex.StatusDone:
		key = "desk.user_done"
	case valex.StatusRejected:
		key = "desk.user_rejected"
		args["Reason"] = tghtml.Escape(t.RejectReason)
		args["Complaint"] = d.complaint(lang)
	case valex.StatusOnHold:
		key = "desk.user_on_hold"
	}
	d.tell(ctx, t.UserID, lang, t.ID, key, args, nil)
}

// tracked reports whether requests of kind k run against a deadline
// (desk.Service.Tracked).
func (d *Desk) tracked(k valex.RequestKind) bool { return d.Service.Tracked(k) }

// complaint says where a refused request can be taken.
func (d *Desk) complaint(lang string) string {
	p := d.Policy
	switch {
	case p.ComplaintAuthority != "" && p.ComplaintURL != "":
		return d.Tr.T(lang, "desk.complaint_named_url", map[string]any{"Authority": tghtml.Escape(p.ComplaintAuthority), "URL": tghtml.Escape(p.ComplaintURL)})
	case p.ComplaintAuthority != "":
		return d.Tr.T(lang, "desk.complaint_named", map[string]any{"Authority": tghtml.Escape(p.ComplaintAuthority)})
	}
	return d.Tr.T(lang, "desk.complaint_generic", nil)
}

func idArg(id uint64) string { return strconv.FormatUint(id, 10) }

// parseID reads a ticket id typed or carried by a button.
func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(s), "#"), 10, 64)
	if err != nil || id == 0 {
		return 0, valex.Errorf("desk.bad_id", nil)
	}
	return id, nil
}

// ticket loads a ticket, turning "not found" into a message for staff.
func (d *Desk) ticket(id uint64) (valex.Request, error) {
	t, err := d.Store.Ticket(id)
	if errors.Is(err, valex.ErrNotFound) {
		return t, valex.Errorf("desk.no_such_ticket", map[string]any{"ID": id})
	}
	return t, err
}

// listFilter is a /requests view: the page and the kind and status
// filters ("" = all).
type listFilter struct {
	page   int
	kind   valex.RequestKind
	status valex.RequestStatus
}

func (f listFilter) data(cb *bot.Signer) string {
	k, s := string(f.kind), string(f.status)
	if k == "" {
		k = "-"
	}
	if s == "" {
		s = "-"
	}
	return cbRequests.Data(cb, strconv.Itoa(f.page), k, s)
}

func parseListFilter(args []string) (listFilter, error) {
	if len(args) != 3 {
		return listFilter{}, valex.Errorf("error.bad_callback", nil)
	}
	page, err := strconv.Atoi(args[0])
	f := listFilter{page: page}
	if args[1] != "-" {
		f.kind = valex.RequestKind(args[1])
	}
	if args[2] != "-" {
		f.status = valex.RequestStatus(args[2])
	}
	if err != nil || page < 0 || (f.kind != "" && !f.kind.Valid()) || (f.status != "" && !f.status.Open()) {
		return listFilter{}, valex.Errorf("error.bad_callback", nil)
	}
	return f, nil
}

// openStatuses are the statuses /requests can filter on.
var openStatuses = []valex.RequestStatus{valex.StatusNew, valex.StatusInProgress, valex.StatusWaitingUser, valex.StatusOnHold}

// Requests lists open tickets by due date, overdue first.
func (d *Desk) Requests(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	text, kb, err := d.listView(r, listFilter{})
	if err != nil {
		return err
	}
	return d.reply(ctx, r, text, kb)
}

// RequestsButton pages and filters the list in place.
func (d *Desk) RequestsButton(ctx context.Context, r *bot.Request) error {
	f, err := parseListFilter(r.CallbackArgs)
	if err != nil {
		return err
	}
	text, kb, err := d.listView(r, f)
	if err != nil {
		return err
	}
	return d.Out.Edit(ctx, r.ChatID, r.MessageID, text, kb)
}

func (d *Desk) listView(r *bot.Request, f listFilter) (string, [][]bot.Button, error) {
	page, total, err := d.Store.OpenTickets(f.kind, f.status, f.page*listPageSize, listPageSize)
	if err != nil {
		return "", nil, err
	}
	pages := max(1, (total+listPageSize-1)/listPageSize)
	if f.page >= pages && total > 0 {
		f.page = pages - 1
		if page, total, err = d.Store.OpenTickets(f.kind, f.status, f.page*listPageSize, listPageSize); err != nil {
			return "", nil, err
		}
	}
	all := d.t(r, "desk.filter_all", nil)
	kindLabel, statusLabel := all, all
	if f.kind != "" {
		kindLabel = d.kindName(r.Lang, f.kind)
	}
	if f.status != "" {
		statusLabel = d.statusName(r.Lang, f.status)
	}
	var b strings.Builder
	b.WriteString(d.Tr.N(r.Lang, "desk.list_title", total, map[string]any{"Page": f.page + 1, "Pages": pages}))
	b.WriteString("\n")
	b.WriteString(d.t(r, "desk.list_filter", map[string]any{"Kind": kindLabel, "Status": statusLabel}))
	b.WriteString("\n")
	now := d.Clock.Now()
	var row []bot.Button
	var kb [][]bot.Button
	for _, t := range page {
		assignee := d.t(r, "desk.unassigned", nil)
		switch {
		case t.AssigneeID == r.From.ID:
			assignee = d.t(r, "desk.assigned_you", nil)
		case t.AssigneeID != 0:
			assignee = d.staffName(r, t.AssigneeID)
		}
		key := "desk.list_line"
		if t.Overdue(now) && d.tracked(t.Kind) {
			key = "desk.list_line_overdue"
		}
		b.WriteString("\n")
		b.WriteString(d.t(r, key, map[string]any{
			"ID": t.ID, "Kind": d.kindName(r.Lang, t.Kind), "Status": d.statusName(r.Lang, t.Status),
			"Left": d.ticketArgs(r.Lang, t)["Left"], "Age": d.age(r.Lang, t.ReceivedAt, now),
			"Assignee": assignee, "Snippet": d.snippet(t.ID),
		}))
		row = append(row, bot.Button{Text: "#" + idArg(t.ID), Data: cbTicket.Data(d.CB, "show", idArg(t.ID))})
		if len(row) == 5 {
			kb, row = append(kb, row), nil
		}
	}
	if len(row) > 0 {
		kb = append(kb, row)
	}
	if total == 0 {
		b.WriteString("\n")
		b.WriteString(d.t(r, "desk.list_empty", nil))
	}
	// One tap per filter: a button for every kind and every open status,
	// the current one marked.
	mark := func(on bool, label string) string {
		if on {
			return "• " + label
		}
		return label
	}
	kindRow := []bot.Button{{Text: mark(f.kind == "", d.t(r, "desk.filter_all_kinds", nil)), Data: listFilter{status: f.status}.data(d.CB)}}
	for _, k := range valex.RequestKinds {
		kindRow = append(kindRow, bot.Button{Text: mark(f.kind == k, d.kindName(r.Lang, k)), Data: listFilter{kind: k, status: f.status}.data(d.CB)})
	}
	for len(kindRow) > 0 {
		n := min(3, len(kindRow))
		kb, kindRow = append(kb, kindRow[:n]), kindRow[n:]
	}
	statusRow := []bot.Button{{Text: mark(f.status == "", d.t(r, "desk.filter_all_statuses", nil)), Data: listFilter{kind: f.kind}.data(d.CB)}}
	for _, st := range openStatuses {
		statusRow = append(statusRow, bot.Button{Text: mark(f.status == st, d.statusName(r.Lang, st)), Data: listFilter{kind: f.kind, status: st}.data(d.CB)})
	}
	for len(statusRow) > 0 {
		n := min(3, len(statusRow))
		kb, statusRow = append(kb, statusRow[:n]), statusRow[n:]
	}
	var nav []bot.Button
	if f.page > 0 {
		nav = append(nav, bot.Button{Text: d.t(r, "desk.btn_prev", nil), Data: listFilter{f.page - 1, f.kind, f.status}.data(d.CB)})
	}
	if f.page+1 < pages {
		nav = append(nav, bot.Button{Text: d.t(r, "desk.btn_next", nil), Data: listFilter{f.page + 1, f.kind, f.status}.data(d.CB)})
	}
	if nav != nil {
		kb = append(kb, nav)
	}
	return b.String(), kb, nil
}

// staffName names a staff member by their Telegram first name (their
// account's nickname), or by id when they have no account.
func (d *Desk) staffName(r *bot.Request, id int64) string {
	if u, err := d.Users.User(id); err == nil && u.Nickname != "" {
		return d.t(r, "desk.staff_named", map[string]any{"Name": tghtml.Escape(u.Nickname), "Staff": id})
	}
	return d.t(r, "desk.assigned_to", map[string]any{"Staff": id})
}

// age says how long ago a ticket arrived: in hours under a day.
func (d *Desk) age(lang string, received, now time.Time) string {
	since := now.Sub(received)
	switch {
	case since < time.Hour:
		return d.Tr.T(lang, "desk.age_now", nil)
	case since < 24*time.Hour:
		return d.Tr.N(lang, "desk.age_hours", int(since/time.Hour), nil)
	}
	return d.Tr.N(lang, "desk.age", valex.DaysSince(received, now), nil)
}

// snippetLen is how much of a ticket's text the list shows.
const snippetLen = 48

// snippet is the start of a ticket's text on one line, for the list.
func (d *Desk) snippet(id uint64) string {
	t, err := d.Store.Ticket(id)
	if err != nil || strings.TrimSpace(t.Text) == "" {
		return "—"
	}
	text := strings.Join(strings.Fields(t.Text), " ")
	if utf8.RuneCountInString(text) > snippetLen {
		text = string([]rune(text)[:snippetLen]) + "…"
	}
	return tghtml.Escape(text)
}

// Request shows one ticket: /request 12.
func (d *Desk) Request(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	if strings.TrimSpace(r.Args) == "" {
		return d.reply(ctx, r, d.t(r, "desk.request_usage", nil), nil)
	}
	id, err := parseID(r.Args)
	if err != nil {
		return err
	}
	t, err := d.ticket(id)
	if err != nil {
		return err
	}
	text, kb := d.ticketView(r, t)
	return d.reply(ctx, r, text, kb)
}

// ticketView renders a ticket for staff: who, what, when, the thread and
// the history, with the buttons its status allows.
func (d *Desk) ticketView(r *bot.Request, t valex.Request) (string, [][]bot.Button) {
	now := d.Clock.Now()
	var b strings.Builder
	requester := d.t(r, "desk.requester_erased", nil)
	if t.UserID != 0 {
		name := ""
		if u, err := d.Users.User(t.UserID); err == nil {
			name = tghtml.Escape(u.Nickname)
		}
		requester = d.t(r, "desk.requester", map[string]any{"User": t.UserID, "Name": name})
	}
	args := d.ticketArgs(r.Lang, t)
	args["Requester"] = requester
	args["Received"] = dateTime(t.ReceivedAt)
	b.WriteString(d.t(r, "desk.view_head", args))
	if t.Extended {
		b.WriteString("\n")
		b.WriteString(d.t(r, "desk.view_extended", map[string]any{"Original": valex.FormatDate(t.OriginalDueAt), "Reason": tghtml.Escape(t.ExtendReason)}))
	}
	assignee := d.t(r, "desk.unassigned", nil)
	if t.AssigneeID != 0 {
		assignee = d.staffName(r, t.AssigneeID)
	}
	b.WriteString("\n")
	b.WriteString(d.t(r, "desk.view_assignee", map[string]any{"Assignee": assignee}))
	if t.Text != "" {
		b.WriteString("\n\n")
		b.WriteString(d.t(r, "desk.view_text", map[string]any{"Text": tghtml.Escape(t.Text)}))
	}
	if len(t.Messages) > 0 {
		b.WriteString("\n\n")
		b.WriteString(d.t(r, "desk.view_thread", nil))
		for _, m := range t.Messages {
			key := "desk.view_msg_user"
			if m.FromStaff {
				key = "desk.view_msg_staff"
			}
			b.WriteString("\n")
			b.WriteString(d.t(r, key, map[string]any{"At": dateTime(m.At), "Staff": m.AuthorID, "Text": tghtml.Escape(m.Text)}))
		}
	}
	if len(t.History) > 0 {
		b.WriteString("\n\n")
		b.WriteString(d.t(r, "desk.view_history", nil))
		for _, c := range t.History {
			by := d.t(r, "desk.by_system", nil)
			if c.By != 0 {
				by = d.staffName(r, c.By)
			}
			b.WriteString("\n")
			if c.Action != "" && c.From == c.To {
				action, field, _ := strings.Cut(c.Action, ":")
				b.WriteString(d.t(r, "desk.view_action."+action, map[string]any{"At": dateTime(c.At), "By": by,
					"Field": d.t(r, "profile.edit_"+field, nil)}))
			} else {
				b.WriteString(d.t(r, "desk.view_change", map[string]any{"At": dateTime(c.At), "From": d.statusName(r.Lang, c.From),
					"To": d.statusName(r.Lang, c.To), "By": by}))
			}
			if c.Note != "" {
				b.WriteString(" — " + tghtml.Escape(c.Note))
			}
		}
	}
	if t.Status == valex.StatusDone && t.Resolution != "" {
		b.WriteString("\n\n")
		b.WriteString(d.t(r, "desk.view_resolution", map[string]any{"Text": tghtml.Escape(t.Resolution)}))
	}
	if !t.Status.Open() {
		return b.String(), nil
	}
	if t.Overdue(now) {
		b.WriteString("\n\n")
		b.WriteString(d.t(r, "desk.view_overdue", nil))
	}
	btn := func(key, action string) bot.Button {
		return bot.Button{Text: d.t(r, key, nil), Data: cbTicket.Data(d.CB, action, idArg(t.ID))}
	}
	row1 := []bot.Button{btn("desk.btn_reply", "reply")}
	if t.AssigneeID != r.From.ID {
		row1 = append([]bot.Button{btn("desk.btn_take", "take")}, row1...)
	}
	var row2 []bot.Button
	if !t.Extended {
		row2 = append(row2, btn("desk.btn_extend", "extend"))
	}
	if t.Status != valex.StatusOnHold {
		row2 = append(row2, btn("desk.btn_complete", "done"))
	}
	row3 := []bot.Button{btn("desk.btn_reject", "reject")}
	if t.Status == valex.StatusOnHold {
		row3 = append(row3, btn("desk.btn_resume", "resume"))
	} else {
		row3 = append(row3, btn("desk.btn_hold", "hold"))
	}
	kb := [][]bot.Button{row1}
	if row2 != nil {
		kb = append(kb, row2)
	}
	kb = append(kb, row3)
	if t.Kind == valex.KindRectification && t.UserID != 0 {
		// A correction request: staff see the requester's profile and fix
		// what the user could not.
		kb = append(kb, []bot.Button{btn("desk.btn_profile", "profile")})
	}
	return b.String(), kb
}

// profileView shows staff the requester's profile of a correction request,
// with a button per field to correct.
func (d *Desk) profileView(ctx context.Context, r *bot.Request, t valex.Request) error {
	if t.Kind != valex.KindRectification || t.UserID == 0 {
		return valex.Errorf("error.bad_callback", nil)
	}
	u, err := d.Users.User(t.UserID)
	if err != nil {
		return err
	}
	var kb [][]bot.Button
	var row []bot.Button
	for _, f := range valex.EditableFields {
		row = append(row, bot.Button{Text: d.t(r, "desk.btn_correct", map[string]any{"Field": d.t(r, "profile.edit_"+string(f), nil)}),
			Data: cbTicket.Data(d.CB, "fix-"+string(f), idArg(t.ID))})
		if len(row) == 2 {
			kb, row = append(kb, row), nil
		}
	}
	if row != nil {
		kb = append(kb, row)
	}
	kb = append(kb, []bot.Button{{Text: d.t(r, "desk.confirm_no", nil), Data: cbTicket.Data(d.CB, "show", idArg(t.ID))}})
	return d.reply(ctx, r, d.t(r, "desk.requester_profile", map[string]any{"ID": t.ID})+"\n\n"+d.profileText(r, u), kb)
}

// correct sets a field of a correction request's requester to value, as
// staff member r.From: the ticket's history and audit trail record which
// field (never the value), and the user is told.
func (d *Desk) correct(ctx context.Context, r *bot.Request, id uint64, field, value string) error {
	f := valex.ProfileField(field)
	if !editable(field) {
		return valex.Errorf("error.bad_callback", nil)
	}
	v, err := valex.ValidateProfileField(f, value)
	if err != nil {
		return err
	}
	t, err := d.ticket(id)
	if err != nil {
		return err
	}
	if t.Kind != valex.KindRectification || t.UserID == 0 || !t.Status.Open() {
		return valex.Errorf("desk.closed", nil)
	}
	if _, err := d.Users.UpdateUser(t.UserID, func(u *valex.User) error { u.Apply(f, v); return nil }); err != nil {
		return err
	}
	now := d.Clock.Now()
	t, err = d.update(id, r.From.ID, now, func(t *valex.Request) ([]valex.AuditEntry, error) {
		t.Record(valex.ActionCorrected+":"+field, r.From.ID, now)
		return []valex.AuditEntry{{Action: valex.AuditCorrected, Detail: "field=" + field, Actor: r.From.ID, At: now}}, nil
	})
	if err != nil {
		return err
	}
	lang := d.langOf(t.UserID)
	args := d.ticketArgs(lang, t)
	args["Field"] = d.Tr.T(lang, "profile.edit_"+field, nil)
	d.tell(ctx, t.UserID, lang, t.ID, "desk.user_corrected", args, nil)
	text, kb := d.ticketView(r, t)
	return d.reply(ctx, r, text, kb)
}

// TicketButton handles the buttons of a ticket view.
func (d *Desk) TicketButton(ctx context.Context, r *bot.Request) error {
	if len(r.CallbackArgs) != 2 {
		return valex.Errorf("error.bad_callback", nil)
	}
	id, err := parseID(r.CallbackArgs[1])
	if err != nil {
		return err
	}
	t, err := d.ticket(id)
	if err != nil {
		return err
	}
	by, now, before := r.From.ID, d.Clock.Now(), t.Status
	switch r.CallbackArgs[0] {
	case "show":
		text, kb := d.ticketView(r, t)
		return d.reply(ctx, r, text, kb)
	case "reply", "reject", "extend":
		if !t.Status.Open() {
			return valex.Errorf("desk.closed", nil)
		}
		if r.CallbackArgs[0] == "extend" && t.Extended {
			return valex.Errorf("desk.already_extended", nil)
		}
		r.StartDialog("desk."+r.CallbackArgs[0], idArg(id))
		return d.reply(ctx, r, d.t(r, "desk.ask_"+r.CallbackArgs[0], map[string]any{
			"ID": id, "Days": int(d.extendBy() / (24 * time.Hour)), "Max": valex.FormatDate(d.SLA.ExtensionLimit(t.Kind, t.OriginalDueAt)),
		}), nil)
	case "take":
		t, err = d.Store.UpdateTicket(id, by, now, func(t *valex.Request) ([]valex.AuditEntry, error) {
			if !t.Status.Open() {
				return nil, valex.Errorf("desk.closed", nil)
			}
			t.AssigneeID = by
			t.Record(valex.ActionTake, by, now)
			if t.Status == valex.StatusNew {
				return nil, t.Transition(valex.StatusInProgress, by, "", now)
			}
			return nil, nil
		})
	case "hold":
		// A hold needs a reason: ask for it (dialogHold).
		if !t.Status.Open() {
			return valex.Errorf("desk.closed", nil)
		}
		r.StartDialog(dialogHold, idArg(id))
		return d.reply(ctx, r, d.t(r, "desk.ask_hold", map[string]any{"ID": id}), nil)
	case "profile":
		return d.profileView(ctx, r, t)
	case "resume":
		t, err = d.transition(id, by, valex.StatusInProgress, "", now)
	case "done":
		// Completing cannot be undone (for an erasure: the account is
		// gone): ask first.
		if !t.Status.Open() {
			return valex.Errorf("desk.closed", nil)
		}
		key := "desk.confirm_done"
		if t.Kind == valex.KindErasure {
			key = "desk.confirm_erasure"
		}
		return d.reply(ctx, r, d.t(r, key, d.ticketArgs(r.Lang, t)), [][]bot.Button{{
			{Text: d.t(r, "desk.confirm_yes", nil), Data: cbTicket.Data(d.CB, "done!", idArg(id))},
			{Text: d.t(r, "desk.confirm_no", nil), Data: cbTicket.Data(d.CB, "show", idArg(id))},
		}})
	case "done!":
		if t.Kind == valex.KindErasure {
			t, err = d.completeErasure(ctx, t, by)
		} else {
			t, err = d.transition(id, by, valex.StatusDone, "", now)
		}
	default:
		field, ok := strings.CutPrefix(r.CallbackArgs[0], "fix-")
		if !ok || !editable(field) || t.Kind != valex.KindRectification || !t.Status.Open() {
			return valex.Errorf("error.bad_callback", nil)
		}
		r.StartDialog(dialogCorrect, idArg(id)+"/"+field)
		return d.reply(ctx, r, d.t(r, "desk.ask_correct", map[string]any{"ID": id, "Field": d.t(r, "profile.edit_"+field, nil)}), nil)
	}
	if err != nil {
		return err
	}
	// An erased requester was told by completeErasure, and is anonymous now.
	if t.Status != before && t.UserID != 0 {
		d.notifyUser(ctx, t)
	}
	r.Toast = d.t(r, "desk.toast_saved", nil)
	return d.refreshView(ctx, r, t)
}

// refreshView replaces the ticket view the button was on, or sends a new
// one when it no longer fits a message.
func (d *Desk) refreshView(ctx context.Context, r *bot.Request, t valex.Request) error {
	text, kb := d.ticketView(r, t)
	if kb == nil {
		kb = [][]bot.Button{}
	}
	if r.MessageID != 0 && len(tghtml.Split(text, tghtml.MaxMessageLen)) == 1 {
		return d.Out.Edit(ctx, r.ChatID, r.MessageID, text, kb)
	}
	return d.reply(ctx, r, text, kb)
}

// transition moves a ticket to another status as staff member by.
func (d *Desk) transition(id uint64, by int64, to valex.RequestStatus, note string, now time.Time) (valex.Request, error) {
	return d.update(id, by, now, func(t *valex.Request) ([]valex.AuditEntry, error) {
		return nil, t.Transition(to, by, note, now)
	})
}

// update is Store.UpdateTicket with "not found" as a message for staff.
func (d *Desk) update(id uint64, by int64, now time.Time, fn func(*valex.Request) ([]valex.AuditEntry, error)) (valex.Request, error) {
	t, err := d.Store.UpdateTicket(id, by, now, fn)
	if errors.Is(err, valex.ErrNotFound) {
		return t, valex.Errorf("desk.no_such_ticket", map[string]any{"ID": id})
	}
	return t, err
}

func (d *Desk) extendBy() time.Duration {
	if d.ExtendBy > 0 {
		return d.ExtendBy
	}
	return 30 * 24 * time.Hour
}

// Reject refuses a ticket with a reason: /reject 12 reason.
func (d *Desk) Reject(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	idText, reason, _ := strings.Cut(strings.TrimSpace(r.Args), " ")
	if idText == "" {
		return d.reply(ctx, r, d.t(r, "desk.reject_usage", nil), nil)
	}
	id, err := parseID(idText)
	if err != nil {
		return err
	}
	return d.reject(ctx, r, id, reason)
}

func (d *Desk) reject(ctx context.Context, r *bot.Request, id uint64, reason string) error {
	t, err := d.transition(id, r.From.ID, valex.StatusRejected, reason, d.Clock.Now())
	if err != nil {
		return err
	}
	d.notifyUser(ctx, t)
	return d.reply(ctx, r, d.t(r, "desk.rejected_staff", map[string]any{"ID": id}), nil)
}

// Extend moves a deadline once, with a reason: /extend 12 [days] reason.
func (d *Desk) Extend(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	idText, rest, _ := strings.Cut(strings.TrimSpace(r.Args), " ")
	if idText == "" {
		return d.reply(ctx, r, d.t(r, "desk.extend_usage", map[string]any{"Days": int(d.extendBy() / (24 * time.Hour))}), nil)
	}
	id, err := parseID(idText)
	if err != nil {
		return err
	}
	return d.extend(ctx, r, id, rest)
}

// extend applies "[days] reason": days default to ExtendBy, counted from
// the current deadline.
func (d *Desk) extend(ctx context.Context, r *bot.Request, id uint64, input string) error {
	by := d.extendBy()
	reason := strings.TrimSpace(input)
	if first, rest, _ := strings.Cut(reason, " "); first != "" {
		if n, err := strconv.Atoi(first); err == nil {
			if n <= 0 {
				return valex.Errorf("desk.bad_days", nil)
			}
			by, reason = time.Duration(n)*24*time.Hour, strings.TrimSpace(rest)
		}
	}
	now := d.Clock.Now()
	t, err := d.update(id, r.From.ID, now, func(t *valex.Request) ([]valex.AuditEntry, error) {
		return nil, t.Extend(t.DueAt.Add(by), reason, r.From.ID, now, d.SLA)
	})
	if err != nil {
		return err
	}
	lang := d.langOf(t.UserID)
	args := d.ticketArgs(lang, t)
	args["Reason"] = tghtml.Escape(t.ExtendReason)
	args["Original"] = valex.FormatDate(t.OriginalDueAt)
	d.tell(ctx, t.UserID, lang, t.ID, "desk.user_extended", args, nil)
	return d.reply(ctx, r, d.t(r, "desk.extended_staff", map[string]any{"ID": id, "Due": valex.FormatDate(t.DueAt)}), nil)
}

// staffReply relays a staff member's message to the requester and keeps
// it in the thread. The ticket then waits for the user.
func (d *Desk) staffReply(ctx context.Context, r *bot.Request, id uint64, text string) error {
	text = strings.TrimSpace(text)
	if n := len([]rune(text)); n > valex.MaxRequestTextLen {
		return valex.Errorf("desk.too_long", map[string]any{"Max": valex.MaxRequestTextLen, "Count": n})
	}
	t, err := d.ticket(id)
	if err != nil {
		return err
	}
	if !t.Status.Open() || t.UserID == 0 {
		return valex.Errorf("desk.closed", nil)
	}
	now := d.Clock.Now()
	lang := d.langOf(t.UserID)
	waiting := t
	if waiting.Status != valex.StatusWaitingUser && waiting.Status != valex.StatusOnHold {
		waiting.Status = valex.StatusWaitingUser
	}
	args := d.ticketArgs(lang, waiting)
	args["Text"] = tghtml.Escape(text)
	msgID, err := d.Out.Send(ctx, bot.Message{ChatID: t.UserID, Text: d.Tr.T(lang, "desk.user_reply", args)})
	if err != nil {
		if bot.IsBlocked(err) {
			return valex.Errorf("desk.user_blocked", map[string]any{"ID": id})
		}
		return err
	}
	d.link(t.UserID, msgID, id)
	_, err = d.Store.UpdateTicket(id, r.From.ID, now, func(t *valex.Request) ([]valex.AuditEntry, error) {
		t.Messages = append(t.Messages, valex.RequestMessage{At: now, FromStaff: true, AuthorID: r.From.ID, Text: text})
		if t.AssigneeID == 0 {
			t.AssigneeID = r.From.ID
		}
		if t.Status == valex.StatusNew || t.Status == valex.StatusInProgress {
			return nil, t.Transition(valex.StatusWaitingUser, r.From.ID, "", now)
		}
		return nil, nil
	})
	if err != nil {
		return err
	}
	return d.reply(ctx, r, d.t(r, "desk.reply_sent", map[string]any{"ID": id}), nil)
}

// StaffText takes a staff member's answer to a desk prompt: the reply, the
// rejection reason or the extension reason for the ticket the prompt is
// about. A mistake the staff member can fix by typing again keeps the
// prompt; any other failure ends it.
func (d *Desk) StaffText(ctx context.Context, r *bot.Request) error {
	arg, field, _ := strings.Cut(r.Dialog.Arg, "/")
	id, err := parseID(arg)
	if err != nil {
		r.EndDialog()
		return err
	}
	switch r.Dialog.Name {
	case dialogReply:
		err = d.staffReply(ctx, r, id, r.Text)
	case dialogReject:
		err = d.reject(ctx, r, id, r.Text)
	case dialogExtend:
		err = d.extend(ctx, r, id, r.Text)
	case dialogHold:
		err = d.hold(ctx, r, id, r.Text)
	case dialogCorrect:
		err = d.correct(ctx, r, id, field, r.Text)
	}
	if ue, ok := valex.AsUserError(err); !ok || !retryable(ue.Key) {
		r.EndDialog()
	}
	return err
}

// hold puts a ticket on hold with the staff member's reason.
func (d *Desk) hold(ctx context.Context, r *bot.Request, id uint64, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return valex.Errorf("desk.reason_required", nil)
	}
	t, err := d.transition(id, r.From.ID, valex.StatusOnHold, reason, d.Clock.Now())
	if err != nil {
		return err
	}
	if t.UserID != 0 {
		d.notifyUser(ctx, t)
	}
	text, kb := d.ticketView(r, t)
	return d.reply(ctx, r, text, kb)
}

// retryable are the mistakes a staff member corrects by typing again.
func retryable(key string) bool {
	switch key {
	case "desk.reason_required", "desk.too_long", "desk.bad_days", "desk.extend_too_far", "desk.extend_not_later":
		return true
	}
	return false
}

// Hold places a legal hold on a user's data (admins): /hold 1001. While it
// stands the account cannot be erased; erasure requests wait for staff.
func (d *Desk) Hold(ctx context.Context, r *bot.Request) error {
	return d.setHold(ctx, r, true)
}

// Unhold lifts a legal hold: /unhold 1001.
func (d *Desk) Unhold(ctx context.Context, r *bot.Request) error {
	return d.setHold(ctx, r, false)
}

func (d *Desk) setHold(ctx context.Context, r *bot.Request, held bool) error {
	idText, reason, _ := strings.Cut(strings.TrimSpace(r.Args), " ")
	if idText == "" {
		return d.reply(ctx, r, d.t(r, "desk.hold_usage", nil), nil)
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return valex.Errorf("desk.bad_user_id", nil)
	}
	if _, err := d.Users.User(id); errors.Is(err, valex.ErrNotFound) {
		return valex.Errorf("desk.no_such_user", map[string]any{"User": id})
	} else if err != nil {
		return err
	}
	now := d.Clock.Now()
	if !held {
		was, since, err := d.Store.Hold(id)
		if err != nil {
			return err
		}
		if !was {
			return valex.Errorf("desk.not_held", map[string]any{"User": id})
		}
		if err := d.Store.SetHold(id, false, r.From.ID, now); err != nil {
			return err
		}
		return d.reply(ctx, r, d.t(r, "desk.hold_lifted", map[string]any{"User": id, "Since": valex.FormatDate(since)}), nil)
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return valex.Errorf("desk.hold_reason_required", nil)
	}
	if n := utf8.RuneCountInString(reason); n > valex.MaxRequestTextLen {
		return valex.Errorf("desk.too_long", map[string]any{"Max": valex.MaxRequestTextLen, "Count": n})
	}
	placed, err := d.Store.PlaceHold(id, r.From.ID, now, reason)
	if errors.Is(err, valex.ErrNotFound) {
		return valex.Errorf("desk.no_such_user", map[string]any{"User": id})
	}
	if err != nil {
		return err
	}
	if !placed {
		_, since, err := d.Store.Hold(id)
		if err != nil {
			return err
		}
		return valex.Errorf("desk.already_held", map[string]any{"User": id, "Since": valex.FormatDate(since)})
	}
	return d.reply(ctx, r, d.t(r, "desk.hold_placed", map[string]any{"User": id}), nil)
}
