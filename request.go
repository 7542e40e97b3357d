package valex

import (
	"strings"
	"time"
	"unicode/utf8"
)

// RequestKind is what a desk ticket asks for. The first seven are the rights
// the privacy policy (section 7) promises; support and feedback are ordinary
// user communications that share the desk and its retention rule.
type RequestKind string

const (
	KindAccess            RequestKind = "access"             // a copy of my data
	KindRectification     RequestKind = "rectification"      // correct my data
	KindErasure           RequestKind = "erasure"            // right to be forgotten
	KindRestriction       RequestKind = "restriction"        // restrict processing
	KindObjection         RequestKind = "objection"          // object to processing
	KindConsentWithdrawal RequestKind = "consent_withdrawal" // withdraw a consent
	KindPersonalData      RequestKind = "personal_data"      // free-text "Personal Data" request (policy section 10)
	KindSupport           RequestKind = "support"
	KindFeedback          RequestKind = "feedback"
)

// RequestKinds lists every kind in menu order. Read-only.
var RequestKinds = []RequestKind{
	KindAccess, KindRectification, KindErasure, KindRestriction, KindObjection,
	KindConsentWithdrawal, KindPersonalData, KindSupport, KindFeedback,
}

// Valid reports whether k is a known kind.
func (k RequestKind) Valid() bool {
	switch k {
	case KindAccess, KindRectification, KindErasure, KindRestriction, KindObjection,
		KindConsentWithdrawal, KindPersonalData, KindSupport, KindFeedback:
		return true
	}
	return false
}

// IsPrivacy reports whether k is a data-subject rights request.
func (k RequestKind) IsPrivacy() bool {
	switch k {
	case KindAccess, KindRectification, KindErasure, KindRestriction, KindObjection,
		KindConsentWithdrawal, KindPersonalData:
		return true
	}
	return false
}

// NeedsText reports whether a ticket of kind k means nothing without the
// user's own words; the other kinds are one-tap requests.
func (k RequestKind) NeedsText() bool {
	return k == KindPersonalData || k == KindSupport || k == KindFeedback
}

// RequestStatus is where a ticket is in its life.
type RequestStatus string

const (
	StatusNew         RequestStatus = "new"
	StatusInProgress  RequestStatus = "in_progress"
	StatusWaitingUser RequestStatus = "waiting_user"
	StatusOnHold      RequestStatus = "on_hold" // legal hold or dispute
	StatusDone        RequestStatus = "done"
	StatusRejected    RequestStatus = "rejected"
)

// RequestStatuses lists every status. Read-only.
var RequestStatuses = []RequestStatus{
	StatusNew, StatusInProgress, StatusWaitingUser, StatusOnHold, StatusDone, StatusRejected,
}

// Open reports whether the ticket still needs work (and so runs an SLA clock).
func (s RequestStatus) Open() bool {
	switch s {
	case StatusNew, StatusInProgress, StatusWaitingUser, StatusOnHold:
		return true
	}
	return false
}

// CanTransition reports whether a ticket may move from one status to another.
// done and rejected are final. A ticket on hold goes back to in_progress
// before it can be completed, so the history shows the hold was lifted; it
// may be rejected straight from hold (e.g. erasure refused for a legal hold).
func CanTransition(from, to RequestStatus) bool {
	switch from {
	case StatusNew:
		return to == StatusInProgress || to == StatusWaitingUser || to == StatusOnHold ||
			to == StatusDone || to == StatusRejected
	case StatusInProgress:
		return to == StatusWaitingUser || to == StatusOnHold || to == StatusDone || to == StatusRejected
	case StatusWaitingUser:
		return to == StatusInProgress || to == StatusDone || to == StatusRejected
	case StatusOnHold:
		return to == StatusInProgress || to == StatusRejected
	}
	return false
}

// MaxRequestTextLen bounds the free text of a ticket or a message on it: one
// Telegram message, with room for the bot's framing.
const MaxRequestTextLen = 4000

// Request is a desk ticket.
//
// Personal data, to be encrypted by the store's codec with the user's key:
// Text, Resolution, RejectReason, ExtendReason, Messages[].Text and
// History[].Note (all free text that may quote the user). The rest is
// bookkeeping that may stay in clear for indexes.
type Request struct {
	ID     uint64 // assigned by the store
	UserID int64  // the requester's Telegram id
	Kind   RequestKind
	Status RequestStatus
	Text   string // the user's own words; the kind plays the role of a subject

	ReceivedAt    time.Time
	DueAt         time.Time // current deadline
	OriginalDueAt time.Time // deadline before any extension
	Extended      bool
	ExtendReason  string
	ExtendedAt    time.Time
	ExtendedBy    int64

	AssigneeID   int64 // staff member working it; 0 = unassigned
	ClosedAt     time.Time
	Resolution   string // what was done, when done
	RejectReason string // why not, when rejected

	Messages []RequestMessage
	History  []StatusChange

	// SourceUpdate is the Telegram update that asked for the ticket (0: a
	// job or a test). The store opens one ticket per update, so a replay
	// after a crash finds it (Replayed) instead of opening another.
	SourceUpdate int64
	Replayed     bool
}

// RequestMessage is one message on a ticket, from the user or from staff.
type RequestMessage struct {
	At        time.Time
	FromStaff bool
	AuthorID  int64
	Text      string
}

// StatusChange is one entry of a ticket's history.
type StatusChange struct {
	At   time.Time
	By   int64 // 0 = system
	From RequestStatus
	To   RequestStatus
	Note string
	// Action names a step that is not a status change (From == To), or
	// says more about one: ActionTake, ActionConfirmErasure.
	Action string
}

// History actions besides status changes.
const (
	ActionTake           = "take"            // a staff member took the ticket
	ActionConfirmErasure = "confirm_erasure" // a staff member confirmed an erasure the system then carried out
	ActionCorrected      = "corrected"       // + ":<field>": a staff member corrected the requester's profile field
)

// Record adds a step that changes no status (taking a ticket, confirming
// an erasure) to the history.
func (r *Request) Record(action string, by int64, at time.Time) {
	r.History = append(r.History, StatusChange{At: at, By: by, From: r.Status, To: r.Status, Action: action})
}

// Transition moves r to status to, recording who, when and why in History.
// Rejecting needs a reason (note); completing stores note as the resolution.
func (r *Request) Transition(to RequestStatus, by int64, note string, at time.Time) error {
	if !CanTransition(r.Status, to) {
		return Errorf("desk.illegal_transition", map[string]any{"From": string(r.Status), "To": string(to)})
	}
	note = strings.TrimSpace(note)
	if to == StatusRejected && note == "" {
		return Errorf("desk.reason_required", nil)
	}
	if n := utf8.RuneCountInString(note); n > MaxRequestTextLen {
		return Errorf("desk.too_long", map[string]any{"Max": MaxRequestTextLen, "Count": n})
	}
	r.History = append(r.History, StatusChange{At: at, By: by, From: r.Status, To: to, Note: note})
	r.Status = to
	switch to {
	case StatusDone:
		r.ClosedAt = at
		r.Resolution = note
	case StatusRejected:
		r.ClosedAt = at
		r.RejectReason = note
	}
	return nil
}
