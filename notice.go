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
)

// DeliveryStatuses lists every status. Read-only.
var DeliveryStatuses = []DeliveryStatus{DeliveryDelivered, DeliveryBlocked, DeliveryFailed, DeliverySkipped}

// Valid reports whether s is a known delivery status.
func (s DeliveryStatus) Valid() bool {
	switch s {
	case DeliveryDelivered, DeliveryBlocked, DeliveryFailed, DeliverySkipped:
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
