package valex

import "time"

// Roles of a conversation turn, as the AI providers name them.
const (
	TurnUser      = "user"
	TurnAssistant = "assistant"
)

// Turn is one message of a conversation with an AI model. Text is personal
// data: the store keeps it sealed by the per-user codec.
type Turn struct {
	Role   string // TurnUser or TurnAssistant
	Text   string
	Tokens int // estimated when the turn was stored; budgets add these up
	At     time.Time
}

// AISettings are a user's choices for the AI aggregator.
type AISettings struct {
	Model        string // chosen chat model id; "" = the plan's default
	Mode         string // system-prompt preset id; "" = the first configured
	Voice        bool   // answers also come as voice messages
	Conversation uint64 // current conversation; 0 until the first turn
	TrimNotified uint64 // conversation whose trimming the user was told about
}

// AIUsage is one successful AI call, as the usage ledger keeps it. A failed
// call is never recorded: a failed request is not charged.
type AIUsage struct {
	UserID       int64
	Model        string
	Capability   string // chat, vision, image, transcribe, speech
	InputTokens  int
	OutputTokens int
	Images       int
	AudioSeconds float64
	Chars        int
	Cost         int64 // micro-credits
	At           time.Time
}

// UsageTotal is a user's usage of one capability over a period.
type UsageTotal struct {
	Capability   string
	Calls        int64
	InputTokens  int64
	OutputTokens int64
	Images       int64
	AudioSeconds float64
	Chars        int64
	Cost         int64 // micro-credits
}
