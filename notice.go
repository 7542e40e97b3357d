package valex

import "time"

// NoticeKind is what a broadcast to users is about.
type NoticeKind string

const (
	// NoticePolicyUpdate tells every user about a new privacy policy version
	// (policy section 9).
	NoticePolicyUpdate NoticeKind = "policy_update"
	// NoticeBreach tells affected users about a personal data breach
	// (policy section 6).
	NoticeBreach NoticeKind = "breach"
	// NoticeMarketing is news and offers, only for users who opted in.
	NoticeMarketing NoticeKind = "marketing"
)

// Valid reports whether k is a known notice kind.
func (k NoticeKind) Valid() bool {
	return k == NoticePolicyUpdate || k == NoticeBreach || k == NoticeMarketing
}

// DeliveryStatus is what became of one notice for one user.
type DeliveryStatus string

const (
	DeliveryDelivered DeliveryStatus = "delivered" // Telegram accepted the message
	DeliveryBlocked   DeliveryStatus = "blocked"   // the user blocked the bot or the chat is gone
	DeliveryFailed    DeliveryStatus = "failed"    // any other error after the outbox's retries
	DeliverySkipped   DeliveryStatus = "skipped"   // not sent: no marketing consent at send time
	// DeliveryUncertain: the bot stopped while the message was on its way,
	// so whether Telegram took it is unknown. It is not sent again: a
	// notice twice is worse than a notice the admin knows may be missing.
	DeliveryUncertain DeliveryStatus = "uncertain"
)

// DeliverySending is a claim, not an outcome: the user's message is about
// to go or on its way. The broadcast replaces it with the outcome; a claim
// a crash left becomes DeliveryUncertain when the broadcast resumes.
const DeliverySending DeliveryStatus = "sending"

// DeliveryStatuses lists every outcome. Read-only.
var DeliveryStatuses = []DeliveryStatus{DeliveryDelivered, DeliveryBlocked, DeliveryFailed, DeliverySkipped, DeliveryUncertain}

// Valid reports whether s is an outcome a delivery is recorded with
// (DeliverySending is a claim, recorded only by claiming).
func (s DeliveryStatus) Valid() bool {
	switch s {
	case DeliveryDelivered, DeliveryBlocked, DeliveryFailed, DeliverySkipped, DeliveryUncertain:
		return true
	}
	return false
}

// Notice is one broadcast: a policy update, a breach notice or a marketing
// message, with its delivery totals. Text is the operator's message, not a
// user's personal data.
type Notice struct {
	ID         uint64
	Kind       NoticeKind
	Text       string  // breach and marketing text; the version for a policy update
	UserIDs    []int64 // affected users of a breach notice; empty = everyone
	CreatedAt  time.Time
	CreatedBy  int64
	FinishedAt time.Time // zero while deliveries are still running
	Totals     map[DeliveryStatus]int
	// Breach is the incident a breach notice reports (the /breach form);
	// nil for other notices.
	Breach *BreachReport
	// SourceUpdate is the Telegram update that started the notice (0:
	// none). A notice is started once per update: the same update replayed
	// after a crash finds it (Replayed) instead of starting another.
	SourceUpdate int64
	Replayed     bool
}

// Breach incidents. GDPR Art. 33 wants the supervisory authority told
// within 72 hours of becoming aware of a breach; 152-FZ Art. 21(3.1) wants
// Roskomnadzor's first notice within 24 hours. Art. 34(2) says what the
// people affected must be told: the nature of the breach, a contact point,
// the likely consequences and the measures taken.
const (
	BreachAuthorityWindow = 72 * time.Hour
	BreachRegulatorWindow = 24 * time.Hour
	// BreachRemindBefore is how long before a deadline admins are reminded.
	BreachRemindBefore = 12 * time.Hour
)

// BreachReport is a breach incident: what the admin reported through the
// form and which authorities have been told.
type BreachReport struct {
	DetectedAt   time.Time // when the operator became aware (the form was opened)
	Nature       string
	Categories   string // categories of data concerned
	Affected     string // approximate number of people concerned
	Consequences string
	Measures     string
	Contact      string

	AuthorityNotifiedAt time.Time // GDPR supervisory authority, 72 h
	AuthorityNotifiedBy int64
	RegulatorNotifiedAt time.Time // Roskomnadzor first notice, 24 h
	RegulatorNotifiedBy int64
}

// Incident deadlines by name.
const (
	IncidentAuthority = "authority"
	IncidentRegulator = "regulator"
)

// IncidentDeadline is one notification an incident owes.
type IncidentDeadline struct {
	Name string
	Due  time.Time
	Done bool
}

// Deadlines lists the notifications the incident owes, regulator first.
func (b BreachReport) Deadlines() []IncidentDeadline {
	return []IncidentDeadline{
		{Name: IncidentRegulator, Due: b.DetectedAt.Add(BreachRegulatorWindow), Done: !b.RegulatorNotifiedAt.IsZero()},
		{Name: IncidentAuthority, Due: b.DetectedAt.Add(BreachAuthorityWindow), Done: !b.AuthorityNotifiedAt.IsZero()},
	}
}

// Open reports whether a notification is still owed.
func (b BreachReport) Open() bool {
	return b.AuthorityNotifiedAt.IsZero() || b.RegulatorNotifiedAt.IsZero()
}

// IncidentReminder returns the reminder key due now for a deadline, or ""
// when none: "<name>:soon" from BreachRemindBefore before it, then
// "<name>:overdue". Only the most urgent stage reached counts, so a job
// catching up sends one reminder, not a burst.
func IncidentReminder(d IncidentDeadline, now time.Time, sent map[string]bool) string {
	if d.Done {
		return ""
	}
	key := ""
	switch {
	case now.After(d.Due):
		key = d.Name + ":overdue"
	case !now.Before(d.Due.Add(-BreachRemindBefore)):
		key = d.Name + ":soon"
	}
	if key == "" || sent[key] {
		return ""
	}
	return key
}

// Delivery is what became of one notice for one user.
type Delivery struct {
	NoticeID uint64
	Kind     NoticeKind
	UserID   int64
	Status   DeliveryStatus
	At       time.Time
}

// PolicyVersion is one published version of the privacy policy.
type PolicyVersion struct {
	Version     string
	PublishedAt time.Time
	PublishedBy int64 // 0 = from configuration
}
