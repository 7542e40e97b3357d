package valex

import "time"

// ConsentKind names something the user must opt in to (policy sections 3, 4).
type ConsentKind string

const (
	// ConsentAITransfer: sending the user's requests to AI providers,
	// possibly abroad. Needed before the first AI call.
	ConsentAITransfer ConsentKind = "ai_transfer"
	// ConsentMarketing: news and promotional messages; a separate opt-in.
	ConsentMarketing ConsentKind = "marketing"
)

// ConsentKinds lists every consent kind. Read-only.
var ConsentKinds = []ConsentKind{ConsentAITransfer, ConsentMarketing}

// Valid reports whether k is a known consent kind.
func (k ConsentKind) Valid() bool { return k == ConsentAITransfer || k == ConsentMarketing }

// ConsentEvent records one grant or withdrawal. Events are appended, never
// edited: the list is the record the policy asks for (time and version).
type ConsentEvent struct {
	UserID        int64
	Kind          ConsentKind
	Granted       bool // false = withdrawn
	At            time.Time
	PolicyVersion string // policy version shown when the user chose
	Source        string // where the choice was made, e.g. "privacy_menu", "first_chat", "desk"
	// Update is the Telegram update that made the choice (0: none): a
	// replay of that update finds its event and records no second one.
	Update int64
}

// RestrictionKind names processing the user has asked to stop (restriction
// or objection, policy section 7).
//
// Restrictions are kept apart from consents on purpose: a consent is an
// opt-in that defaults to "no", a restriction is an opt-out of processing
// that otherwise runs on another legal ground (contract, legitimate
// interest) and defaults to "not restricted". One bool meaning both would
// invite bugs.
type RestrictionKind string

const (
	RestrictAI        RestrictionKind = "restrict_ai"        // no AI processing of the user's data
	RestrictAnalytics RestrictionKind = "restrict_analytics" // leave the user out of analytics
)

// RestrictionKinds lists every restriction kind. Read-only.
var RestrictionKinds = []RestrictionKind{RestrictAI, RestrictAnalytics}

// Valid reports whether k is a known restriction kind.
func (k RestrictionKind) Valid() bool { return k == RestrictAI || k == RestrictAnalytics }

// RestrictionEvent records a restriction being put in place or lifted.
type RestrictionEvent struct {
	UserID        int64
	Kind          RestrictionKind
	Active        bool // true = processing restricted, false = restriction lifted
	At            time.Time
	PolicyVersion string // policy version shown when the user chose
	Source        string
	Update        int64 // as ConsentEvent.Update
}

// ConsentState is one user's current choices: the latest event per kind.
// A kind with no event is not granted / not restricted.
type ConsentState struct {
	Consents     map[ConsentKind]ConsentEvent
	Restrictions map[RestrictionKind]RestrictionEvent
}

// NewConsentState folds one user's events into their current state. The
// latest event (by At) of each kind wins; on equal times the later in the
// slice wins, so an append-ordered log is read as written.
func NewConsentState(consents []ConsentEvent, restrictions []RestrictionEvent) ConsentState {
	s := ConsentState{
		Consents:     make(map[ConsentKind]ConsentEvent),
		Restrictions: make(map[RestrictionKind]RestrictionEvent),
	}
	for _, e := range consents {
		if cur, ok := s.Consents[e.Kind]; !ok || !e.At.Before(cur.At) {
			s.Consents[e.Kind] = e
		}
	}
	for _, e := range restrictions {
		if cur, ok := s.Restrictions[e.Kind]; !ok || !e.At.Before(cur.At) {
			s.Restrictions[e.Kind] = e
		}
	}
	return s
}

// Granted reports whether consent k is currently given.
func (s ConsentState) Granted(k ConsentKind) bool { return s.Consents[k].Granted }

// Restricted reports whether restriction k is currently in force.
func (s ConsentState) Restricted(k RestrictionKind) bool { return s.Restrictions[k].Active }

// CanUseAI reports whether the user's requests may go to an AI provider:
// the transfer consent is given and AI processing is not restricted.
func CanUseAI(s ConsentState) bool {
	return s.Granted(ConsentAITransfer) && !s.Restricted(RestrictAI)
}

// CanSendMarketing reports whether the user opted in to marketing messages.
func CanSendMarketing(s ConsentState) bool { return s.Granted(ConsentMarketing) }

// CanUseForAnalytics reports whether the user's activity may feed analytics.
func CanUseForAnalytics(s ConsentState) bool { return !s.Restricted(RestrictAnalytics) }
