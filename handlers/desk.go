package handlers

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

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
	NoticeOfUpdate(update int64) (valex.Notice, bool, error)
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
	// Bulk sends notices: behind replies, maybe as paid broadcasts
	// (broadcast.go). nil: through Out, like a reply.
	Bulk BroadcastSender

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
func (d *Desk) ticket(id uint64) (valex.Request, error) { return d.Service.Ticket(id) }
