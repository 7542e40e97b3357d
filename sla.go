package valex

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// day is a calendar day on the desk's clock. The desk counts days in UTC,
// where every day is exactly 24 hours, so "30 calendar days" is
// receivedAt + 30×24h and never shifts with an operator's DST change.
const day = 24 * time.Hour

// SLA defaults: the policy promises a response within 30 calendar days
// (section 7). Extensions are a product rule, capped here.
const (
	DefaultSLAPeriod    = 30 * day
	DefaultMaxExtension = 60 * day
)

// SLAPolicy is how long the desk has to answer.
type SLAPolicy struct {
	Default      time.Duration                 // for kinds without an override; 30 days
	PerKind      map[RequestKind]time.Duration // overrides; zero or negative means "use Default"
	MaxExtension time.Duration                 // how far past the original due date one extension may go; 0 disables extensions

	// Rules count deadlines as the law does (deadline.go): calendar
	// months (GDPR), working days with holidays (152-FZ). A kind's rule
	// wins over PerKind, and Rule over Default.
	Rule      DeadlineRule
	KindRules map[RequestKind]DeadlineRule
	// Extension bounds the one extension past the original due date as a
	// rule ("2 months", "5 working days"); it wins over MaxExtension.
	Extension     DeadlineRule
	KindExtension map[RequestKind]DeadlineRule
	Calendar      Calendar
}

// RuleFor is the deadline rule of kind k.
func (p SLAPolicy) RuleFor(k RequestKind) DeadlineRule {
	if r, ok := p.KindRules[k]; ok && r.N > 0 {
		return r
	}
	if d := p.PerKind[k]; d > 0 {
		return DeadlineRule{N: int(d / day), Unit: UnitCalendarDays}
	}
	if p.Rule.N > 0 {
		return p.Rule
	}
	return DeadlineRule{N: int(p.Period(k) / day), Unit: UnitCalendarDays}
}

// Due is the deadline of a request of kind k received at t.
func (p SLAPolicy) Due(k RequestKind, t time.Time) time.Time {
	return p.RuleFor(k).Due(t, p.Calendar)
}

// ExtensionLimit is the latest date one extension of a request of kind k
// with original deadline orig may reach; orig itself when the rules allow
// no extension.
func (p SLAPolicy) ExtensionLimit(k RequestKind, orig time.Time) time.Time {
	if r, ok := p.KindExtension[k]; ok && r.N > 0 {
		return r.Due(orig, p.Calendar)
	}
	if p.Extension.N > 0 {
		return p.Extension.Due(orig, p.Calendar)
	}
	return orig.Add(p.MaxExtension)
}

// DefaultSLAPolicy returns 30 days for every kind and extensions of up to 60 days.
func DefaultSLAPolicy() SLAPolicy {
	return SLAPolicy{Default: DefaultSLAPeriod, MaxExtension: DefaultMaxExtension}
}

// Period returns the time allowed to answer a ticket of kind k. A zero policy
// still yields the 30 days the privacy policy promises, never a ticket due on
// arrival.
func (p SLAPolicy) Period(k RequestKind) time.Duration {
	if d := p.PerKind[k]; d > 0 {
		return d
	}
	if p.Default > 0 {
		return p.Default
	}
	return DefaultSLAPeriod
}

// NewRequest opens a ticket received at receivedAt, due Period(kind) later.
func NewRequest(kind RequestKind, userID int64, text string, receivedAt time.Time, policy SLAPolicy) (Request, error) {
	if !kind.Valid() {
		return Request{}, Errorf("desk.unknown_kind", map[string]any{"Kind": string(kind)})
	}
	text = strings.TrimSpace(text)
	if text == "" && kind.NeedsText() {
		return Request{}, Errorf("desk.text_required", nil)
	}
	if n := utf8.RuneCountInString(text); n > MaxRequestTextLen {
		return Request{}, Errorf("desk.too_long", map[string]any{"Max": MaxRequestTextLen, "Count": n})
	}
	due := policy.Due(kind, receivedAt)
	return Request{
		UserID:        userID,
		Kind:          kind,
		Status:        StatusNew,
		Text:          text,
		ReceivedAt:    receivedAt,
		DueAt:         due,
		OriginalDueAt: due,
	}, nil
}

// originalDue is the deadline before any extension; tickets built without
// NewRequest may lack OriginalDueAt.
func (r *Request) originalDue() time.Time {
	if r.OriginalDueAt.IsZero() {
		return r.DueAt
	}
	return r.OriginalDueAt
}

// Extend moves the deadline of an open ticket to newDue, once, with a reason,
// and only while the original deadline has not passed: an extension is
// announced in time, not used to excuse a missed deadline.
func (r *Request) Extend(newDue time.Time, reason string, by int64, at time.Time, policy SLAPolicy) error {
	if !r.Status.Open() {
		return Errorf("desk.closed", nil)
	}
	if r.Extended {
		return Errorf("desk.already_extended", nil)
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return Errorf("desk.reason_required", nil)
	}
	if n := utf8.RuneCountInString(reason); n > MaxRequestTextLen {
		return Errorf("desk.too_long", map[string]any{"Max": MaxRequestTextLen, "Count": n})
	}
	orig := r.originalDue()
	if !at.Before(orig) {
		return Errorf("desk.extend_too_late", map[string]any{"Due": FormatDate(orig)})
	}
	if !newDue.After(r.DueAt) {
		return Errorf("desk.extend_not_later", map[string]any{"Due": FormatDate(r.DueAt)})
	}
	if limit := policy.ExtensionLimit(r.Kind, orig); newDue.After(limit) {
		return Errorf("desk.extend_too_far", map[string]any{"Max": FormatDate(limit)})
	}
	r.OriginalDueAt = orig
	r.DueAt = newDue
	r.Extended = true
	r.ExtendReason = reason
	r.ExtendedAt = at
	r.ExtendedBy = by
	return nil
}

// FormatDate renders a deadline as the desk shows it to users and staff:
// the UTC calendar date, ISO style, the same in every language. UserError
// arguments carry it preformatted because locale templates print strings.
func FormatDate(t time.Time) string {
	return t.UTC().Format("2006-01-02")
}

// DaysLeft counts the days from now until due, a started day counting as a
// whole one: a ticket received now with a 30-day deadline has 30 days left,
// one due in five hours has 1, one due exactly now has 0, and one overdue by
// a second has -1 — so negative always means overdue.
func DaysLeft(due, now time.Time) int {
	d := due.Sub(now)
	n := int(d / day)
	if d%day != 0 {
		if d > 0 {
			n++
		} else {
			n--
		}
	}
	return n
}

// DaysSince counts the whole days elapsed from then until now (the age of a
// ticket); never negative.
func DaysSince(then, now time.Time) int {
	if now.Before(then) {
		return 0
	}
	return int(now.Sub(then) / day)
}

// Overdue reports whether the ticket is open and past its deadline.
func (r Request) Overdue(now time.Time) bool {
	return r.Status.Open() && now.After(r.DueAt)
}

// ReminderMarks are the days before the deadline at which staff are
// reminded, least urgent first. Read-only.
var ReminderMarks = []int{7, 3, 1}

// Reminder is one staff reminder about a ticket's deadline.
type Reminder struct {
	DaysBefore int  // one of ReminderMarks; 0 when Overdue
	Overdue    bool // the deadline has passed
	// Due is the deadline the reminder is about. It is part of the key, so
	// an extension re-arms the reminders for the new date.
	Due time.Time
}

// Key identifies the reminder for the ticket's set of sent marks.
func (m Reminder) Key() string {
	if m.Overdue {
		return fmt.Sprintf("overdue@%d", m.Due.Unix())
	}
	return fmt.Sprintf("d%d@%d", m.DaysBefore, m.Due.Unix())
}

// DueReminders returns the reminder to send for r now, if any: at most one.
// sent holds the keys of reminders already sent for r (the caller records
// each returned Key after sending it).
//
// Marks are stages: 7, 3, 1 days before the deadline, then overdue (now
// after DueAt). Only the most urgent stage reached counts, so a job that
// catches up after downtime sends one reminder for where the ticket is now,
// not a burst of stale ones; earlier stages are never sent later. A mark
// that had already passed when the ticket arrived (a short per-kind SLA) is
// skipped. Closed tickets get nothing.
func DueReminders(r Request, now time.Time, sent map[string]bool) []Reminder {
	if !r.Status.Open() {
		return nil
	}
	var stage *Reminder
	if now.After(r.DueAt) {
		stage = &Reminder{Overdue: true, Due: r.DueAt}
	} else {
		for _, d := range ReminderMarks {
			at := r.DueAt.Add(-time.Duration(d) * day)
			if now.Before(at) || !at.After(r.ReceivedAt) {
				continue
			}
			if stage == nil || d < stage.DaysBefore {
				stage = &Reminder{DaysBefore: d, Due: r.DueAt}
			}
		}
	}
	if stage == nil || sent[stage.Key()] {
		return nil
	}
	return []Reminder{*stage}
}
