package valex

import "time"

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

// RetentionPolicy holds how long data is kept (policy section 8). A zero or
// negative period means the default.
type RetentionPolicy struct {
	InactiveAfter  Period // no activity for longer than this: the user is notified (24 months)
	InactiveGrace  Period // then deleted this long after the notice unless they come back (30 days)
	PaymentRecords Period // kept at least this long (5 years)
	Communications Period // tickets and feedback kept this long after closing, unless held (1 year)
}

// DefaultRetentionPolicy returns the periods in the privacy policy.
func DefaultRetentionPolicy() RetentionPolicy {
	return RetentionPolicy{
		InactiveAfter:  Period{Months: 24},
		InactiveGrace:  Period{Days: 30},
		PaymentRecords: Period{Years: 5},
		Communications: Period{Years: 1},
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
