package valex

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Period is a calendar period added with AddDate in UTC. Retention periods
// are months and years, not durations: 5×365 days falls a day or two short
// of the "at least 5 years" the policy promises whenever a leap day is
// crossed.
type Period struct {
	Years, Months, Days int
}

// From returns the moment the period starting at t ends.
func (p Period) From(t time.Time) time.Time {
	return t.UTC().AddDate(p.Years, p.Months, p.Days)
}

// String writes p as ParsePeriod reads it: "1y", "12m", "90d", "1y6m";
// the zero period is "0d".
func (p Period) String() string {
	var b strings.Builder
	for _, part := range []struct {
		n    int
		unit byte
	}{{p.Years, 'y'}, {p.Months, 'm'}, {p.Days, 'd'}} {
		if part.n != 0 {
			b.WriteString(strconv.Itoa(part.n))
			b.WriteByte(part.unit)
		}
	}
	if b.Len() == 0 {
		return "0d"
	}
	return b.String()
}

// ParsePeriod reads a calendar period written as numbers with the units
// y (years), m (months) and d (days), largest first: "90d", "6m", "1y",
// "1y6m". Hours and smaller are not periods: retention is kept in days.
func ParsePeriod(s string) (Period, error) {
	var p Period
	rest := strings.TrimSpace(s)
	if rest == "" {
		return p, errors.New("empty period")
	}
	last := 0 // index of the last unit used, to enforce y, m, d order
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return Period{}, fmt.Errorf("period %q: want a number and a unit y, m or d, like 90d or 1y6m", s)
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n > 1000 {
			return Period{}, fmt.Errorf("period %q: %q is too large", s, rest[:i])
		}
		unit := strings.IndexByte("ymd", rest[i]) + 1
		if unit == 0 || unit <= last {
			return Period{}, fmt.Errorf("period %q: units are y, m and d, each once, largest first", s)
		}
		last = unit
		switch unit {
		case 1:
			p.Years = n
		case 2:
			p.Months = n
		case 3:
			p.Days = n
		}
		rest = rest[i+1:]
	}
	return p, nil
}

// RetentionPolicy holds how long data is kept (policy section 8). A zero or
// negative period means the default.
type RetentionPolicy struct {
	InactiveAfter  Period // no activity for longer than this: the user is notified (24 months)
	InactiveGrace  Period // then deleted this long after the notice unless they come back (30 days)
	PaymentRecords Period // kept at least this long (5 years)
	Communications Period // tickets and feedback kept this long after closing, unless held (1 year)
	// FeedbackClose: an open feedback ticket nobody answered closes this
	// long after its last message (30 days); an answered one closes at once.
	// Closed, it falls under Communications.
	FeedbackClose Period
	// Conversations: AI conversation turns (voice transcripts included) are
	// deleted this long after they were written. Zero, the default: kept
	// until the user deletes them (/conversations) or the account.
	Conversations Period
}

// DefaultRetentionPolicy returns the periods in the privacy policy.
func DefaultRetentionPolicy() RetentionPolicy {
	return RetentionPolicy{
		InactiveAfter:  Period{Months: 24},
		InactiveGrace:  Period{Days: 30},
		PaymentRecords: Period{Years: 5},
		Communications: Period{Years: 1},
		FeedbackClose:  Period{Days: 30},
	}
}

// valid reports whether p is a usable retention period: no negative part
// and not empty.
func (p Period) valid() bool {
	return p.Years >= 0 && p.Months >= 0 && p.Days >= 0 && p != Period{}
}

// orDefaults replaces unset or negative periods with the defaults, so a
// half-filled configuration cannot mean "delete now" or "notify everyone".
func (p RetentionPolicy) orDefaults() RetentionPolicy {
	d := DefaultRetentionPolicy()
	if !p.InactiveAfter.valid() {
		p.InactiveAfter = d.InactiveAfter
	}
	if !p.InactiveGrace.valid() {
		p.InactiveGrace = d.InactiveGrace
	}
	if !p.PaymentRecords.valid() {
		p.PaymentRecords = d.PaymentRecords
	}
	if !p.Communications.valid() {
		p.Communications = d.Communications
	}
	if !p.FeedbackClose.valid() {
		p.FeedbackClose = d.FeedbackClose
	}
	if !p.Conversations.valid() {
		p.Conversations = Period{} // kept until deleted: never "delete now"
	}
	return p
}

// InactiveNoticeDue reports whether an inactive account should be told it
// will be deleted: inactive for more than InactiveAfter and not yet notified
// since its last activity (a notice from an earlier inactive spell, before
// the user came back, does not count). An unknown last activity (zero)
// never triggers anything: missing data must not delete an account.
func (p RetentionPolicy) InactiveNoticeDue(lastActive, noticeSentAt, now time.Time) bool {
	if lastActive.IsZero() {
		return false
	}
	p = p.orDefaults()
	notified := !noticeSentAt.IsZero() && noticeSentAt.After(lastActive)
	return !notified && now.After(p.InactiveAfter.From(lastActive))
}

// InactiveDeleteDue reports whether an inactive account may be deleted: it
// was notified after its last activity, has stayed inactive since, and the
// grace period after the notice has passed.
func (p RetentionPolicy) InactiveDeleteDue(lastActive, noticeSentAt, now time.Time) bool {
	if lastActive.IsZero() || noticeSentAt.IsZero() || !noticeSentAt.After(lastActive) {
		return false
	}
	p = p.orDefaults()
	return now.After(p.InactiveAfter.From(lastActive)) && !now.Before(p.InactiveGrace.From(noticeSentAt))
}

// CommunicationExpired reports whether a closed ticket (support, feedback or
// rights request) has outlived its retention period. Open tickets
// (zero closedAt) and held ones are kept.
func (p RetentionPolicy) CommunicationExpired(closedAt time.Time, held bool, now time.Time) bool {
	if held || closedAt.IsZero() {
		return false
	}
	p = p.orDefaults()
	return !now.Before(p.Communications.From(closedAt))
}

// Defaults returns p with every unset or negative period replaced by its
// default, as the rules read it: what the bot tells users and what
// `valex check` prints.
func (p RetentionPolicy) Defaults() RetentionPolicy { return p.orDefaults() }

// ConversationsKept reports whether conversations are kept until the user
// deletes them (no period configured).
func (p RetentionPolicy) ConversationsKept() bool {
	return p.orDefaults().Conversations == Period{}
}

// ConversationExpired reports whether an AI conversation turn written at
// `at` has outlived the Conversations period. With no period, never: the
// turn stays until the user deletes it or the account.
func (p RetentionPolicy) ConversationExpired(at, now time.Time) bool {
	p = p.orDefaults()
	if p.Conversations == (Period{}) || at.IsZero() {
		return false
	}
	return !now.Before(p.Conversations.From(at))
}

// FeedbackClose is why a feedback ticket closes on its own.
type FeedbackClose int

const (
	FeedbackStaysOpen FeedbackClose = iota
	// FeedbackAnswered: staff wrote the last message.
	FeedbackAnswered
	// FeedbackQuiet: FeedbackClose has passed since the last message (or
	// since it was received) without an answer.
	FeedbackQuiet
)

// FeedbackCloseDue decides whether an open feedback or review ticket closes
// on its own: as soon as staff have answered (the last message is theirs),
// or once the FeedbackClose period has passed since the last message. Other
// kinds, closed tickets and tickets on hold (a dispute) stay as they are.
func (p RetentionPolicy) FeedbackCloseDue(r Request, now time.Time) FeedbackClose {
	if r.Kind != KindFeedback || !r.Status.Open() || r.Status == StatusOnHold {
		return FeedbackStaysOpen
	}
	last := r.ReceivedAt
	if n := len(r.Messages); n > 0 {
		if r.Messages[n-1].FromStaff {
			return FeedbackAnswered
		}
		if r.Messages[n-1].At.After(last) {
			last = r.Messages[n-1].At
		}
	}
	if last.IsZero() {
		return FeedbackStaysOpen
	}
	if !now.Before(p.orDefaults().FeedbackClose.From(last)) {
		return FeedbackQuiet
	}
	return FeedbackStaysOpen
}

// PaymentDeletable reports whether the legal minimum for a payment record
// has passed. Nothing may delete a payment record before then, not even an
// erasure request.
func (p RetentionPolicy) PaymentDeletable(paidAt, now time.Time) bool {
	p = p.orDefaults()
	return !now.Before(p.PaymentRecords.From(paidAt))
}

// PaymentAction is what deleting an account does to one of its payment records.
type PaymentAction int

const (
	// PaymentAnonymize: keep the record (method, amount, currency, date,
	// status, charge ids) without the user's identity.
	PaymentAnonymize PaymentAction = iota + 1
	// PaymentDelete: the legal minimum has passed and nothing else needs
	// the record, so it goes with the account.
	PaymentDelete
)

// String returns the action's log name.
func (a PaymentAction) String() string {
	switch a {
	case PaymentAnonymize:
		return "anonymize"
	case PaymentDelete:
		return "delete"
	}
	return "unknown"
}

// PaymentOnAccountDeletion decides a payment record's fate when its account
// is deleted. While the account exists its payment records are kept as they
// are.
func (p RetentionPolicy) PaymentOnAccountDeletion(paidAt, now time.Time) PaymentAction {
	if p.PaymentDeletable(paidAt, now) {
		return PaymentDelete
	}
	return PaymentAnonymize
}
